"""BagReader: topics, header-stamp order, raw CDR (also from ROS 1 bags), decoding, bad bags."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import Writer

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import decode_color, decode_depth_image
from pixio_ros.data.errors import DataError
from pixio_ros.data.messages import (
    camera_info_message,
    compressed_image_message,
    image_message,
    serialize,
    typestore,
)
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.runtime.image_codec import ImageCodecError

FRAME = 'cam'


def _rgb(value: int) -> np.ndarray:
    return np.full((4, 6, 3), value, np.uint8)


@pytest.fixture
def shuffled_bag(tmp_path):
    """Images logged out of header-stamp order (a driver that publishes late frames)."""
    path = tmp_path / 'bag'
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        conn = writer.add_connection('/image', 'sensor_msgs/msg/Image', typestore=typestore())
        for log_time, stamp in [(1000, 300), (2000, 100), (3000, 200)]:
            writer.write(
                conn, log_time, serialize(image_message(_rgb(stamp // 100), 'rgb8', stamp, FRAME))
            )
    return path


def test_messages_come_in_header_stamp_order(shuffled_bag):
    with BagReader(shuffled_bag) as bag:
        assert bag.topics == {'/image': 'sensor_msgs/msg/Image'}
        messages = bag.messages('/image')
        logged = [m.stamp_ns for m in bag.stream(['/image'])]
    assert [m.stamp_ns for m in messages] == [100, 200, 300]
    assert [m.log_time_ns for m in messages] == [2000, 3000, 1000]
    assert logged == [300, 100, 200]
    assert [int(decode_color(m.msg)[0, 0, 0]) for m in messages] == [1, 2, 3]


def test_missing_topic_lists_the_bags_topics(shuffled_bag):
    with (
        BagReader(shuffled_bag) as bag,
        pytest.raises(
            DataError,
            match=r'--depth-topic /depth is not in bag .*; its topics are: '
            r'/image \(sensor_msgs/msg/Image, 3 msgs\)',
        ),
    ):
        bag.require_topic('/depth', ['sensor_msgs/msg/Image'], option='--depth-topic')


def test_wrong_topic_type_is_named(shuffled_bag):
    with (
        BagReader(shuffled_bag) as bag,
        pytest.raises(
            DataError, match='/image has type sensor_msgs/msg/Image; expected sensor_msgs/msg/Cam'
        ),
    ):
        bag.require_topic('/image', ['sensor_msgs/msg/CameraInfo'], option='--camera-info-topic')


def test_ros1_bag_reads_and_converts_to_cdr(tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    path = tmp_path / 'old.bag'
    noetic = get_typestore(Stores.ROS1_NOETIC)
    types = noetic.types
    header = types['std_msgs/msg/Header'](
        seq=9, stamp=types['builtin_interfaces/msg/Time'](sec=5, nanosec=123), frame_id=FRAME
    )
    msg = types['sensor_msgs/msg/Image'](
        header=header,
        height=4,
        width=6,
        encoding='rgb8',
        is_bigendian=0,
        step=18,
        data=_rgb(7).reshape(-1),
    )
    with Ros1Writer(path) as writer:
        conn = writer.add_connection('/image', 'sensor_msgs/msg/Image', typestore=noetic)
        writer.write(conn, 42, noetic.serialize_ros1(msg, 'sensor_msgs/msg/Image'))
    with BagReader(path) as bag:
        (stamped,) = bag.messages('/image')
        (raw,) = list(bag.raw(['/image']))
    assert stamped.stamp_ns == 5_000_000_123
    np.testing.assert_array_equal(decode_color(stamped.msg), _rgb(7))
    ros2 = deserialize_message(raw.data, Image)
    assert (ros2.header.stamp.sec, ros2.header.stamp.nanosec, ros2.width) == (5, 123, 6)


@pytest.mark.parametrize('content', [b'not a bag at all', b''])
def test_unreadable_bag_is_refused(tmp_path, content):
    path = tmp_path / 'broken.bag'
    path.write_bytes(content)
    with pytest.raises(DataError, match=r'cannot read bag .*broken\.bag: .*expected a rosbag2'):
        BagReader(path)


@pytest.mark.parametrize('name', ['empty_dir', 'model.ts'])
def test_path_that_is_no_bag_is_refused(tmp_path, name):
    path = tmp_path / name
    if name == 'empty_dir':
        path.mkdir()
    else:
        path.write_bytes(b'PK not a bag')
    with pytest.raises(DataError, match=rf'cannot read bag .*{name}: .*expected a rosbag2'):
        BagReader(path)


def test_missing_bag_is_refused(tmp_path):
    with pytest.raises(DataError, match='does not exist'):
        BagReader(tmp_path / 'nothing')


def test_decode_compressed_and_depth_messages():
    import cv2

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = (255, 0, 0)
    ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(
        decode_color(compressed_image_message(png.tobytes(), 0, FRAME, 'png')), rgb
    )
    millimetres = np.array([[0, 1500], [2000, 65535]], np.uint16)
    depth = decode_depth_image(image_message(millimetres, '16UC1', 0, FRAME))
    np.testing.assert_allclose(depth, [[np.nan, 1.5], [2.0, 65.535]], rtol=1e-7)
    metres = decode_depth_image(
        image_message(np.array([[1.25, -1.0]], np.float32), '32FC1', 0, FRAME)
    )
    np.testing.assert_array_equal(metres, [[1.25, np.nan]])
    with pytest.raises(ImageCodecError, match='depth encoding'):
        decode_depth_image(image_message(rgb, 'rgb8', 0, FRAME))


def test_uncalibrated_camera_info_is_refused():
    k = np.array([[500.0, 0, 16], [0, 500.0, 12], [0, 0, 1]])
    camera = PinholeCamera.from_camera_info(camera_info_message(k, 24, 32, 0, FRAME))
    np.testing.assert_array_equal(camera.k, k)
    with pytest.raises(CameraError, match='uncalibrated'):
        PinholeCamera.from_camera_info(camera_info_message(np.zeros((3, 3)), 24, 32, 0, FRAME))


def test_point_cloud_decodes_xyz_and_packed_rgb():
    from pixio_ros.data.decode import decode_point_cloud
    from pixio_ros.data.messages import point_cloud_message

    xyz = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [1, 2, 3]]], np.uint8)
    msg = point_cloud_message(xyz, 0, FRAME, rgb=rgb)
    # the message layout by hand: 4 float32 fields, 16 bytes per point
    assert (msg.point_step, msg.row_step, msg.height, msg.width) == (16, 32, 2, 2)
    assert int.from_bytes(msg.data[12:16].tobytes(), 'little') == 0xFF0000
    points, colors = decode_point_cloud(msg)
    np.testing.assert_array_equal(points, xyz.reshape(-1, 3))
    np.testing.assert_array_equal(colors, rgb.reshape(-1, 3))
