"""NYU Depth V2 readers on files written in the real formats (dataset_files.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_files import (
    write_colour,
    write_matlab_v73,
    write_nyu_labeled,
    write_nyu_splits,
    write_png16,
)

from pixio_ros.data import DataError
from pixio_ros.data.nyu import NYU_CAMERA, load_nyu_labeled, load_nyu_list, read_splits

HEIGHT, WIDTH = 480, 640
FRAMES = 4


def planted_frame(index: int) -> tuple[np.ndarray, np.ndarray]:
    """An image and depth no transpose or flip leaves unchanged: values depend on row and column.

    Colour: R = row / 2, G = column / 3, B = 50 * index. Depth: 1 + row / 100 + column / 1000 +
    index metres, with a hole (0, as the raw Kinect gives) and a NaN.
    """
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([rows // 2, cols // 3, np.full_like(rows, 50 * index)], axis=-1).astype(np.uint8)
    depth = (1.0 + rows / 100.0 + cols / 1000.0 + index).astype(np.float32)
    depth[7, 11] = 0.0
    depth[8, 12] = np.nan
    return rgb, depth


@pytest.fixture
def labeled(tmp_path) -> Path:
    """nyu_depth_v2_labeled.mat of FRAMES planted frames, splits.mat: train 1, 3; test 2, 4."""
    frames = [planted_frame(i) for i in range(FRAMES)]
    mat = write_nyu_labeled(
        tmp_path / 'nyu_depth_v2_labeled.mat', [f[0] for f in frames], [f[1] for f in frames]
    )
    write_nyu_splits(tmp_path / 'splits.mat', train=[1, 3], test=[2, 4])
    return mat


def test_the_mat_holds_what_h5py_shows_of_the_real_file(labeled):
    import h5py

    with h5py.File(labeled, 'r') as handle:
        assert handle['images'].shape == (FRAMES, 3, WIDTH, HEIGHT)
        assert handle['images'].dtype == np.uint8
        assert handle['depths'].shape == (FRAMES, WIDTH, HEIGHT)
    assert labeled.read_bytes().startswith(b'MATLAB 7.3 MAT-file')


@pytest.mark.parametrize(('split', 'numbers'), [('train', (1, 3)), ('test', (2, 4))])
def test_labeled_split_images_depth_and_camera(labeled, split, numbers):
    samples = load_nyu_labeled(labeled, split=split)
    assert [s.name for s in samples] == [f'nyu_depth_v2_labeled.mat#{n}' for n in numbers]
    for sample, number in zip(samples, numbers, strict=True):
        rgb, depth = planted_frame(number - 1)
        assert sample.rgb.shape == (HEIGHT, WIDTH, 3) and sample.rgb.dtype == np.uint8
        np.testing.assert_array_equal(sample.rgb, rgb)
        assert sample.depth.dtype == np.float32
        assert np.isnan(sample.depth[7, 11]) and np.isnan(sample.depth[8, 12])
        valid = np.isfinite(depth) & (depth > 0)
        np.testing.assert_array_equal(sample.depth[valid], depth[valid])
        assert np.isfinite(sample.depth).sum() == valid.sum()
        # orientation: row 470, column 20 of the image (not its transpose)
        assert tuple(sample.rgb[470, 20]) == (235, 6, 50 * (number - 1))
        assert sample.depth[470, 20] == pytest.approx(1 + 4.70 + 0.020 + number - 1, abs=1e-5)
        assert sample.camera == NYU_CAMERA


def test_the_published_kinect_colour_intrinsics():
    camera = NYU_CAMERA
    assert (camera.width, camera.height) == (640, 480)
    assert (camera.fx, camera.fy) == pytest.approx((518.8579, 519.4696), abs=1e-4)
    assert (camera.cx, camera.cy) == pytest.approx((325.5824, 253.7362), abs=1e-4)
    assert not camera.has_distortion  # the released images are undistorted


def test_split_all_and_splits_saved_as_v73(labeled, tmp_path):
    assert [s.index for s in load_nyu_labeled(labeled, split='all')] == [0, 1, 2, 3]
    hdf5_splits = write_matlab_v73(
        tmp_path / 'splits_v73.mat',
        {'trainNdxs': np.array([[2.0, 4.0]]), 'testNdxs': np.array([[1.0, 3.0]])},
    )
    assert read_splits(hdf5_splits, FRAMES) == {'train': [1, 3], 'test': [0, 2]}


def test_the_real_split_sizes_are_read_one_based(tmp_path):
    rng = np.random.default_rng(0)
    order = rng.permutation(1449) + 1
    path = write_nyu_splits(tmp_path / 'splits.mat', train=order[:795], test=order[795:])
    splits = read_splits(path, 1449)
    assert len(splits['train']) == 795 and len(splits['test']) == 654
    assert splits['train'][0] == order[0] - 1
    assert sorted(splits['train'] + splits['test']) == list(range(1449))


def test_a_mat_without_depths_is_one_error_naming_the_file(tmp_path):
    rgb, depth = planted_frame(0)
    mat = write_nyu_labeled(tmp_path / 'nyu.mat', [rgb], [depth], depths=False)
    with pytest.raises(DataError, match=rf"{mat} has no 'depths' dataset \(it has: images,"):
        load_nyu_labeled(mat, split='all')


def test_not_hdf5_missing_splits_and_out_of_range_indices(labeled, tmp_path):
    not_mat = tmp_path / 'other.mat'
    not_mat.write_bytes(b'MATLAB 5.0 MAT-file' + b'\0' * 200)
    with pytest.raises(DataError, match=rf'{not_mat} is not a MATLAB v7.3 \(HDF5\) file'):
        load_nyu_labeled(not_mat)
    (labeled.parent / 'splits.mat').unlink()
    with pytest.raises(DataError, match=r'splits\.mat does not exist: the official NYUv2'):
        load_nyu_labeled(labeled, split='test')
    write_nyu_splits(labeled.parent / 'splits.mat', train=[1, 5], test=[2])
    with pytest.raises(DataError, match=r"'trainNdxs' holds image numbers 1\.\.5, outside 1\.\.4"):
        load_nyu_labeled(labeled, split='train')


def test_wrong_image_layout_is_refused(tmp_path):
    mat = write_matlab_v73(
        tmp_path / 'nyu.mat',
        {
            'images': np.zeros((2, HEIGHT, WIDTH, 3), np.uint8),  # not MATLAB's transposed order
            'depths': np.zeros((2, WIDTH, HEIGHT), np.float32),
        },
    )
    with pytest.raises(DataError, match=r"'images' is uint8 \(2, 480, 640, 3\); expected"):
        load_nyu_labeled(mat, split='all')


def write_sync(root: Path, scene: str, number: int) -> tuple[str, str, np.ndarray, np.ndarray]:
    """One frame of the sync layout: (rgb relative path, depth relative path, rgb, depth m)."""
    rgb, depth = planted_frame(number)
    depth = np.round(depth * 1000) / 1000  # millimetre PNG
    rgb_name, depth_name = f'{scene}/rgb_{number:05d}.png', f'{scene}/sync_depth_{number:05d}.png'
    write_colour(root / rgb_name, rgb)
    write_png16(root / depth_name, depth, 1000.0)
    return rgb_name, depth_name, rgb, depth


def test_file_list_layout_with_bts_leading_slashes_and_focal(tmp_path):
    root = tmp_path / 'sync'
    rows = [write_sync(root, 'kitchen_0028b', n) for n in (0, 1)]
    listing = tmp_path / 'nyudepthv2_train_files_with_gt.txt'
    listing.write_text(''.join(f'/{r} /{d} 518.8579\n' for r, d, *_ in rows))
    samples = load_nyu_list(listing, data_root=root)
    assert len(samples) == 2
    for sample, (_, _, rgb, depth) in zip(samples, rows, strict=True):
        np.testing.assert_array_equal(sample.rgb, rgb)
        valid = np.isfinite(depth) & (depth > 0)
        np.testing.assert_allclose(sample.depth[valid], depth[valid], atol=1e-6)
        assert np.isnan(sample.depth[7, 11]) and np.isnan(sample.depth[8, 12])
        assert sample.camera == NYU_CAMERA


def test_a_list_naming_a_missing_file_is_one_error_naming_it(tmp_path):
    root = tmp_path / 'sync'
    rgb_name, depth_name, *_ = write_sync(root, 'bathroom', 3)
    listing = tmp_path / 'val.txt'
    listing.write_text(f'{rgb_name} {depth_name}\n{rgb_name} bathroom/sync_depth_99999.png\n')
    with pytest.raises(DataError, match=rf'{listing}:2: depth image bathroom/sync_depth_99999'):
        load_nyu_list(listing, data_root=root)


def test_an_8_bit_depth_png_is_one_error_naming_the_file(tmp_path):
    root = tmp_path / 'sync'
    rgb_name, depth_name, *_ = write_sync(root, 'bedroom', 1)
    cv2.imwrite(str(root / depth_name), np.full((HEIGHT, WIDTH), 7, np.uint8))
    listing = tmp_path / 'list.txt'
    listing.write_text(f'{rgb_name} {depth_name}\n')
    (sample,) = load_nyu_list(listing, data_root=root)
    with pytest.raises(DataError, match=rf'depth image {root / depth_name} is 8-bit with 1 '):
        sample.frame()
