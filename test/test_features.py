"""pixio_ros.features decodes the node's feature and embedding clouds (rclpy and rosbags)."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import Header

from pixio_ros.features import FeatureDecodeError, decode_embedding, decode_features
from pixio_ros.ros.convert import cloud_msg
from pixio_ros.wire import encode_embedding, encode_features, encode_points


def feature_cloud_msg(xyz, features, header, *, half=False):
    values = features.astype(np.float16) if half else features
    return cloud_msg(encode_features(xyz, values), header)


def embedding_cloud_msg(embedding, header):
    return cloud_msg(encode_embedding(embedding), header)


@pytest.fixture
def grid():
    rng = np.random.default_rng(11)
    features = rng.standard_normal((4, 6, 32)).astype(np.float32)
    xyz = rng.uniform(0, 2, (4, 6, 3)).astype(np.float32)
    xyz[0, 0] = np.nan
    return xyz, features


@pytest.mark.parametrize('via_rosbags', [False, True])
def test_float32_features_round_trip(grid, via_rosbags):
    xyz, features = grid
    msg = feature_cloud_msg(xyz, features, Header(frame_id='cam'))
    if via_rosbags:
        typestore = get_typestore(Stores.ROS2_JAZZY)
        msg = typestore.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2')
    decoded = decode_features(msg)
    assert decoded.shape == (4, 6, 32)
    np.testing.assert_array_equal(decoded.features, features)
    np.testing.assert_array_equal(decoded.xyz, xyz)
    assert decoded.header.frame_id == 'cam'


def test_float16_features_decode_to_float32(grid):
    xyz, features = grid
    decoded = decode_features(feature_cloud_msg(xyz, features, Header(), half=True))
    assert decoded.features.dtype == np.float32
    np.testing.assert_array_equal(decoded.features, features.astype(np.float16).astype(np.float32))


def test_as_torch_is_channels_first(grid):
    xyz, features = grid
    tensor = decode_features(feature_cloud_msg(xyz, features, Header())).as_torch()
    assert tuple(tensor.shape) == (1, 32, 4, 6)
    assert float(tensor[0, 5, 2, 3]) == features[2, 3, 5]


def test_embedding_round_trip():
    embedding = np.linspace(-1, 1, 48, dtype=np.float32)
    np.testing.assert_array_equal(
        decode_embedding(embedding_cloud_msg(embedding, Header())), embedding
    )


def test_other_clouds_are_refused(grid):
    xyz, features = grid
    points = cloud_msg(encode_points(xyz), Header())
    with pytest.raises(FeatureDecodeError, match="lack 'feature'.*features"):
        decode_features(points)
    with pytest.raises(FeatureDecodeError, match='no FLOAT32.*embedding'):
        decode_embedding(points)
    truncated = feature_cloud_msg(xyz, features, Header())
    truncated.data = truncated.data[:100]
    with pytest.raises(FeatureDecodeError, match='truncated'):
        decode_features(truncated)
