"""What `pixio-ros features` reads before the model runs: options, and per bag its frames.

Everything that can be wrong with the inputs (options, bags, topics, fields, cameras) is found
here, in a first pass over stamps and small messages, before the artifact is loaded and before
anything is written. Frames are kept in header-stamp order (the order the camera produced
them); episodes start at the bag's first frame and, with `--episode-gap-s`, after every pause.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from pixio_ros.data.bag import BagReader
from pixio_ros.data.camera_topics import (
    default_camera_info_topic,
    default_image_topic,
    first_encoding,
)
from pixio_ros.data.decode import CAMERA_INFO_TYPE, COLOR_TYPES
from pixio_ros.data.feature_schema import FeaturesDtype
from pixio_ros.data.signals import SignalRequest, SignalTrack, read_signal_tracks
from pixio_ros.data.stamps import nearest_index
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.plan import read_cameras
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.image_codec import DEPTH_ENCODINGS, RGB_ENCODINGS
from pixio_ros.units import NS_PER_S

__all__ = [
    'CAMERA_INFO_NONE',
    'BagPlan',
    'FeaturesConfig',
    'episode_starts',
    'image_messages_in_stamp_order',
    'plan_bag',
]

CAMERA_INFO_NONE: Final = 'none'
"""--camera-info-topic value that turns off the CameraInfo found beside the image topic."""
LEROBOT_UNAVAILABLE: Final = (
    '--format lerobot needs the lerobot package, which cannot share this environment: every '
    'lerobot release requires torch < 2.12 (0.6.1: torch<2.12.0,>=2.7, Python >= 3.12) and this '
    'package pins torch 2.13; use the default --format datasets'
)
DepthResolution = Literal['camera', 'input']
OutputFormat = Literal['datasets', 'lerobot']


@dataclass(frozen=True)
class FeaturesConfig:
    """What `pixio-ros features` was asked for (the command's options one to one)."""

    bags: tuple[Path, ...]
    model: Path
    out: Path
    image_topic: str | None = None
    camera_info_topic: str | None = None
    signals: tuple[SignalRequest, ...] = ()
    max_gap_ms: float = 50.0
    episode_gap_s: float | None = None
    features_dtype: FeaturesDtype = 'float32'
    with_depth: bool = False
    depth_resolution: DepthResolution = 'camera'
    batch_size: int = 1
    backend: str = 'auto'
    device: str = 'auto'
    precision: str = 'fp32'
    output_format: OutputFormat = 'datasets'
    force: bool = False

    def validate(self) -> None:
        """Raise EvaluationError for option values that cannot work, before anything runs."""
        if self.output_format == 'lerobot':
            raise EvaluationError(LEROBOT_UNAVAILABLE)
        if not self.bags:
            raise EvaluationError('give at least one BAG.')
        if len(set(self.bags)) != len(self.bags):
            raise EvaluationError('a BAG is given twice; each recording is one episode.')
        if self.batch_size < 1:
            raise EvaluationError(f'--batch-size {self.batch_size} must be 1 or more.')
        if not self.max_gap_ms >= 0:
            raise EvaluationError(f'--max-gap-ms {self.max_gap_ms} must be 0 or more.')
        if self.episode_gap_s is not None and not self.episode_gap_s > 0:
            raise EvaluationError(f'--episode-gap-s {self.episode_gap_s} must be > 0.')
        columns = [column for request in self.signals for column in request.columns()]
        if len(set(columns)) != len(columns):
            raise EvaluationError(f'--with names a column twice: {", ".join(columns)}.')


@dataclass
class BagPlan:
    """One bag's frames (in stamp order), episodes, cameras and signals, read before the model."""

    path: Path
    image_topic: str
    camera_info_topic: str | None
    order: list[int]
    """Log positions of the image messages, sorted by (header stamp, log position)."""
    stamps: np.ndarray
    episode_starts: list[int]
    """Positions in `order` where an episode begins (0 first)."""
    camera_stamps: list[int]
    cameras: list[PinholeCamera]
    tracks: list[SignalTrack]

    def camera_at(self, stamp_ns: int) -> PinholeCamera | None:
        """The CameraInfo nearest in stamp, None without one."""
        if not self.cameras:
            return None
        return self.cameras[nearest_index(self.camera_stamps, stamp_ns)]


def episode_starts(stamps: np.ndarray, gap_s: float | None) -> list[int]:
    """Indices of sorted `stamps` where an episode begins: 0, then after every pause > gap_s."""
    if gap_s is None or stamps.size == 0:
        return [0]
    gaps = np.diff(stamps) > gap_s * NS_PER_S
    return [0, *(int(i) + 1 for i in np.flatnonzero(gaps))]


def _image_topic(bag: BagReader, config: FeaturesConfig) -> str:
    if config.image_topic is None:
        return default_image_topic(bag)
    bag.require_topic(config.image_topic, COLOR_TYPES, option='--image-topic')
    encoding = first_encoding(bag, config.image_topic)
    if encoding in DEPTH_ENCODINGS:
        raise EvaluationError(
            f'--image-topic {config.image_topic} has encoding {encoding!r} (depth); the model '
            f'needs colour: one of {", ".join(RGB_ENCODINGS)} or a CompressedImage.'
        )
    return config.image_topic


def _camera_info_topic(bag: BagReader, config: FeaturesConfig, image_topic: str) -> str | None:
    if config.camera_info_topic == CAMERA_INFO_NONE:
        return None
    if config.camera_info_topic is None:
        return default_camera_info_topic(bag, image_topic)
    bag.require_topic(config.camera_info_topic, (CAMERA_INFO_TYPE,), option='--camera-info-topic')
    return config.camera_info_topic


def plan_bag(path: Path, config: FeaturesConfig) -> BagPlan:
    """Check a bag's topics and fields and read its stamps, cameras and signals.

    Raises:
        DataError / EvaluationError: an unreadable bag, a missing topic or field, no frames.
    """
    with BagReader(path) as bag:
        image_topic = _image_topic(bag, config)
        info_topic = _camera_info_topic(bag, config, image_topic)
        stamps = [message.stamp_ns for message in bag.stream([image_topic])]
        if not stamps:
            raise EvaluationError(f'--image-topic {image_topic} has no messages in bag {path}.')
        order = sorted(range(len(stamps)), key=lambda i: (stamps[i], i))
        sorted_stamps = np.array([stamps[i] for i in order], dtype=np.int64)
        camera_stamps, cameras = read_cameras(bag, info_topic, without='publish xyz without it')
        tracks = read_signal_tracks(bag, config.signals)
    return BagPlan(
        path=path,
        image_topic=image_topic,
        camera_info_topic=info_topic,
        order=order,
        stamps=sorted_stamps,
        episode_starts=episode_starts(sorted_stamps, config.episode_gap_s),
        camera_stamps=camera_stamps,
        cameras=cameras,
        tracks=tracks,
    )


def image_messages_in_stamp_order(bag: BagReader, plan: BagPlan) -> Iterator[tuple[int, Any]]:
    """(sorted position, message) of the image topic, in stamp order, holding only the disorder."""
    position_of = {log: position for position, log in enumerate(plan.order)}
    waiting: dict[int, Any] = {}
    expected = 0
    for log, message in enumerate(bag.stream([plan.image_topic])):
        waiting[position_of[log]] = message.msg
        while expected in waiting:
            yield expected, waiting.pop(expected)
            expected += 1
