"""The camera model: CameraInfo validation, rescale / crop, undistorted rays, back-projection."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pixio_ros.runtime.camera import CameraError, PinholeCamera, backproject, patch_points

K_640 = (500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0)
K_160 = (125.0, 0.0, 79.5, 0.0, 127.0, 59.5, 0.0, 0.0, 1.0)
P_160 = (120.0, 0.0, 80.0, -6.0, 0.0, 121.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0)
R_TILT = tuple(cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0].reshape(-1))
STRONG_PLUMB_BOB = (-0.35, 0.12, 0.001, -0.0015, -0.02)


def scaled_k(k: tuple[float, ...], factor: float) -> tuple[float, ...]:
    fx, _, cx, _, fy, cy, *_ = k
    return (
        fx * factor,
        0.0,
        (cx + 0.5) * factor - 0.5,
        0.0,
        fy * factor,
        (cy + 0.5) * factor - 0.5,
        0.0,
        0.0,
        1.0,
    )


FIELDS = {
    'width': 160,
    'height': 120,
    'distortion_model': 'plumb_bob',
    'd': STRONG_PLUMB_BOB,
    'k': K_160,
    'r': R_TILT,
    'p': P_160,
}


def rclpy_info(**changes):
    """A real rclpy sensor_msgs/CameraInfo (the node's input)."""
    from sensor_msgs.msg import CameraInfo

    fields = {**FIELDS, **changes}
    roi = fields.pop('roi', None)
    binning = fields.pop('binning', (0, 0))
    msg = CameraInfo(
        width=fields['width'], height=fields['height'], distortion_model=fields['distortion_model']
    )
    msg.d = [float(v) for v in fields['d']]
    msg.k = [float(v) for v in fields['k']]
    msg.r = [float(v) for v in fields['r']]
    msg.p = [float(v) for v in fields['p']]
    msg.binning_x, msg.binning_y = binning
    if roi is not None:
        msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = roi
    return msg


def rosbags_info(**changes):
    """A rosbags typestore CameraInfo, CDR round-tripped as a bag reader returns it."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    fields = {**FIELDS, **changes}
    x, y, w, h = fields.pop('roi', (0, 0, 0, 0))
    binning = fields.pop('binning', (0, 0))
    msg = types['sensor_msgs/msg/CameraInfo'](
        header=types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='cam'
        ),
        height=fields['height'],
        width=fields['width'],
        distortion_model=fields['distortion_model'],
        d=np.array(fields['d'], np.float64),
        k=np.array(fields['k'], np.float64),
        r=np.array(fields['r'], np.float64),
        p=np.array(fields['p'], np.float64),
        binning_x=binning[0],
        binning_y=binning[1],
        roi=types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=x, y_offset=y, height=h, width=w, do_rectify=False
        ),
    )
    raw = store.serialize_cdr(msg, msg.__msgtype__)
    return store.deserialize_cdr(raw, msg.__msgtype__)


# --- from_camera_info ------------------------------------------------------------------------


def test_rclpy_and_rosbags_camera_infos_give_the_same_camera():
    from_node = PinholeCamera.from_camera_info(rclpy_info())
    from_bag = PinholeCamera.from_camera_info(rosbags_info())
    assert from_node == from_bag and hash(from_node) == hash(from_bag)
    assert from_node.rays() is from_bag.rays()  # one cache entry: the same rays, bit for bit
    assert (from_node.width, from_node.height) == (160, 120)
    assert from_node.distortion_model == 'plumb_bob' and from_node.d == STRONG_PLUMB_BOB
    np.testing.assert_array_equal(from_node.k, np.reshape(K_160, (3, 3)))
    np.testing.assert_array_equal(from_node.r, np.reshape(R_TILT, (3, 3)))
    np.testing.assert_array_equal(from_node.p, np.reshape(P_160, (3, 4)))
    assert from_node.k.dtype == from_node.r.dtype == from_node.p.dtype == np.float64


@pytest.mark.parametrize('make', [rclpy_info, rosbags_info])
def test_roi_and_binning_describe_the_published_image(make):
    roi = PinholeCamera.from_camera_info(make(roi=(16, 8, 96, 64)))
    full = PinholeCamera.from_camera_info(make())
    assert roi == full.cropped(16, 8, 96, 64)
    binned = PinholeCamera.from_camera_info(make(binning=(2, 2)))
    assert binned == full.scaled_to(80, 60)


@pytest.mark.parametrize(
    ('changes', 'match'),
    [
        ({'k': (math.inf, *K_160[1:])}, r'K\[0\] is inf; every number of K, D, R and P must be'),
        ({'k': (125.0, math.nan, *K_160[2:])}, r'K\[1\] is nan'),
        ({'d': (-0.3, math.nan, 0.0, 0.0, 0.0)}, r'D\[1\] is nan'),
        ({'r': (*R_TILT[:8], math.inf)}, r'R\[8\] is inf'),
        ({'p': (*P_160[:3], math.nan, *P_160[4:])}, r'P\[3\] is nan'),
        ({'k': (0.0,) * 9}, r'fx=0.0, fy=0.0; expected both > 0: the camera is uncalibrated'),
        ({'k': (-125.0, *K_160[1:])}, r'fx=-125.0'),
        ({'k': (*K_160[:4], 0.0, *K_160[5:])}, r'fy=0.0'),
        ({'k': (*K_160[:8], 2.0)}, r'K rows 2-3 .* expected \(0, fy, cy\), \(0, 0, 1\)'),
        ({'k': scaled_k(K_160, 8.0)}, r'cx=639.5, far outside the 160x120 image'),
        ({'k': (*K_160[:5], -70.0, *K_160[6:])}, r'cy=-70.0, far outside'),
        ({'d': (-0.3, 0.1, 0.01)}, r'D has 3 coefficients for plumb_bob; expected 5 \(k1 k2'),
        ({'distortion_model': 'rational_polynomial'}, r'D has 5 .* rational_polynomial; .* 8'),
        ({'distortion_model': 'equidistant'}, r'D has 5 coefficients for equidistant; .* 4'),
        ({'distortion_model': 'fisheye_weird'}, r"model 'fisheye_weird' with non-zero D is not"),
        ({'distortion_model': ''}, r"model '' with non-zero D is not supported"),
        ({'width': 0}, r'camera size is 0x120; fill in width/height'),
        ({'roi': (100, 0, 96, 64)}, r'ROI: crop 96x64 at \(100, 0\) leaves the 160x120 image'),
        ({'binning': (200, 1)}, r'binning 200x1 leaves no pixel of the 160x120 image'),
        ({'binning': (2**32 - 1, 2)}, r'binning 4294967295x2 leaves no pixel'),
        (
            {'p': (*P_160[:8], 1e308, 1e308, 1.0, 0.0), 'roi': (16, 8, 96, 64)},
            r'ROI: P overflows at 96x64 \(from 160x120\)',
        ),
    ],
)
def test_invalid_camera_info_is_refused_with_one_line(changes, match):
    with pytest.raises(CameraError, match=match) as caught:
        PinholeCamera.from_camera_info(rclpy_info(**changes))
    assert '\n' not in str(caught.value)


def test_default_rclpy_camera_info_is_uncalibrated():
    from sensor_msgs.msg import CameraInfo

    with pytest.raises(CameraError, match='camera size is 0x0'):
        PinholeCamera.from_camera_info(CameraInfo())
    with pytest.raises(CameraError, match='uncalibrated'):
        PinholeCamera.from_camera_info(CameraInfo(width=64, height=48))


@pytest.mark.parametrize(
    'changes',
    [
        {'d': ()},  # a driver without calibration data: no distortion
        {'distortion_model': 'unknown', 'd': (0.0,) * 5},
        {'distortion_model': 'rational_polynomial', 'd': (0.1,) * 8},
        {'distortion_model': 'equidistant', 'd': (0.01,) * 4},
        {'k': (125.0, 0.0, -70.0, 0.0, 127.0, 170.0, 0.0, 0.0, 1.0)},  # within the margin
        {'p': (0.0,) * 12, 'r': (0.0,) * 9},  # unset P and R, as many mono drivers send
    ],
)
def test_accepted_camera_infos(changes):
    camera = PinholeCamera.from_camera_info(rclpy_info(**changes))
    assert camera.d == tuple(changes.get('d', STRONG_PLUMB_BOB))


def test_plumb_bob_with_three_coefficients_never_reaches_undistortion():
    """Today's bug: from_k accepted it and rays() failed inside cv2 with a traceback."""
    with pytest.raises(CameraError, match='D has 3 coefficients'):
        PinholeCamera.from_k(160, 120, K_160, d=(-0.3, 0.1, 0.01), distortion_model='plumb_bob')


# --- rescale and crop ------------------------------------------------------------------------


def test_scaled_to_uses_pixel_centres_for_k_and_p():
    camera = PinholeCamera.from_k(640, 480, K_640, p=(*K_640[:3], 10.0, *K_640[3:6], 0, 0, 0, 1, 0))
    half = camera.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 255.0, 159.5, 119.5)
    assert (half.width, half.height) == (320, 240)
    np.testing.assert_array_equal(half.p, [[250, 0, 159.5, 5], [0, 255, 119.5, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(half.r, np.eye(3))
    assert camera.scaled_to(640, 480) is camera


def test_unset_p_stays_unset():
    camera = PinholeCamera.from_k(640, 480, K_640)
    assert not camera.p.any()
    assert not camera.scaled_to(320, 240).p.any()
    assert not camera.cropped(10, 20, 100, 50).p.any()


def test_distortion_and_r_survive_rescale_and_crop():
    camera = PinholeCamera.from_camera_info(rclpy_info())
    for derived in (camera.scaled_to(80, 60), camera.cropped(4, 2, 32, 24)):
        assert derived.d == camera.d and derived.distortion_model == 'plumb_bob'
        np.testing.assert_array_equal(derived.r, camera.r)


def test_cropped_moves_the_principal_point_of_k_and_p():
    camera = PinholeCamera.from_camera_info(rclpy_info())
    crop = camera.cropped(16, 8, 96, 64)
    assert (crop.width, crop.height, crop.fx, crop.fy) == (96, 64, 125.0, 127.0)
    assert (crop.cx, crop.cy) == (79.5 - 16, 59.5 - 8)
    expected_p = np.reshape(P_160, (3, 4)).copy()
    expected_p[0, 2] -= 16
    expected_p[1, 2] -= 8
    np.testing.assert_array_equal(crop.p, expected_p)
    assert camera.cropped(0, 0, 160, 120) is camera


def test_cropped_rays_are_the_window_of_the_full_rays():
    camera = PinholeCamera.from_camera_info(rclpy_info())
    window = camera.cropped(16, 8, 96, 64).rays()
    np.testing.assert_allclose(window, camera.rays()[8:72, 16:112], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ('window', 'match'),
    [
        ((-1, 0, 10, 10), r'crop 10x10 at \(-1, 0\) is empty or starts outside'),
        ((0, 0, 0, 10), r'crop 0x10 at \(0, 0\) is empty'),
        ((100, 0, 64, 10), r'crop 64x10 at \(100, 0\) leaves the 160x120 image'),
        ((0, 100, 10, 21), r'leaves the 160x120 image'),
    ],
)
def test_cropped_refuses_windows_outside_the_image(window, match):
    camera = PinholeCamera.from_k(160, 120, K_160)
    with pytest.raises(CameraError, match=match):
        camera.cropped(*window)


@pytest.mark.parametrize(('width', 'height'), [(1280, 960), (320, 240), (640, 480)])
def test_matched_to_accepts_integer_rescales(width, height):
    camera = PinholeCamera.from_k(width, height, scaled_k(K_640, width / 640))
    matched = camera.matched_to(640, 480)
    assert (matched.width, matched.height) == (640, 480)
    assert matched.fx == pytest.approx(500.0)


@pytest.mark.parametrize(('width', 'height'), [(1280, 720), (960, 720), (641, 480)])
def test_matched_to_refuses_other_sizes(width, height):
    camera = PinholeCamera.from_k(width, height, scaled_k(K_640, width / 640))
    with pytest.raises(CameraError, match=f'{width}x{height}.*640x480.*not an integer rescale'):
        camera.matched_to(640, 480)


# --- rays ------------------------------------------------------------------------------------


def test_pinhole_rays_are_the_normalised_pixel_coordinates():
    camera = PinholeCamera.from_k(64, 48, (40.0, 0, 31.5, 0, 42.0, 23.5, 0, 0, 1))
    rays = camera.rays()
    v, u = np.mgrid[0:48, 0:64]
    np.testing.assert_allclose(rays[..., 0], (u - 31.5) / 40.0, atol=1e-6)
    np.testing.assert_allclose(rays[..., 1], (v - 23.5) / 42.0, atol=1e-6)
    assert camera.rays() is rays  # cached
    assert not rays.flags.writeable


def test_skew_is_part_of_the_rays():
    camera = PinholeCamera.from_k(64, 48, (40.0, 2.0, 31.5, 0, 42.0, 23.5, 0, 0, 1))
    assert camera.k[0, 1] == 2.0
    rays = camera.rays_at(np.array([40.0]), np.array([30.0]))
    y = (30.0 - 23.5) / 42.0
    np.testing.assert_allclose(rays[0], [(40.0 - 31.5 - 2.0 * y) / 40.0, y])


DISTORTIONS = {
    'plumb_bob': STRONG_PLUMB_BOB,
    'rational_polynomial': (-0.3, 0.12, 0.001, -0.002, -0.02, 0.02, 0.01, 0.0),
    'equidistant': (-0.04, 0.008, -0.001, 0.0002),
}


@pytest.mark.parametrize('model', sorted(DISTORTIONS))
def test_undistorted_rays_reproject_onto_their_pixels(model):
    d = DISTORTIONS[model]
    camera = PinholeCamera.from_k(160, 120, K_160, d=d, distortion_model=model)
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


def test_pixels_the_lens_polynomial_folds_back_on_get_no_ray():
    # k1 = -0.5: the distorted radius r (1 - 0.5 r^2) peaks at 0.544 (r = 0.816) and falls
    # after; no ray reaches a pixel farther out, and the corners of a 640x480 image at
    # f = 500 lie at up to 0.8.
    d = (-0.5, 0.0, 0.0, 0.0, 0.0)
    camera = PinholeCamera.from_k(640, 480, K_640, d=d, distortion_model='plumb_bob')
    rays = camera.rays().reshape(-1, 2).astype(np.float64)
    finite = np.isfinite(rays).all(axis=1)
    assert np.isnan(rays[~finite]).all()  # no half rays
    v, u = np.mgrid[0:480, 0:640]
    pixels = np.stack([u, v], axis=-1).reshape(-1, 2).astype(np.float64)
    # Every ray given lands on its own pixel under OpenCV's forward model ...
    object_points = np.concatenate([rays[finite], np.ones((int(finite.sum()), 1))], axis=1)
    projected, _ = cv2.projectPoints(object_points, np.zeros(3), np.zeros(3), camera.k, d)
    np.testing.assert_allclose(projected.reshape(-1, 2), pixels[finite], atol=0.1)
    # ... and the pixels left without one are those where OpenCV's own inverse lands elsewhere.
    identity = np.eye(3)
    normalised = (pixels - (camera.cx, camera.cy)) / (camera.fx, camera.fy)
    inverse = cv2.undistortPointsIter(
        normalised.reshape(-1, 1, 2), identity, np.array(d), identity, identity, (3, 100, 1e-10)
    ).reshape(-1, 2)
    again, _ = cv2.projectPoints(
        np.concatenate([inverse, np.ones((len(inverse), 1))], axis=1),
        np.zeros(3),
        np.zeros(3),
        camera.k,
        d,
    )
    miss_px = np.linalg.norm(again.reshape(-1, 2) - pixels, axis=1)
    assert 0 < (~finite).sum() < finite.sum()
    assert (miss_px[~finite] > 0.1).all() and miss_px[~finite].max() > 50.0
    # no ray, no point: back-projection leaves those pixels NaN
    points = backproject(np.full((480, 640), 2.0, np.float32), camera.rays())
    assert np.isnan(points.reshape(-1, 3)[~finite]).all()
    assert np.isfinite(points.reshape(-1, 3)[finite]).all()


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
