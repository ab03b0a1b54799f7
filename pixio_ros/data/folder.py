"""The folder dataset (`--data DIR`, `--dataset folder DIR`): rgb/, depth/ and intrinsics.yaml.

Layout: ``rgb/NAME.png|jpg`` (colour), ``depth/NAME.png`` (16-bit millimetres, 0 = invalid,
aligned to the colour image) and ``intrinsics.yaml`` (``fx fy cx cy`` or ``K``, for the colour
image's resolution; optionally ``D`` and ``distortion_model``, plumb_bob by default). Frames are
decoded once and kept in memory, in file-name order; a colour image without a readable 16-bit
depth image of the same name is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample, match_depth_size
from pixio_ros.runtime.camera import CameraError, PinholeCamera

__all__ = ['FOLDER_DEPTH', 'FOLDER_INTRINSICS', 'FOLDER_RGB', 'load_folder', 'read_intrinsics']

FOLDER_RGB: Final = 'rgb'
FOLDER_DEPTH: Final = 'depth'
FOLDER_INTRINSICS: Final = 'intrinsics.yaml'
RGB_SUFFIXES: Final = ('.png', '.jpg', '.jpeg')
MILLIMETRES_PER_METRE: Final = 1000.0


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
            raise DataError(f'{path}: {err}.') from err


def read_intrinsics(path: Path) -> FolderIntrinsics:
    """Parse ``intrinsics.yaml``.

    Raises:
        DataError: the file is missing or holds neither fx/fy/cx/cy nor a 3x3 K.
    """
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
        raise DataError(f'{path} is missing; see `pixio-ros train-head --help`.') from err
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise DataError(
            f'{path} must hold fx, fy, cx, cy (pixels) or K (a 3x3 list), optionally D (a '
            f'list) and distortion_model: {err}.'
        ) from err
    return FolderIntrinsics(k, d, model)


def load_folder(folder: str | os.PathLike[str]) -> list[RGBDSample]:
    """Samples of a folder dataset, in file-name order (see the module doc for the layout).

    Raises:
        DataError: missing subfolders or intrinsics, bad intrinsics, or no usable pair.
    """
    folder = Path(folder)
    rgb_dir, depth_dir = folder / FOLDER_RGB, folder / FOLDER_DEPTH
    if not rgb_dir.is_dir() or not depth_dir.is_dir():
        raise DataError(
            f'{folder} needs {FOLDER_RGB}/ and {FOLDER_DEPTH}/ subfolders (and '
            f'{FOLDER_INTRINSICS}); see `pixio-ros train-head --help`.'
        )
    intrinsics_path = folder / FOLDER_INTRINSICS
    intrinsics = read_intrinsics(intrinsics_path)
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
        depth = match_depth_size(depth, rgb.shape[0], rgb.shape[1])
        camera = intrinsics.camera(rgb.shape[1], rgb.shape[0], intrinsics_path)
        samples.append(
            RGBDSample(rgb, depth, camera, str(folder), len(samples), name=rgb_path.name)
        )
    if not samples:
        raise DataError(
            f'no usable pairs in {folder}: need {FOLDER_RGB}/NAME.png|jpg with a 16-bit '
            f'{FOLDER_DEPTH}/NAME.png of the same NAME.'
        )
    return samples
