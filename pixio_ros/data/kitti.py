"""KITTI depth: Eigen-split file lists, raw colour images, annotated depth, calibration files.

A file list names one frame per line, "RGB DEPTH [FOCAL]": the colour image of the raw data
(``DATE/DATE_drive_NNNN_sync/image_02/data/0000000069.png``) and its ground truth from the
annotated depth maps (``DATE_drive_NNNN_sync/proj_depth/groundtruth/image_02/0000000069.png``:
16-bit PNG in 1/256 m, 0 = no LiDAR return). A depth of 'None' (BTS's Eigen test list has a
few frames without annotation) is skipped and counted. Colour paths are relative to the data
root, depth paths to the depth root (by default the same; the annotated set's own train/ and
val/ subfolders are searched too, so the archive works as extracted).

Intrinsics come from the drive day's ``calib_cam_to_cam.txt`` (in ``DATE/`` beside the drives):
the rectified projection ``P_rect_0N`` of the camera the path names (``image_02`` = left colour,
``image_03`` = right colour) at the size ``S_rect_0N``. The raw "sync" images are rectified, so
the camera has no distortion.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample, read_color, read_depth_png, read_file_list
from pixio_ros.runtime.camera import CameraError, PinholeCamera

__all__ = ['CALIB_FILE', 'KITTI_DEPTH_SCALE', 'kitti_camera', 'load_kitti', 'read_calib']

KITTI_DEPTH_SCALE: Final = 256.0
"""Annotated depth PNG units per metre."""
CALIB_FILE: Final = 'calib_cam_to_cam.txt'
DEPTH_SUBFOLDERS: Final = ('train', 'val')
DATASET: Final = 'KITTI'
IMAGE_FOLDER_PREFIX: Final = 'image_'
# DATE/DATE_drive_NNNN_sync/image_0N/data/FRAME.png: the day folder is 3 levels above the frame.
DAY_FOLDER_LEVEL: Final = 3
CAMERA_FOLDER_LEVEL: Final = 1


def read_calib(path: Path) -> dict[str, np.ndarray]:
    """The 'KEY: numbers' lines of a KITTI calibration file (other lines, e.g. dates, skipped).

    Raises:
        DataError: the file does not exist.
    """
    if not path.is_file():
        raise DataError(
            f'KITTI calibration {path} does not exist; it comes with the raw data '
            f'({path.parent.name}_calib.zip) into the day folder beside the drives.'
        )
    values: dict[str, np.ndarray] = {}
    for line in path.read_text(encoding='utf-8').splitlines():
        key, separator, rest = line.partition(':')
        if not separator:
            continue
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()], dtype=np.float64)
        except ValueError:
            continue  # calib_time: 09-Jan-2012 13:57:47
    return values


def kitti_camera(calib_path: Path, camera: str) -> PinholeCamera:
    """The rectified camera ``camera`` ('02', '03', ...) of a ``calib_cam_to_cam.txt``.

    Raises:
        DataError: the file lacks P_rect / S_rect of that camera or they are invalid.
    """
    return _kitti_camera(calib_path, camera)


@functools.lru_cache(maxsize=16)
def _kitti_camera(calib_path: Path, camera: str) -> PinholeCamera:
    calib = read_calib(calib_path)
    p_key, s_key = f'P_rect_{camera}', f'S_rect_{camera}'
    projection, size = calib.get(p_key), calib.get(s_key)
    if projection is None or size is None or projection.size != 12 or size.size != 2:
        raise DataError(
            f'{calib_path} lacks {p_key} (12 numbers) and {s_key} (width height) of camera '
            f'{camera}.'
        )
    p = projection.reshape(3, 4)
    try:
        return PinholeCamera.from_k(int(round(size[0])), int(round(size[1])), p[:, :3], p=p)
    except CameraError as err:
        raise DataError(f'{calib_path}: {p_key}: {err}.') from err


def _camera_of(rgb: Path, list_path: Path, line: int) -> tuple[Path, str]:
    """(calibration file, camera id) for a raw colour image path."""
    parents = rgb.parents
    if len(parents) <= DAY_FOLDER_LEVEL or not parents[CAMERA_FOLDER_LEVEL].name.startswith(
        IMAGE_FOLDER_PREFIX
    ):
        raise DataError(
            f'{list_path}:{line}: {rgb} is not laid out as '
            'DATE/DATE_drive_NNNN_sync/image_02/data/FRAME.png, so its calibration cannot be '
            'found.'
        )
    camera = parents[CAMERA_FOLDER_LEVEL].name[len(IMAGE_FOLDER_PREFIX) :]
    return parents[DAY_FOLDER_LEVEL] / CALIB_FILE, camera


def load_kitti(
    path: Path, *, data_root: Path | None = None, depth_root: Path | None = None
) -> tuple[list[RGBDSample], int]:
    """Lazy samples of a KITTI file list, and how many listed frames had no ground truth.

    Every calibration is read (and checked) up front; images are decoded on access and must
    have the calibration's size.

    Raises:
        DataError: a malformed list, a missing file or calibration (named with the list line).
    """
    entries, without_depth = read_file_list(
        path,
        data_root=data_root,
        depth_root=depth_root,
        depth_subfolders=DEPTH_SUBFOLDERS,
        dataset=DATASET,
    )
    samples = []
    for position, entry in enumerate(entries):
        calib_path, camera_id = _camera_of(entry.rgb, path, entry.line)
        camera = kitti_camera(calib_path, camera_id)
        depth_path = entry.depth
        assert depth_path is not None

        def load(rgb_path: Path = entry.rgb, depth_path: Path = depth_path) -> Any:
            rgb = read_color(rgb_path)
            depth = read_depth_png(depth_path, units_per_metre=KITTI_DEPTH_SCALE, what=DATASET)
            if depth.shape != rgb.shape[:2]:
                raise DataError(
                    f'depth image {depth_path} is {depth.shape[1]}x{depth.shape[0]} but its '
                    f'colour image {rgb_path} is {rgb.shape[1]}x{rgb.shape[0]}.'
                )
            return rgb, depth

        samples.append(RGBDSample.lazy(load, camera, str(path), position, name=str(entry.rgb)))
    return samples, without_depth
