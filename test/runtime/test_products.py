"""Frame products as arrays, without DDS: colour map, geometry sources, features, density."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.cloud import CloudOptions
from pixio_ros.runtime.engine import Prediction
from pixio_ros.runtime.products import (
    ProductOptions,
    Wanted,
    build_products,
    colorize,
    colormap_max_depth,
    depth_colormap,
    engine_outputs,
)

HEIGHT, WIDTH = 32, 48
GRID = (2, 3)
CHANNELS = 8


def turbo(level: int) -> np.ndarray:
    """The turbo colour (BGR) of one 8-bit level, straight from OpenCV."""
    return cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_TURBO)[0, 0]


def test_colorize_maps_range_ends_rounds_and_blacks_out_non_finite():
    values = np.array([[1.0, 3.0, np.nan, 99.0, np.inf, 2.0]], np.float32)
    bgr = colorize(values, 1.0, 3.0)
    np.testing.assert_array_equal(bgr[0, 0], turbo(0))
    np.testing.assert_array_equal(bgr[0, 1], turbo(255))
    np.testing.assert_array_equal(bgr[0, 2], [0, 0, 0])
    np.testing.assert_array_equal(bgr[0, 3], turbo(255))  # clipped at the top of the scale
    np.testing.assert_array_equal(bgr[0, 4], [0, 0, 0])
    np.testing.assert_array_equal(bgr[0, 5], turbo(128))  # 127.5 rounds to even


def test_depth_colormap_and_its_range():
    depth = np.full((2, 2), 1.0, np.float32)
    np.testing.assert_array_equal(depth_colormap(depth, 4.0)[0, 0], turbo(round(255 / 4)))
    assert colormap_max_depth(5.0, 20.0) == 5.0
    assert colormap_max_depth(0.0, 20.0) == 20.0
    assert colormap_max_depth(0.0, None) == 10.0


def prediction(*, depth: bool = True, points: bool = False, confidence: bool = False) -> Prediction:
    rng = np.random.default_rng(3)
    z = rng.uniform(1.0, 4.0, (HEIGHT, WIDTH)).astype(np.float32)
    head_points = None
    if points:
        head_points = np.dstack([z * 0.1, z * -0.2, z]).astype(np.float32)
    return Prediction(
        depth=z if depth else None,
        points=head_points,
        confidence=rng.uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32) if confidence else None,
        features=rng.standard_normal((*GRID, CHANNELS)).astype(np.float32),
        embedding=rng.standard_normal(CHANNELS).astype(np.float32),
    )


def camera() -> PinholeCamera:
    return PinholeCamera(width=WIDTH, height=HEIGHT, fx=40.0, fy=41.0, cx=23.5, cy=15.5)


def rgb() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)


def test_points_back_project_depth_with_the_camera():
    pred = prediction(points=True)
    products = build_products(pred, rgb(), camera(), Wanted.everything(), ProductOptions())
    assert products.points_source == 'camera_info'
    cloud = products.points
    assert cloud is not None
    v, u = 5, 7
    z = pred.depth[v, u]
    np.testing.assert_allclose(
        cloud.points[v, u], [(u - 23.5) / 40.0 * z, (v - 15.5) / 41.0 * z, z], rtol=1e-5
    )
    assert products.depth_camera == camera()


def test_without_camera_points_and_feature_xyz_come_from_the_head():
    """The eval bag once wrote NaN feature xyz here while the node used the head's points."""
    pred = prediction(points=True)
    products = build_products(pred, rgb(), None, Wanted.everything(), ProductOptions())
    assert products.points_source == 'head'
    assert products.points is not None and products.features is not None
    np.testing.assert_array_equal(products.points.points, pred.points)
    expected = cv2.resize(pred.points, (GRID[1], GRID[0]), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(products.features.xyz, expected)
    assert np.isfinite(products.features.xyz).all()
    assert products.depth_camera is None


def test_without_any_geometry_points_are_skipped_with_a_reason():
    products = build_products(prediction(), rgb(), None, Wanted.everything(), ProductOptions())
    assert products.points is None and products.points_source is None
    assert any('CameraInfo' in warning for warning in products.warnings)
    assert products.features is not None and np.isnan(products.features.xyz).all()


def test_options_select_colour_confidence_stride_and_half_features():
    pred = prediction(confidence=True)
    options = ProductOptions(
        cloud=CloudOptions(stride=2), rgb=False, confidence=True, features_half=True
    )
    products = build_products(pred, rgb(), camera(), Wanted.everything(), options)
    assert products.points is not None
    assert products.points.points.shape == (HEIGHT // 2, WIDTH // 2, 3)
    assert products.points.rgb is None
    np.testing.assert_array_equal(products.points.confidence, pred.confidence[::2, ::2])
    assert products.features is not None and products.features.values.dtype == np.float16


def test_colours_follow_the_depth_resolution():
    image = np.random.default_rng(5).integers(0, 256, (HEIGHT * 2, WIDTH * 2, 3), np.uint8)
    products = build_products(prediction(), image, camera(), Wanted(points=True), ProductOptions())
    assert products.points is not None and products.points.rgb is not None
    expected = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(products.points.rgb, expected)


def test_only_wanted_products_are_built():
    products = build_products(
        prediction(), rgb(), camera(), Wanted(embedding=True), ProductOptions()
    )
    assert products.embedding is not None
    assert (products.depth, products.colored, products.points, products.features) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ('wanted', 'has_camera', 'expected'),
    [
        (Wanted(depth=True), True, {'depth'}),
        (Wanted(points=True), True, {'depth', 'confidence'}),
        (Wanted(points=True), False, {'depth', 'points', 'confidence'}),
        (Wanted(features=True), False, {'depth', 'points', 'features'}),
        (Wanted(embedding=True), False, {'embedding'}),
        (Wanted(), False, set()),
    ],
)
def test_engine_outputs_fetch_only_what_the_products_need(wanted, has_camera, expected):
    provided = ('points', 'confidence', 'features', 'embedding')
    names = engine_outputs(wanted, provided, has_camera=has_camera, confidence=True)
    assert names == expected & set(provided)
