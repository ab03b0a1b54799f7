"""RGB-D training samples from rosbags or a folder, and the by-time validation split.

A sample is one colour image with its aligned ground-truth depth (metres, NaN where invalid)
and the colour camera's model (`PinholeCamera`, distortion included), built from CameraInfo by
the same `from_camera_info` the node uses. Samples are decoded once and kept in memory.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.training.errors import TrainingError

FOLDER_RGB = 'rgb'
FOLDER_DEPTH = 'depth'
FOLDER_INTRINSICS = 'intrinsics.yaml'
RGB_SUFFIXES = ('.png', '.jpg', '.jpeg')
MILLIMETRES_PER_METRE = 1000.0
NANOSECONDS_PER_MILLISECOND = 1_000_000


@dataclass(frozen=True)
class RGBDSample:
    """One training example.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 metres, NaN where the sensor has no valid value.
        camera: The camera model of ``rgb`` (its size), or None when unknown.
        source: Bag or folder it came from (for messages).
        index: Position within its source, in time order.
    """

    rgb: np.ndarray
    depth: np.ndarray
    camera: PinholeCamera | None
    source: str
    index: int

    def __post_init__(self) -> None:
        height, width = self.rgb.shape[:2]
        camera = self.camera
        if camera is not None and (camera.width, camera.height) != (width, height):
            raise TrainingError(
                f'frame {self.index} of {self.source} is {width}x{height} but its camera is '
                f'{camera.width}x{camera.height}; match the camera to the image first '
                '(PinholeCamera.matched_to).'
            )


def _match_depth_size(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Depth resized (nearest, never mixing valid and invalid) to the colour image's size."""
    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)


def load_bag_samples(
    bag: str | os.PathLike[str],
    *,
    image_topic: str,
    depth_topic: str,
    camera_info_topic: str | None = None,
    stamp_tolerance_ms: float = 5.0,
) -> list[RGBDSample]:
    """Colour / depth pairs of one bag, matched by header stamp, in time order.

    Frames that fail to decode are skipped (counted in the error if none are left).
    """
    from pixio_ros.data import BagReader, DataError, nearest_index, pair_stamps
    from pixio_ros.data.decode import (
        CAMERA_INFO_TYPE,
        COLOR_TYPES,
        DEPTH_TYPES,
        ImageCodecError,
        decode_color,
        decode_depth_image,
    )

    try:
        with BagReader(Path(bag)) as reader:
            reader.require_topic(image_topic, COLOR_TYPES, option='--image-topic')
            reader.require_topic(depth_topic, DEPTH_TYPES, option='--depth-topic')
            images = reader.messages(image_topic)
            depths = reader.messages(depth_topic)
            infos = []
            if camera_info_topic is not None:
                reader.require_topic(
                    camera_info_topic, (CAMERA_INFO_TYPE,), option='--camera-info-topic'
                )
                infos = reader.messages(camera_info_topic)
    except DataError as err:
        raise TrainingError(str(err)) from err
    tolerance_ns = round(stamp_tolerance_ms * NANOSECONDS_PER_MILLISECOND)
    pairing = pair_stamps([m.stamp_ns for m in images], [m.stamp_ns for m in depths], tolerance_ns)
    info_stamps = [m.stamp_ns for m in infos]
    cameras = [_camera_of(info.msg, camera_info_topic) for info in infos]
    samples: list[RGBDSample] = []
    skipped = 0
    for image_index, depth_index in pairing.pairs:
        image_msg = images[image_index]
        try:
            rgb = decode_color(image_msg.msg)
            depth = decode_depth_image(depths[depth_index].msg)
        except (ImageCodecError, DataError):
            skipped += 1
            continue
        camera = None
        if cameras:
            camera = cameras[nearest_index(info_stamps, image_msg.stamp_ns)]
            try:
                camera = camera.matched_to(rgb.shape[1], rgb.shape[0])
            except CameraError as err:
                raise TrainingError(
                    f'{bag}: --camera-info-topic {camera_info_topic}: {err}.'
                ) from err
        depth = _match_depth_size(depth, rgb.shape[0], rgb.shape[1])
        samples.append(RGBDSample(rgb, depth, camera, str(bag), len(samples)))
    if not samples:
        raise TrainingError(
            f'no usable colour/depth pairs in {bag}: {len(images)} images on {image_topic}, '
            f'{len(depths)} depth images on {depth_topic}, {len(pairing.pairs)} matched within '
            f'{stamp_tolerance_ms} ms, {skipped} failed to decode. Check the topics and '
            '--stamp-tolerance-ms.'
        )
    return samples


def _camera_of(msg: Any, topic: str | None) -> PinholeCamera:
    try:
        return PinholeCamera.from_camera_info(msg)
    except CameraError as err:
        raise TrainingError(
            f'--camera-info-topic {topic}: {err}; or omit the option (the depth head needs no '
            'intrinsics).'
        ) from err


@dataclass(frozen=True)
class FolderIntrinsics:
    """``intrinsics.yaml`` of a folder dataset: K for the colour resolution, optional lens."""

    k: np.ndarray
    d: tuple[float, ...] = ()
    distortion_model: str = ''

    def camera(self, width: int, height: int, path: Path) -> PinholeCamera:
        """The validated camera of a ``width`` x ``height`` colour image."""
        try:
            return PinholeCamera.from_k(
                width, height, self.k, d=self.d, distortion_model=self.distortion_model
            )
        except CameraError as err:
            raise TrainingError(f'{path}: {err}.') from err


def _read_intrinsics(path: Path) -> FolderIntrinsics:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
        if isinstance(data, dict) and 'K' in data:
            k: np.ndarray = np.asarray(data['K'], dtype=np.float64).reshape(3, 3)
        else:
            fx, fy, cx, cy = (float(data[key]) for key in ('fx', 'fy', 'cx', 'cy'))
            k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        d = tuple(float(value) for value in data.get('D', ()))
        model = str(data.get('distortion_model', 'plumb_bob' if d else ''))
    except FileNotFoundError as err:
        raise TrainingError(f'{path} is missing; see `pixio-ros train-head --help`.') from err
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise TrainingError(
            f'{path} must hold fx, fy, cx, cy (pixels) or K (a 3x3 list), optionally D (a '
            f'list) and distortion_model: {err}.'
        ) from err
    return FolderIntrinsics(k, d, model)


def load_folder_samples(folder: str | os.PathLike[str]) -> list[RGBDSample]:
    """Samples of a folder dataset, in file-name order.

    Layout: ``rgb/NAME.png|jpg`` (colour), ``depth/NAME.png`` (16-bit millimetres, 0 = invalid,
    aligned to the colour image) and ``intrinsics.yaml`` (``fx fy cx cy`` or ``K``, for the
    colour image's resolution; optionally ``D`` and ``distortion_model``, plumb_bob by default).
    """
    folder = Path(folder)
    rgb_dir, depth_dir = folder / FOLDER_RGB, folder / FOLDER_DEPTH
    if not rgb_dir.is_dir() or not depth_dir.is_dir():
        raise TrainingError(
            f'{folder} needs {FOLDER_RGB}/ and {FOLDER_DEPTH}/ subfolders (and '
            f'{FOLDER_INTRINSICS}); see `pixio-ros train-head --help`.'
        )
    intrinsics_path = folder / FOLDER_INTRINSICS
    intrinsics = _read_intrinsics(intrinsics_path)
    samples: list[RGBDSample] = []
    for rgb_path in sorted(p for p in rgb_dir.iterdir() if p.suffix.lower() in RGB_SUFFIXES):
        depth_path = depth_dir / f'{rgb_path.stem}.png'
        if not depth_path.is_file():
            continue
        bgr = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
        if bgr is None or raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
            continue
        depth = raw.astype(np.float32) / np.float32(MILLIMETRES_PER_METRE)
        depth[raw == 0] = np.nan
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        depth = _match_depth_size(depth, rgb.shape[0], rgb.shape[1])
        camera = intrinsics.camera(rgb.shape[1], rgb.shape[0], intrinsics_path)
        samples.append(RGBDSample(rgb, depth, camera, str(folder), len(samples)))
    if not samples:
        raise TrainingError(
            f'no usable pairs in {folder}: need {FOLDER_RGB}/NAME.png|jpg with a 16-bit '
            f'{FOLDER_DEPTH}/NAME.png of the same NAME.'
        )
    return samples


def split_by_time(
    sources: Sequence[Sequence[RGBDSample]], val_fraction: float
) -> tuple[list[RGBDSample], list[RGBDSample]]:
    """(train, validation): the last ``val_fraction`` of each source's frames validate.

    Consecutive frames are nearly identical, so a random split would leak; a split by time
    keeps validation frames out of the training sequence. Each source keeps at least one
    training frame; with ``val_fraction`` 0 nothing is held out.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingError(f'--val-fraction {val_fraction} must be in [0, 1).')
    train: list[RGBDSample] = []
    val: list[RGBDSample] = []
    for samples in sources:
        # Rounded first so that 30 * 0.1 holds out 3 frames, not 4.
        held_out = min(math.ceil(round(len(samples) * val_fraction, 9)), len(samples) - 1)
        cut = len(samples) - held_out
        train.extend(samples[:cut])
        val.extend(samples[cut:])
    return train, val


def check_ground_truth(
    samples: Sequence[RGBDSample], *, min_depth: float, max_depth: float
) -> None:
    """Refuse data whose ground truth has no valid pixel in (min_depth, max_depth)."""
    for sample in samples:
        depth = sample.depth
        with np.errstate(invalid='ignore'):
            if bool(np.any(np.isfinite(depth) & (depth > min_depth) & (depth < max_depth))):
                return
    raise TrainingError(
        f'ground truth is invalid everywhere in {len(samples)} frames (no depth in '
        f'({min_depth}, {max_depth}) m); check --depth-topic and --max-depth.'
    )


def frames_fingerprint(samples: Sequence[RGBDSample]) -> str:
    """sha256 of which frames (source, index, image shape) a split holds, in order.

    Recorded in run_config.json so that `--resume` refuses other data; the pixels are not
    hashed, which would cost seconds per GB of frames.
    """
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f'{sample.source}\0{sample.index}\0{sample.rgb.shape}\n'.encode())
    return digest.hexdigest()
