"""Writers of the public datasets' on-disk formats, for the reader tests (and train-head's).

Each writes what the real download holds, at the real names, shapes, orientation and scales:

- NYU Depth V2 labeled: a MATLAB v7.3 .mat, i.e. an HDF5 file behind MATLAB's 512-byte user
  block, whose arrays h5py sees transposed (MATLAB is column-major): ``images`` (N, 3, 640, 480)
  uint8 and ``depths`` (N, 640, 480) float32 metres; ``splits.mat`` is a MATLAB v5 file with
  ``trainNdxs`` / ``testNdxs`` as 1-based double column vectors.
- The NYUv2 "sync" folders: ``scene/rgb_NNNNN.jpg`` + ``scene/sync_depth_NNNNN.png`` (16-bit mm).
- KITTI: raw ``DATE/DATE_drive_NNNN_sync/image_02/data/F.png``, annotated depth
  ``DATE_drive_NNNN_sync/proj_depth/groundtruth/image_02/F.png`` (16-bit, 1/256 m) and the day's
  ``calib_cam_to_cam.txt``.
- TUM RGB-D: ``rgb.txt`` / ``depth.txt`` with the three comment lines, ``rgb/T.png``,
  ``depth/T.png`` (16-bit, 5000 per metre).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

MATLAB_USERBLOCK = 512
MATLAB_HEADER_TEXT = 116


def write_matlab_v73(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """An HDF5 file as MATLAB -v7.3 writes it: a 512-byte user block with MATLAB's header.

    ``arrays`` are given as h5py sees them (MATLAB's dimensions reversed).
    """
    import h5py

    with h5py.File(path, 'w', userblock_size=MATLAB_USERBLOCK) as handle:
        for name, array in arrays.items():
            handle.create_dataset(name, data=array, chunks=True, compression='gzip')
    text = (
        b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  2 10:00:00 2012 '
        b'HDF5 schema 1.00 .'
    )
    header = text.ljust(MATLAB_HEADER_TEXT, b' ') + b'\0' * 8 + b'\x00\x02' + b'IM'
    with path.open('r+b') as stream:
        stream.write(header.ljust(MATLAB_USERBLOCK, b'\0'))
    return path


def write_nyu_labeled(
    path: Path, rgb: Sequence[np.ndarray], depth: Sequence[np.ndarray], *, depths: bool = True
) -> Path:
    """``nyu_depth_v2_labeled.mat`` of (480, 640, 3) uint8 images and (480, 640) metres."""
    arrays = {'images': np.stack([image.transpose(2, 1, 0) for image in rgb]).astype(np.uint8)}
    if depths:
        arrays['depths'] = np.stack([d.T for d in depth]).astype(np.float32)
    # rawDepths and labels are in the real file too (same orientation); the readers ignore them.
    arrays['rawDepths'] = np.stack([d.T for d in depth]).astype(np.float32)
    arrays['labels'] = np.zeros((len(rgb), *rgb[0].shape[1::-1]), np.uint16)
    return write_matlab_v73(path, arrays)


def write_nyu_splits(path: Path, train: Sequence[int], test: Sequence[int]) -> Path:
    """``splits.mat`` (MATLAB v5): 1-based ``trainNdxs`` / ``testNdxs`` double column vectors."""
    from scipy.io import savemat

    savemat(
        str(path),
        {
            'trainNdxs': np.asarray(train, np.float64).reshape(-1, 1),
            'testNdxs': np.asarray(test, np.float64).reshape(-1, 1),
        },
    )
    return path


def write_png16(path: Path, depth_m: np.ndarray, units_per_metre: float) -> Path:
    """A 16-bit depth PNG: metres * scale, 0 where NaN or <= 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    valid = np.isfinite(depth_m) & (depth_m > 0)
    raw = np.where(valid, np.round(np.nan_to_num(depth_m) * units_per_metre), 0)
    assert cv2.imwrite(str(path), raw.astype(np.uint16))
    return path


def write_colour(path: Path, rgb: np.ndarray) -> Path:
    """An 8-bit colour PNG / JPEG (by suffix) of an RGB array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


KITTI_CALIB_VALUES: dict[str, tuple[float, ...]] = {
    'corner_dist': (9.950000e-02,),
    'S_02': (1.392000e03, 5.120000e02),
    'K_02': (9.597910e02, 0.0, 6.960217e02, 0.0, 9.569251e02, 2.241806e02, 0.0, 0.0, 1.0),
    'D_02': (-3.691481e-01, 1.968681e-01, 1.353473e-03, 5.677587e-04, -6.770705e-02),
    'S_rect_00': (1.242000e03, 3.750000e02),
    'P_rect_00': (7.215377e02, 0.0, 6.095593e02, 0.0, 0.0, 7.215377e02, 1.728540e02, 0.0)
    + (0.0, 0.0, 1.0, 0.0),
    'S_rect_02': (1.242000e03, 3.750000e02),
    'R_rect_02': (9.998817e-01, 1.511453e-02, -2.841595e-03, -1.511724e-02, 9.998853e-01)
    + (-9.338510e-04, 2.827154e-03, 9.766976e-04, 9.999955e-01),
    'P_rect_02': (7.215377e02, 0.0, 6.095593e02, 4.485728e01, 0.0, 7.215377e02, 1.728540e02)
    + (2.163791e-01, 0.0, 0.0, 1.0, 2.745884e-03),
    'S_rect_03': (1.242000e03, 3.750000e02),
    'P_rect_03': (7.215377e02, 0.0, 6.095593e02, -3.395242e02, 0.0, 7.215377e02, 1.728540e02)
    + (2.199936e00, 0.0, 0.0, 1.0, 2.729905e-03),
}
"""Lines of the 2011_09_26 drives' calib_cam_to_cam.txt (a subset of its keys, real values)."""


def write_kitti_calib(
    path: Path, values: dict[str, tuple[float, ...]] = KITTI_CALIB_VALUES
) -> Path:
    """calib_cam_to_cam.txt as KITTI writes it: a calib_time line, then 'KEY: %e ...' lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['calib_time: 09-Jan-2012 13:57:47']
    lines += [f'{key}: ' + ' '.join(f'{value:e}' for value in row) for key, row in values.items()]
    path.write_text('\n'.join(lines) + '\n')
    return path


KITTI_SIZE = (375, 1242)
"""(H, W) of the 2011_09_26 rectified images (S_rect_02)."""


def kitti_frame_paths(day: str, drive: int, camera: str, frame: int) -> tuple[str, str]:
    """(raw colour, annotated depth) paths of one frame, relative to their roots."""
    sync = f'{day}_drive_{drive:04d}_sync'
    name = f'{frame:010d}.png'
    return (
        f'{day}/{sync}/image_{camera}/data/{name}',
        f'{sync}/proj_depth/groundtruth/image_{camera}/{name}',
    )


TUM_BAG_LINE = "# file: 'rgbd_dataset_freiburg1_xyz.bag'"


def write_tum_list(path: Path, kind: str, rows: Sequence[tuple[str, str]]) -> Path:
    """rgb.txt / depth.txt: the three comment lines, then 'TIMESTAMP FILENAME' per frame."""
    title = 'color images' if kind == 'rgb' else 'depth maps'
    lines = [f'# {title}', TUM_BAG_LINE, '# timestamp filename']
    lines += [f'{stamp} {name}' for stamp, name in rows]
    path.write_text('\n'.join(lines) + '\n')
    return path
