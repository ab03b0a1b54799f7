"""Training frames from rosbags, folders and public datasets, and the by-time validation split.

A sample (`pixio_ros.data.samples.RGBDSample`, the one interface every reader feeds) is one
colour image with its aligned ground-truth depth (metres, NaN where invalid) and the colour
camera's model (`PinholeCamera`, distortion included), built from CameraInfo by the same
`from_camera_info` the node uses. Bag and folder frames are decoded once and kept in memory;
dataset frames are read from disk when used.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample, match_depth_size
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.training.errors import TrainingError

__all__ = [
    'RGBDSample',
    'TrainingData',
    'check_ground_truth',
    'frames_fingerprint',
    'load_bag_samples',
    'load_dataset_samples',
    'load_folder_samples',
    'split_by_time',
]

NANOSECONDS_PER_MILLISECOND = 1_000_000


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
        depth = match_depth_size(depth, rgb.shape[0], rgb.shape[1])
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


def load_folder_samples(folder: str | os.PathLike[str]) -> list[RGBDSample]:
    """Samples of a folder dataset, in file-name order (`pixio_ros.data.folder`).

    Layout: ``rgb/NAME.png|jpg`` (colour), ``depth/NAME.png`` (16-bit millimetres, 0 = invalid,
    aligned to the colour image) and ``intrinsics.yaml`` (``fx fy cx cy`` or ``K``, for the
    colour image's resolution; optionally ``D`` and ``distortion_model``, plumb_bob by default).
    """
    from pixio_ros.data.folder import load_folder

    try:
        return load_folder(folder)
    except DataError as err:
        raise TrainingError(str(err)) from err


@dataclass(frozen=True)
class TrainingData:
    """What a dataset gives training: the frames and what was done to them.

    Attributes:
        samples: Frames in the dataset's order.
        max_depth: The dataset's depth range upper bound (the head's default max depth).
        min_depth: Its lower bound.
        description: One line for the command's output.
    """

    samples: list[RGBDSample]
    max_depth: float
    min_depth: float
    description: str


def load_dataset_samples(
    name: str,
    path: str | os.PathLike[str],
    *,
    split: str | None = None,
    data_root: Path | None = None,
    depth_root: Path | None = None,
    max_difference_s: float | None = None,
) -> TrainingData:
    """Training frames of a public dataset (`pixio_ros.data.datasets`), read lazily.

    The labeled NYUv2 .mat defaults to its official train split. NYUv2 frames are cut to the
    Eigen crop (rows 45:471, columns 41:601), as the Pixio paper's training does: the white
    border the undistortion left around every NYUv2 image carries no real depth.
    """
    from pixio_ros.data.datasets import open_dataset

    if split is None and name == 'nyuv2' and Path(path).suffix.lower() == '.mat':
        split = 'train'  # the official 795 training images
    try:
        dataset = open_dataset(
            name,
            Path(path),
            split=split,
            data_root=data_root,
            depth_root=depth_root,
            max_difference_s=max_difference_s,
        )
    except DataError as err:
        raise TrainingError(str(err)) from err
    samples = dataset.samples
    described = ', '.join(
        f'{key} {value}'
        for key, value in dataset.details.items()
        if key in ('split', 'listed_without_ground_truth', 'associated')
    )
    description = f'{dataset.info.title} {path}' + (f' ({described})' if described else '')
    if dataset.info.name == 'nyuv2':
        from pixio_ros.evaluation.protocol import EIGEN_CROP_480X640

        top, bottom, left, right = EIGEN_CROP_480X640
        samples = [sample.cropped(top, bottom, left, right) for sample in samples]
        description += f'; Eigen crop rows {top}:{bottom}, columns {left}:{right}'
    return TrainingData(samples, dataset.info.max_depth, dataset.info.min_depth, description)


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
        digest.update(f'{sample.fingerprint}\n'.encode())
    return digest.hexdigest()
