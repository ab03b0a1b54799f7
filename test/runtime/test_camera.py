"""Intrinsics rescaling, undistorted rays (checked by re-projecting with cv2), back-projection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixio_ros.runtime.camera import CameraError, PinholeCamera, backproject, patch_points

K_640 = (500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0)


def test_scaled_to_uses_pixel_centres():
    camera = PinholeCamera.from_k(640, 480, K_640)
    half = camera.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 255.0, 159.5, 119.5)
    assert (half.width, half.height) == (320, 240)
    assert camera.scaled_to(640, 480) is camera


@pytest.mark.parametrize(('width', 'height'), [(1280, 960), (320, 240), (640, 480)])
def test_matched_to_accepts_integer_rescales(width, height):
    camera = PinholeCamera.from_k(width, height, K_640)
    matched = camera.matched_to(640, 480)
    assert (matched.width, matched.height) == (640, 480)
    assert matched.fx == pytest.approx(500.0 * 640 / width)


@pytest.mark.parametrize(('width', 'height'), [(1280, 720), (960, 720), (641, 480)])
def test_matched_to_refuses_other_sizes(width, height):
    camera = PinholeCamera.from_k(width, height, K_640)
    with pytest.raises(CameraError, match=f'{width}x{height}.*640x480.*not an integer rescale'):
        camera.matched_to(640, 480)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'k': (0.0,) * 9}, 'uncalibrated'),
        ({'width': 0}, 'calibrate the camera'),
        ({'k': (1.0,) * 4}, 'row-major 3x3'),
        ({'d': (0.1, 0, 0, 0), 'distortion_model': 'fisheye_weird'}, 'not supported'),
    ],
)
def test_invalid_intrinsics_are_refused(kwargs, match):
    args = {'width': 640, 'height': 480, 'k': K_640, **kwargs}
    with pytest.raises(CameraError, match=match):
        PinholeCamera.from_k(args.pop('width'), args.pop('height'), args.pop('k'), **args)


def test_unknown_model_without_coefficients_is_pinhole():
    camera = PinholeCamera.from_k(64, 48, K_640, d=(0.0,) * 5, distortion_model='unknown')
    assert not camera.has_distortion


def test_pinhole_rays_are_the_normalised_pixel_coordinates():
    camera = PinholeCamera.from_k(64, 48, (40.0, 0, 31.5, 0, 42.0, 23.5, 0, 0, 1))
    rays = camera.rays()
    v, u = np.mgrid[0:48, 0:64]
    np.testing.assert_allclose(rays[..., 0], (u - 31.5) / 40.0, atol=1e-6)
    np.testing.assert_allclose(rays[..., 1], (v - 23.5) / 42.0, atol=1e-6)
    assert camera.rays() is rays  # cached


DISTORTIONS = {
    'plumb_bob': (-0.28, 0.09, 0.001, -0.0015, -0.015),
    'rational_polynomial': (-0.3, 0.12, 0.001, -0.002, -0.02, 0.02, 0.01, 0.0),
    'equidistant': (-0.04, 0.008, -0.001, 0.0002),
}


@pytest.mark.parametrize('model', sorted(DISTORTIONS))
def test_undistorted_rays_reproject_onto_their_pixels(model):
    d = DISTORTIONS[model]
    camera = PinholeCamera.from_k(160, 120, (125, 0, 79.5, 0, 127, 59.5, 0, 0, 1), d=d,
                                  distortion_model=model)
    rays = camera.rays().reshape(-1, 2).astype(np.float64)
    object_points = np.concatenate([rays, np.ones((rays.shape[0], 1))], axis=1)
    if model == 'equidistant':
        projected, _ = cv2.fisheye.projectPoints(
            object_points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.k, np.array(d)
        )
    else:
        projected, _ = cv2.projectPoints(
            object_points, np.zeros(3), np.zeros(3), camera.k, np.array(d)
        )
    v, u = np.mgrid[0:120, 0:160]
    pixels = np.stack([u, v], axis=-1).reshape(-1, 2)
    np.testing.assert_allclose(projected.reshape(-1, 2), pixels, atol=1e-3)
    pinhole = (u - 79.5) / 125.0
    assert np.abs(camera.rays()[..., 0] - pinhole).max() > 0.01  # distortion was applied


def test_backproject_follows_the_pinhole_model():
    camera = PinholeCamera.from_k(8, 6, (10.0, 0, 3.5, 0, 12.0, 2.5, 0, 0, 1))
    depth = np.arange(48, dtype=np.float32).reshape(6, 8) / 10 + 0.5
    depth[2, 3] = np.nan
    points = backproject(depth, camera.rays())
    v, u = np.mgrid[0:6, 0:8]
    np.testing.assert_array_equal(points[..., 2], depth)
    np.testing.assert_allclose(points[..., 0], (u - 3.5) * depth / 10.0, rtol=1e-6)
    np.testing.assert_allclose(points[..., 1], (v - 2.5) * depth / 12.0, rtol=1e-6)
    assert np.isnan(points[2, 3]).all()


def test_backproject_refuses_mismatched_sizes():
    camera = PinholeCamera.from_k(8, 6, (10.0, 0, 3.5, 0, 12.0, 2.5, 0, 0, 1))
    with pytest.raises(CameraError, match='depth is 4x3 but the rays are 8x6'):
        backproject(np.ones((3, 4), np.float32), camera.rays())


def test_patch_points_use_patch_mean_depth_and_centre_rays():
    camera = PinholeCamera.from_k(64, 32, (50.0, 0, 31.5, 0, 50.0, 15.5, 0, 0, 1))
    depth = np.kron(np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]), np.ones((16, 16)))
    depth = depth.astype(np.float32)
    depth[0, 0] = np.nan
    xyz = patch_points(depth, camera, 2, 4)
    assert xyz.shape == (2, 4, 3)
    assert np.isnan(xyz[0, 0]).all()
    centre_u = np.array([7.5, 23.5, 39.5, 55.5])
    centre_v = np.array([7.5, 23.5])
    np.testing.assert_allclose(xyz[1, :, 2], [5, 6, 7, 8], rtol=1e-6)
    np.testing.assert_allclose(xyz[1, :, 0], (centre_u - 31.5) * xyz[1, :, 2] / 50.0, rtol=1e-5)
    np.testing.assert_allclose(xyz[:, 1, 1], (centre_v - 15.5) * xyz[:, 1, 2] / 50.0, rtol=1e-5)
