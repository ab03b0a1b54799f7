"""Geometry of the synthetic scene: known planes at known pixels, back-projection onto surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.data.sample_bag import STRONG_DISTORTION
from pixio_ros.data.scene import (
    CAMERA_HEIGHT_M,
    Plane,
    Scene,
    build_scene,
    camera_path,
    look_pose,
    realistic_camera,
    realistic_intrinsics,
)

GREY = np.array([0.5, 0.5, 0.5])
UNBOUNDED = (np.full(3, -np.inf), np.full(3, np.inf))


def test_intrinsics_are_realsense_like():
    k = realistic_intrinsics(480, 640)
    assert k[0, 0] == k[1, 1] == 615.0
    assert abs(k[0, 2] - 319.5) < 2 and abs(k[1, 2] - 239.5) < 2
    half = realistic_intrinsics(240, 320)
    np.testing.assert_allclose(half[:2, :2], k[:2, :2] / 2)


def test_fronto_parallel_wall_has_constant_depth():
    wall = Plane(np.array([0.0, 0.0, 1.0]), 5.0, *UNBOUNDED, GREY, checker_m=1.0)
    pose = look_pose(np.zeros(3), yaw=0.0, pitch=0.0)
    _, depth = Scene((wall,)).render(pose, realistic_camera(12, 16))
    np.testing.assert_allclose(depth, 5.0, rtol=0, atol=1e-12)


def test_floor_depth_at_known_rows():
    floor = Plane(np.array([0.0, 1.0, 0.0]), CAMERA_HEIGHT_M, *UNBOUNDED, GREY, checker_m=1.0)
    camera = realistic_camera(24, 32)
    k = camera.k
    _, depth = Scene((floor,)).render(look_pose(np.zeros(3), 0.0, 0.0), camera)
    rows = np.arange(24, dtype=np.float64)
    below = rows > k[1, 2]
    # A level camera h above the floor sees it at z = h * fy / (v - cy) below the horizon.
    expected = CAMERA_HEIGHT_M * k[1, 1] / (rows[below] - k[1, 2])
    np.testing.assert_allclose(depth[below], np.repeat(expected[:, None], 32, axis=1), rtol=1e-12)
    assert np.isnan(depth[~below]).all()  # above the horizon the ray never meets the floor


@pytest.mark.parametrize('frame', [0, 7])
def test_backprojected_depth_lands_on_scene_surfaces(frame):
    scene = build_scene(seed=3)
    camera = realistic_camera(36, 48)
    k = camera.k
    pose = camera_path(frame, 10)
    rgb, depth = scene.render(pose, camera)
    assert rgb.shape == (36, 48, 3) and rgb.dtype == np.uint8
    v, u = np.nonzero(np.isfinite(depth))
    assert len(v) == depth.size  # the room is closed: every ray hits something
    z = depth[v, u]
    camera_points = np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=1)
    world = camera_points @ pose.rotation.T + pose.position
    assert scene.surface_distance(world).max() < 1e-9
    # while points pushed 5 % further along their rays are off the surfaces
    assert np.median(scene.surface_distance(world + 0.05 * (world - pose.position))) > 1e-3


def test_same_seed_same_scene_other_seed_other_scene():
    camera = realistic_camera(24, 32)
    first = build_scene(1).render(camera_path(0, 4), camera)
    again = build_scene(1).render(camera_path(0, 4), camera)
    other = build_scene(2).render(camera_path(0, 4), camera)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_distorted_camera_renders_along_its_undistorted_rays():
    """Depth of a distorted view back-projects onto the scene with `camera.rays()`, not pinhole."""
    scene = build_scene(seed=3)
    camera = realistic_camera(36, 48, distortion=STRONG_DISTORTION)
    pose = camera_path(2, 10)
    _, depth = scene.render(pose, camera)
    rays = camera.rays().astype(np.float64)
    world = np.stack([rays[..., 0] * depth, rays[..., 1] * depth, depth], -1).reshape(-1, 3)
    world = world @ pose.rotation.T + pose.position
    assert scene.surface_distance(world).max() < 1e-5  # float32 rays
    v, u = np.mgrid[0:36, 0:48]
    k = camera.k
    pinhole = (
        np.stack(
            [(u - k[0, 2]) / k[0, 0] * depth, (v - k[1, 2]) / k[1, 1] * depth, depth], -1
        ).reshape(-1, 3)
        @ pose.rotation.T
        + pose.position
    )
    assert np.median(scene.surface_distance(pinhole)) > 1e-2
