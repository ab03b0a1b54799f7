"""Point selection: stride, range limits, dense clouds and voxel averaging."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.runtime.cloud import CloudOptions, select_points
from pixio_ros.wire import pack_rgb


@pytest.fixture
def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:6, 0:8].astype(np.float32)
    points = np.stack([u, v, np.full_like(u, 2.0)], axis=-1)
    points[0, 0] = np.nan
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[..., 0] = u.astype(np.uint8) * 10
    confidence = v / 10
    return points, rgb, confidence


def test_defaults_keep_the_organized_grid(grid):
    points, rgb, confidence = grid
    selected = select_points(points, CloudOptions(), rgb=rgb, confidence=confidence)
    assert selected.points is points
    assert not selected.dense


def test_stride_subsamples_rows_and_columns(grid):
    points, rgb, confidence = grid
    selected = select_points(points, CloudOptions(stride=2), rgb=rgb, confidence=confidence)
    assert selected.points.shape == (3, 4, 3)
    np.testing.assert_array_equal(selected.points[1, 2], [4.0, 2.0, 2.0])
    assert selected.rgb[1, 2, 0] == 40
    assert selected.confidence[1, 2] == pytest.approx(0.2)


def test_range_limits_mark_points_invalid(grid):
    points, _, _ = grid
    selected = select_points(points, CloudOptions(min_range=2.5, max_range=6.0))
    distance = np.linalg.norm(points, axis=-1)
    inside = (distance >= 2.5) & (distance <= 6.0)
    assert np.isfinite(selected.points[inside]).all()
    assert np.isnan(selected.points[~inside]).all()
    assert np.isfinite(points[1, 1]).all()  # the input is untouched


def test_dense_drops_invalid_points(grid):
    points, rgb, _ = grid
    selected = select_points(points, CloudOptions(dense=True), rgb=rgb)
    assert selected.dense
    assert selected.points.shape == (1, 47, 3)
    assert selected.rgb.shape == (1, 47, 3)
    assert np.isfinite(selected.points).all()


def test_voxel_averaging_merges_points_per_cube():
    points = np.array(
        [[[0.1, 0.1, 1.1], [0.3, 0.2, 1.2], [2.5, 0.5, 1.5], [np.nan, np.nan, np.nan]]],
        dtype=np.float32,
    )
    rgb = np.array([[[10, 20, 30], [30, 40, 50], [200, 200, 200], [0, 0, 0]]], dtype=np.uint8)
    selected = select_points(points, CloudOptions(voxel_size=1.0), rgb=rgb)
    order = np.argsort(selected.points[0, :, 0])
    np.testing.assert_allclose(
        selected.points[0, order], [[0.2, 0.15, 1.15], [2.5, 0.5, 1.5]], rtol=1e-6
    )
    np.testing.assert_array_equal(selected.rgb[0, order], [[20, 30, 40], [200, 200, 200]])
    assert selected.dense


@pytest.mark.parametrize('voxel_size', [1e-6, 1e-30])
def test_tiny_voxels_keep_distinct_points_apart(voxel_size):
    # Cell indices far beyond int64 (1e-30) or a cell count beyond int64 keys (1e-6 over 1 km).
    points = np.array(
        [[[-500.0, 3.0, 1.0], [-500.0, 3.0, 1.0], [250.0, -7.5, 999.0], [0.5, 0.25, 2.0]]],
        dtype=np.float32,
    )
    confidence = np.array([[0.2, 0.4, 0.9, 0.5]], dtype=np.float32)
    selected = select_points(points, CloudOptions(voxel_size=voxel_size), confidence=confidence)
    order = np.argsort(selected.points[0, :, 2])
    np.testing.assert_array_equal(selected.points[0, order], points[0, [0, 3, 2]])
    np.testing.assert_allclose(selected.confidence[0, order], [0.3, 0.5, 0.9], rtol=1e-6)


@pytest.mark.parametrize('shape', [(4, 5, 3), (7, 3), (0, 3)])
def test_pack_rgb_holds_0x00rrggbb_bits_for_any_leading_shape(shape):
    rgb = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    packed = pack_rgb(rgb)
    assert packed.shape == shape[:-1] and packed.dtype == np.float32
    bits = packed.view('<u4')
    expected = (
        (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2].astype(np.uint32)
    )
    np.testing.assert_array_equal(bits, expected)
