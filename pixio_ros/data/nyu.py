"""NYU Depth V2: the labeled .mat with its official split, and the folder layout of the larger sets.

`load_nyu_labeled` reads ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, which is HDF5: read with
h5py). MATLAB stores arrays column-major, so h5py sees every array with its axes reversed:
``images`` is (1449, 3, 640, 480) uint8 (image, channel, column, row) and ``depths`` is
(1449, 640, 480) float metres; one image is ``images[i].transpose(2, 1, 0)`` -> (480, 640, 3) and
its depth ``depths[i].T`` -> (480, 640). The official 795 / 654 train / test split is in
``splits.mat`` (``trainNdxs`` / ``testNdxs``, 1-based MATLAB indices; a MATLAB v5 file, read
with scipy.io, or HDF5 if re-saved as v7.3).

`load_nyu_list` reads the layout of the larger training sets (the BTS / ZoeDepth "sync" export,
used by the Pixio paper: ``scene/rgb_00000.jpg`` + ``scene/sync_depth_00000.png``, 16-bit
millimetres, 0 = no depth) through a file list of "RGB DEPTH [FOCAL]" lines.

Both come with the published Kinect colour intrinsics (the NYU toolbox's camera_params.m). The
released images are already undistorted (the white border around every image is what the
undistortion left empty), so the camera carries no distortion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample, read_color, read_depth_png, read_file_list
from pixio_ros.runtime.camera import PinholeCamera

__all__ = [
    'NYU_CAMERA',
    'NYU_COLOR_DISTORTION',
    'NYU_HEIGHT',
    'NYU_SPLITS',
    'NYU_WIDTH',
    'load_nyu',
    'load_nyu_labeled',
    'load_nyu_list',
    'read_splits',
]

NYU_WIDTH: Final = 640
NYU_HEIGHT: Final = 480
NYU_CAMERA: Final = PinholeCamera.from_k(
    NYU_WIDTH,
    NYU_HEIGHT,
    [
        5.1885790117450188e02,
        0.0,
        3.2558244941119034e02,
        0.0,
        5.1946961112127485e02,
        2.5373616633400465e02,
        0.0,
        0.0,
        1.0,
    ],
)
"""Kinect colour camera of NYU Depth V2 (camera_params.m: fx_rgb, fy_rgb, cx_rgb, cy_rgb)."""
NYU_COLOR_DISTORTION: Final = (
    2.0796615318809061e-01,
    -5.8613825163911781e-01,
    7.2231363135888329e-04,
    1.0479627195765181e-03,
    4.9856986684705107e-01,
)
"""camera_params.m's colour lens (k1 k2 p1 p2 k3), already removed from the released images."""
MILLIMETRES_PER_METRE: Final = 1000.0
IMAGES: Final = 'images'
DEPTHS: Final = 'depths'
TRAIN_INDICES: Final = 'trainNdxs'
TEST_INDICES: Final = 'testNdxs'
NYU_SPLITS: Final = {'train': TRAIN_INDICES, 'test': TEST_INDICES}
SPLITS_FILE: Final = 'splits.mat'
RGB_CHANNELS: Final = 3
DATASET: Final = 'NYUv2'


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # the `datasets` extra
        raise DataError(
            "reading NYUv2's .mat files needs h5py: pip install h5py (or the package's "
            '`datasets` extra).'
        ) from err
    return h5py


def _open_mat(path: Path) -> Any:
    """The labeled .mat opened read-only, after checking it is HDF5 (MATLAB v7.3)."""
    h5py = _h5py()
    if not path.is_file():
        raise DataError(f'{path} does not exist; download nyu_depth_v2_labeled.mat (2.8 GB).')
    if not h5py.is_hdf5(str(path)):
        raise DataError(
            f'{path} is not a MATLAB v7.3 (HDF5) file; the labeled NYUv2 set is '
            'nyu_depth_v2_labeled.mat as downloaded.'
        )
    return h5py.File(str(path), 'r')


def _check_layout(path: Path, handle: Any) -> int:
    """Number of images, after checking the names, shapes and types of images and depths."""
    missing = [name for name in (IMAGES, DEPTHS) if name not in handle]
    if missing:
        raise DataError(
            f'{path} has no {" or ".join(repr(m) for m in missing)} dataset (it has: '
            f'{", ".join(sorted(handle.keys())) or "nothing"}); expected nyu_depth_v2_labeled.mat.'
        )
    images, depths = handle[IMAGES], handle[DEPTHS]
    if images.ndim != 4 or images.shape[1] != RGB_CHANNELS or images.dtype != np.uint8:
        raise DataError(
            f'{path}: {IMAGES!r} is {images.dtype} {images.shape}; expected uint8 (N, 3, '
            f"{NYU_WIDTH}, {NYU_HEIGHT}) as h5py reads MATLAB's 480x640x3xN array."
        )
    if depths.ndim != 3 or depths.shape != (images.shape[0], *images.shape[2:]):
        raise DataError(
            f'{path}: {DEPTHS!r} is {depths.shape}; expected {(images.shape[0], *images.shape[2:])}'
            f' to match {IMAGES!r} {images.shape}.'
        )
    if depths.dtype.kind != 'f':
        raise DataError(f'{path}: {DEPTHS!r} is {depths.dtype}; expected float metres.')
    return int(images.shape[0])


def read_splits(path: Path, count: int) -> dict[str, list[int]]:
    """The official split of ``splits.mat``: {'train': [...], 'test': [...]}, 0-based indices.

    Raises:
        DataError: a missing or unreadable file, a missing variable, or an index outside
            1..count.
    """
    if not path.is_file():
        raise DataError(
            f'{path} does not exist: the official NYUv2 train/test split (splits.mat, beside '
            'the labeled .mat) is needed for --split train|test; or pass --split all.'
        )
    h5py = _h5py()
    values: dict[str, np.ndarray] = {}
    try:
        if h5py.is_hdf5(str(path)):
            with h5py.File(str(path), 'r') as handle:
                values = {k: np.asarray(handle[k]) for k in NYU_SPLITS.values() if k in handle}
        else:
            from scipy.io import loadmat

            loaded = loadmat(str(path))
            values = {k: np.asarray(loaded[k]) for k in NYU_SPLITS.values() if k in loaded}
    except (OSError, ValueError, TypeError, NotImplementedError) as err:
        raise DataError(f'{path} cannot be read as a MATLAB file: {err}.') from err
    except ImportError as err:
        raise DataError(
            f'reading {path} (a MATLAB v5 file) needs scipy: pip install scipy (or the '
            "package's `datasets` extra)."
        ) from err
    splits: dict[str, list[int]] = {}
    for split, variable in NYU_SPLITS.items():
        if variable not in values:
            raise DataError(f'{path} has no {variable!r}; expected the NYUv2 splits.mat.')
        one_based = values[variable].reshape(-1)
        if one_based.size == 0 or not np.all(one_based == np.round(one_based)):
            raise DataError(f'{path}: {variable!r} must hold whole (1-based) image numbers.')
        indices = one_based.astype(np.int64) - 1
        if indices.min() < 0 or indices.max() >= count:
            raise DataError(
                f'{path}: {variable!r} holds image numbers {int(one_based.min())}..'
                f'{int(one_based.max())}, outside 1..{count} of the labeled .mat.'
            )
        splits[split] = indices.tolist()
    return splits


def load_nyu_labeled(
    path: Path, *, split: str = 'test', splits_path: Path | None = None
) -> list[RGBDSample]:
    """Lazy samples of ``nyu_depth_v2_labeled.mat`` in split order (see the module doc).

    Args:
        path: the labeled .mat.
        split: 'train' (795), 'test' (654) or 'all' (every image, file order).
        splits_path: ``splits.mat`` (default: beside ``path``); not read for 'all'.

    Raises:
        DataError: not HDF5, missing ``images`` / ``depths``, wrong shapes, or a bad split.
    """
    with _open_mat(path) as handle:
        count = _check_layout(path, handle)
    if split == 'all':
        indices = list(range(count))
    elif split in NYU_SPLITS:
        indices = read_splits(splits_path or path.with_name(SPLITS_FILE), count)[split]
    else:
        raise DataError(f'--split {split!r}: the labeled NYUv2 .mat has train, test or all.')
    return [
        RGBDSample.lazy(
            _mat_loader(path, index),
            NYU_CAMERA,
            str(path),
            position,
            name=f'{path.name}#{index + 1}',  # MATLAB's 1-based image number
        )
        for position, index in enumerate(indices)
    ]


def _mat_loader(path: Path, index: int) -> Any:
    def load() -> tuple[np.ndarray, np.ndarray]:
        with _open_mat(path) as handle:
            _check_layout(path, handle)
            image = np.asarray(handle[IMAGES][index])
            depth = np.asarray(handle[DEPTHS][index], dtype=np.float32)
        rgb = np.ascontiguousarray(image.transpose(2, 1, 0))  # (3, W, H) -> (H, W, 3)
        metres = np.ascontiguousarray(depth.T)  # (W, H) -> (H, W)
        with np.errstate(invalid='ignore'):
            metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
        return rgb, metres

    return load


def load_nyu_list(
    path: Path, *, data_root: Path | None = None, depth_root: Path | None = None
) -> list[RGBDSample]:
    """Lazy samples of a file list of colour jpg / png and 16-bit millimetre depth png.

    Raises:
        DataError: a malformed list or a listed file that does not exist (named with its line).
    """
    entries, _ = read_file_list(path, data_root=data_root, depth_root=depth_root, dataset=DATASET)
    samples = []
    for position, entry in enumerate(entries):
        depth_path = entry.depth
        assert depth_path is not None

        def load(rgb_path: Path = entry.rgb, depth_path: Path = depth_path) -> Any:
            depth = read_depth_png(depth_path, units_per_metre=MILLIMETRES_PER_METRE, what=DATASET)
            return read_color(rgb_path), depth

        samples.append(RGBDSample.lazy(load, NYU_CAMERA, str(path), position, name=str(entry.rgb)))
    return samples


def load_nyu(
    path: Path,
    *,
    split: str = 'test',
    data_root: Path | None = None,
    depth_root: Path | None = None,
) -> list[RGBDSample]:
    """A .mat (the labeled set, with ``split``) or a file list (the sync / test folders)."""
    if path.suffix.lower() == '.mat':
        return load_nyu_labeled(path, split=split)
    return load_nyu_list(path, data_root=data_root, depth_root=depth_root)
