"""Navigation products and the point gate: laser scan, obstacle band, edge and confidence filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.cloud import CloudOptions, flying_pixels, gate_mask
from pixio_ros.runtime.navigation import (
    NavigationOptions,
    horizon_row,
    laser_scan,
    obstacle_points,
    scan_frame_id,
)

CAMERA = PinholeCamera(width=80, height=60, fx=60.0, fy=61.0, cx=39.5, cy=29.5)


def test_scan_ranges_equal_an_independent_computation():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 6.0, (60, 80)).astype(np.float32)
    depth[30, 5] = np.nan
    options = NavigationOptions(scan_rows=3, range_min=0.6, range_max=5.5)
    scan = laser_scan(depth, CAMERA, options)
    # Oracle, per column: bearing -atan((u - cx) / fx), range over rows 29..31 = z * hypot(x/z, 1).
    u = np.arange(80)
    bearing = -np.arctan((u - CAMERA.cx) / CAMERA.fx)
    assert scan.angle_min == pytest.approx(bearing.min(), abs=1e-6)
    assert scan.angle_max == pytest.approx(bearing.max(), abs=1e-6)
    assert scan.angle_increment == pytest.approx((bearing.max() - bearing.min()) / 79, abs=1e-7)
    expected = np.full(80, np.inf)
    for column in range(80):
        slope = (column - CAMERA.cx) / CAMERA.fx
        ranges = [
            depth[row, column] * math.sqrt(1 + slope * slope)
            for row in (29, 30, 31)
            if np.isfinite(depth[row, column])
        ]
        kept = [r for r in ranges if 0.6 <= r <= 5.5]
        # Bins run from angle_min (the rightmost column) to angle_max (the leftmost); columns
        # sharing a bin (bearings are not uniform in u) leave the nearer range.
        index = int(round((bearing[column] - scan.angle_min) / scan.angle_increment))
        expected[index] = min([expected[index], *kept])
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-5)


def test_horizon_row_moves_up_when_the_camera_pitches_down():
    assert horizon_row(CAMERA, 0.0) == pytest.approx(CAMERA.cy)
    assert horizon_row(CAMERA, 0.1) == pytest.approx(CAMERA.cy - CAMERA.fy * math.tan(0.1))


def test_obstacles_are_the_points_in_the_height_band():
    # Level camera 0.5 m up: optical y down, so height = 0.5 - y.
    points = np.array(
        [[[0.0, 0.5, 2.0], [0.0, 0.0, 2.0], [0.0, -1.6, 2.0], [np.nan, np.nan, np.nan]]],
        dtype=np.float32,
    )
    options = NavigationOptions(
        camera_height=0.5, min_obstacle_height=0.05, max_obstacle_height=2.0, obstacle_stride=1
    )
    kept = obstacle_points(points, options)
    assert kept.shape == (1, 1, 3)  # floor (h 0) and 2.1 m (above the band) are left out
    np.testing.assert_array_equal(kept[0, 0], [0.0, 0.0, 2.0])


def test_obstacle_height_accounts_for_the_pitch():
    pitch = 0.3
    # The floor point straight along the optical axis of a camera 1 m up tilted down by pitch.
    along = 1.0 / math.sin(pitch)
    floor = np.array([[[0.0, 0.0, along]]], dtype=np.float32)
    options = NavigationOptions(camera_height=1.0, camera_pitch=pitch, obstacle_stride=1)
    assert obstacle_points(floor, options).shape == (1, 0, 3)
    raised = NavigationOptions(
        camera_height=1.0, camera_pitch=pitch, min_obstacle_height=-0.01, obstacle_stride=1
    )
    assert obstacle_points(floor, raised).shape == (1, 1, 3)


def step_with_flying_pixels() -> tuple[np.ndarray, np.ndarray]:
    """A near plane (1 m) left of a far plane (4 m), blurred into a 3-pixel ramp between them."""
    depth = np.ones((20, 30), dtype=np.float32)
    depth[:, 15:] = 4.0
    ramp = np.zeros(depth.shape, dtype=bool)
    for offset, value in enumerate((1.75, 2.5, 3.25)):
        depth[:, 12 + offset] = value
        ramp[:, 12 + offset] = True
    return depth, ramp


def test_edge_filter_removes_the_flying_pixels_and_keeps_the_planes():
    depth, ramp = step_with_flying_pixels()
    flying = flying_pixels(depth, 0.05)
    np.testing.assert_array_equal(flying, ramp)


def test_a_plane_at_an_angle_keeps_every_pixel():
    u = np.arange(40, dtype=np.float32)
    depth = np.tile(2.0 + 0.01 * u, (10, 1))  # 0.5 % per pixel: a wall at an angle
    assert not flying_pixels(depth, 0.05).any()


def test_gate_combines_confidence_and_edges_and_is_none_when_off():
    depth, ramp = step_with_flying_pixels()
    confidence = np.ones(depth.shape, dtype=np.float32)
    confidence[0, 0] = 0.1
    assert gate_mask(depth, confidence, CloudOptions()) is None
    drop = gate_mask(depth, confidence, CloudOptions(min_confidence=0.5, max_depth_gradient=0.05))
    expected = ramp.copy()
    expected[0, 0] = True
    np.testing.assert_array_equal(drop, expected)


@pytest.mark.parametrize(
    ('image_frame', 'setting', 'expected'),
    [
        ('camera_color_optical_frame', '', 'camera_color_frame'),
        ('cam', '', 'cam'),
        ('camera_color_optical_frame', 'base_scan', 'base_scan'),
    ],
)
def test_scan_frame_id(image_frame, setting, expected):
    assert scan_frame_id(image_frame, NavigationOptions(scan_frame_id=setting)) == expected
