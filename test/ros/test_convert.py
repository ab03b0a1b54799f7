"""The rclpy adapter against cv_bridge, hand-written intrinsics and independent decoders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from cloud_reader import cloud_array
from cv_bridge import CvBridge
from rclpy.serialization import serialize_message
from ros_test_helpers import camera_info_msg as make_camera_info
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from pixio_ros.ros.convert import (
    camera_info_msg,
    cloud_msg,
    compressed_to_rgb,
    image_msg,
    image_to_rgb,
    model_info_msg,
)
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.cloud import CloudOptions, SelectedPoints, select_points
from pixio_ros.runtime.image_codec import ImageCodecError
from pixio_ros.runtime.products import depth_colormap
from pixio_ros.wire import (
    encode_bgr8,
    encode_depth,
    encode_embedding,
    encode_features,
    encode_points,
)

HEIGHT, WIDTH = 48, 64


@pytest.fixture(scope='module')
def typestore():
    return get_typestore(Stores.ROS2_JAZZY)


def depth_image_msg(depth: np.ndarray, msg_header: Header) -> Image:
    return image_msg(encode_depth(depth), msg_header)


def point_cloud_msg(selected: SelectedPoints, msg_header: Header):
    return cloud_msg(
        encode_points(selected.points, rgb=selected.rgb, confidence=selected.confidence),
        msg_header,
    )


def scaled_camera_info(info, width: int, height: int, msg_header: Header):
    return camera_info_msg(
        PinholeCamera.from_camera_info(info).scaled_to(width, height), msg_header
    )


def header() -> Header:
    result = Header(frame_id='camera_optical')
    result.stamp.sec, result.stamp.nanosec = 12, 345
    return result


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8'])
def test_image_to_rgb_agrees_with_cv_bridge(encoding):
    bridge = CvBridge()
    rng = np.random.default_rng(4)
    channels = 1 if encoding == 'mono8' else 3
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, channels), dtype=np.uint8).squeeze()
    msg = bridge.cv2_to_imgmsg(pixels, encoding)
    np.testing.assert_array_equal(image_to_rgb(msg), bridge.imgmsg_to_cv2(msg, 'rgb8'))


def test_mono16_agrees_with_cv_bridge_passthrough():
    bridge = CvBridge()
    gray16 = np.random.default_rng(5).integers(0, 65536, (HEIGHT, WIDTH), dtype=np.uint16)
    msg = bridge.cv2_to_imgmsg(gray16, 'mono16')
    reference = bridge.imgmsg_to_cv2(msg, 'passthrough')
    expected = np.rint(reference / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(image_to_rgb(msg), np.dstack([expected] * 3))


def test_compressed_to_rgb_and_corrupt_data():
    rgb = np.random.default_rng(6).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format='png', data=png.tobytes())
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
    with pytest.raises(ImageCodecError, match='corrupt'):
        compressed_to_rgb(CompressedImage(format='jpeg', data=b'\xff\xd8garbage'))


def test_depth_image_msg_is_32fc1_metres():
    depth = np.linspace(0.5, 4.0, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    depth[3, 4] = np.nan
    msg = depth_image_msg(depth, header())
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', HEIGHT, WIDTH, WIDTH * 4)
    assert msg.header.frame_id == 'camera_optical' and msg.header.stamp.nanosec == 345
    decoded = np.frombuffer(bytes(msg.data), dtype='<f4').reshape(HEIGHT, WIDTH)
    np.testing.assert_array_equal(decoded, depth)


def test_colored_depth_is_bgr8_with_black_invalid_pixels():
    depth = np.full((HEIGHT, WIDTH), 2.0, dtype=np.float32)
    depth[0, 0] = np.nan
    msg = image_msg(encode_bgr8(depth_colormap(depth, 4.0)), header())
    assert (msg.encoding, msg.step) == ('bgr8', WIDTH * 3)
    colours = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(colours[0, 0], [0, 0, 0])
    level = round(2.0 / 4.0 * 255)  # 2 m of 4 m, to the nearest of 256 levels (128)
    expected = cv2.applyColorMap(np.array([[level]], dtype=np.uint8), cv2.COLORMAP_TURBO)[0, 0]
    np.testing.assert_array_equal(colours[5, 5], expected)


def test_scaled_camera_info_rescales_k_and_p():
    info = make_camera_info(width=144, height=96)
    info.p[3] = -12.0  # stereo baseline term fx * Tx
    scaled = scaled_camera_info(info, 96, 64, header())
    assert (scaled.width, scaled.height) == (96, 64)
    s = 96 / 144
    cx, cy = (71.5 + 0.5) * s - 0.5, (47.5 + 0.5) * s - 0.5
    expected_k = [120.0 * s, 0, cx, 0, 118.0 * s, cy, 0, 0, 1]
    np.testing.assert_allclose(scaled.k, expected_k)
    np.testing.assert_allclose(
        scaled.p,
        [
            expected_k[0],
            0,
            expected_k[2],
            -12.0 * s,
            0,
            expected_k[4],
            expected_k[5],
            0,
            0,
            0,
            1,
            0,
        ],
    )
    assert scaled.header.stamp.sec == 12
    assert scaled.distortion_model == 'plumb_bob'


def test_unset_projection_matrix_stays_unset_when_rescaled():
    info = make_camera_info(width=144, height=96)
    info.p = [0.0] * 12
    scaled = scaled_camera_info(info, 96, 64, header())
    assert list(scaled.p) == [0.0] * 12
    s = 96 / 144
    np.testing.assert_allclose(scaled.k[2], (71.5 + 0.5) * s - 0.5)


def test_depth_image_msg_is_little_endian():
    depth = np.linspace(0.5, 4.0, HEIGHT * WIDTH, dtype='>f4').reshape(HEIGHT, WIDTH)
    msg = depth_image_msg(depth, header())
    assert msg.is_bigendian == 0
    decoded = np.frombuffer(bytes(msg.data), dtype='<f4').reshape(HEIGHT, WIDTH)
    np.testing.assert_array_equal(decoded, depth)


def make_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    points = rng.uniform(-2, 2, (HEIGHT, WIDTH, 3)).astype(np.float32)
    points[2, 3] = np.nan
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    confidence = rng.uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32)
    return points, rgb, confidence


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    bits = packed.view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=-1)


def test_point_cloud_fields_decode_independently(typestore):
    points, rgb, confidence = make_points()
    msg = point_cloud_msg(
        select_points(points, CloudOptions(), rgb=rgb, confidence=confidence), header()
    )
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb', 'confidence']
    assert (msg.height, msg.width, msg.is_dense) == (HEIGHT, WIDTH, False)  # one NaN point
    for cloud in (
        msg,
        typestore.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2'),
    ):
        array = cloud_array(cloud)
        np.testing.assert_array_equal(np.stack([array['x'], array['y'], array['z']], -1), points)
        np.testing.assert_array_equal(unpack_rgb(array['rgb']), rgb)
        np.testing.assert_array_equal(array['confidence'], confidence)
    assert cloud.header.frame_id == 'camera_optical'


def test_organized_cloud_without_invalid_points_is_dense():
    points, _, _ = make_points()
    points[2, 3] = 1.0
    msg = point_cloud_msg(select_points(points, CloudOptions()), header())
    assert (msg.height, msg.width, msg.is_dense) == (HEIGHT, WIDTH, True)


def test_empty_dense_cloud_is_valid():
    points = np.full((4, 5, 3), np.nan, dtype=np.float32)
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    msg = point_cloud_msg(select_points(points, CloudOptions(dense=True), rgb=rgb), header())
    assert (msg.height, msg.width, msg.point_step, len(msg.data)) == (1, 0, 16, 0)


def test_dense_point_cloud_has_no_invalid_points():
    points, _, _ = make_points()
    msg = point_cloud_msg(select_points(points, CloudOptions(dense=True)), header())
    assert (msg.height, msg.width, msg.is_dense) == (1, HEIGHT * WIDTH - 1, True)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z']
    array = cloud_array(msg)
    assert np.isfinite(array['x']).all()


@pytest.mark.parametrize(
    ('half', 'field', 'dtype'), [(False, 'feature', np.float32), (True, 'feature_f16', np.uint16)]
)
def test_feature_cloud_layout(typestore, half, field, dtype):
    rng = np.random.default_rng(8)
    features = rng.standard_normal((4, 6, 32)).astype(np.float32)
    xyz = rng.uniform(0, 3, (4, 6, 3)).astype(np.float32)
    values = features.astype(np.float16) if half else features
    msg = cloud_msg(encode_features(xyz, values), header())
    decoded = typestore.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2')
    array = cloud_array(decoded)
    assert array.shape == (4, 6)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', field]
    assert msg.fields[3].count == 32
    values = array[field]
    assert values.dtype == dtype
    expected = features.astype(np.float16).view(np.uint16) if half else features
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(np.stack([array['x'], array['y'], array['z']], -1), xyz)


def test_embedding_cloud_is_one_point_with_count_c():
    embedding = np.arange(16, dtype=np.float32)
    msg = cloud_msg(encode_embedding(embedding), header())
    assert (msg.height, msg.width, msg.point_step) == (1, 1, 64)
    assert (msg.fields[0].name, msg.fields[0].count) == ('embedding', 16)
    np.testing.assert_array_equal(cloud_array(msg)['embedding'][0, 0], embedding)


def test_model_info_is_sorted_json():
    msg = model_info_msg({'sha256': 'ab', 'input_size': [64, 96]})
    assert msg.data == '{"input_size": [64, 96], "sha256": "ab"}'


def test_image_msg_from_rclpy_array_data_is_a_view():
    msg = Image(height=2, width=2, encoding='rgb8', step=6, data=bytes(range(12)))
    rgb = image_to_rgb(msg)
    np.testing.assert_array_equal(rgb.reshape(-1), np.arange(12))
    assert np.shares_memory(rgb, np.frombuffer(msg.data, dtype=np.uint8))
