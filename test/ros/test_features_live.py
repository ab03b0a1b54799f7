"""Offline equals live: `pixio-ros features` rows hold the bits pixio_node publishes per frame.

A bag is played frame by frame into a real pixio_node process over Fast DDS; its `features` and
`embedding` clouds are decoded with `pixio_ros.features` and compared with the rows that
`pixio-ros features` wrote for the same bag and artifact (np.array_equal, NaN positions
included). Once with a depth head and the CameraInfo (xyz back-projected from depth), once with
a point-map head without CameraInfo and float16 features (xyz from the head, `feature_f16`).
"""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import WAIT_S, Client, send_until_received, wait_until
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from pixio_ros.cli import main
from pixio_ros.data.bag import BagReader
from pixio_ros.data.sample_bag import (
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    SampleBagSpec,
    write_sample_bag,
)
from pixio_ros.features import decode_embedding, decode_features
from pixio_ros.ros.node_process import NodeProcess

FRAMES = 4
RELIABLE = QoSProfile(depth=FRAMES * 2, reliability=ReliabilityPolicy.RELIABLE)
OUTPUTS = ['/features', '/embedding']


def _offline(bag, artifact, out, camera_info: bool, dtype: str) -> dict:
    import datasets

    options = ['--camera-info-topic', COLOR_INFO_TOPIC if camera_info else 'none']
    command = ['features', str(bag), '--model', str(artifact), '-o', str(out)]
    assert main([*command, '--image-topic', COLOR_TOPIC, '--features-dtype', dtype, *options]) == 0
    rows = datasets.load_from_disk(str(out)).with_format('numpy', dtype=None)[:]
    return {int(stamp): index for index, stamp in enumerate(rows['timestamp_ns'])}, rows


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ('head_kind', 'camera_info', 'dtype'),
    [('depth', True, 'float32'), ('points', False, 'float16')],
)
def test_offline_rows_equal_what_the_node_publishes(
    tmp_path, tiny_artifact, ros_context, head_kind, camera_info, dtype
):
    bag = write_sample_bag(
        tmp_path / 'scene', SampleBagSpec(frames=FRAMES, height=96, width=128, seed=5)
    )
    artifact = tiny_artifact(head_kind, (64, 96))
    by_stamp, rows = _offline(bag, artifact, tmp_path / 'ds', camera_info, dtype)

    node = NodeProcess(
        tmp_path / 'node.log',
        parameters={'model_path': str(artifact), 'device': 'cpu', 'features.dtype': dtype},
        remappings={'image': COLOR_TOPIC, 'camera_info': COLOR_INFO_TOPIC},
    )
    client = Client(ros_context, 'features_live_client')
    try:
        for topic in OUTPUTS:
            client.subscribe(PointCloud2, topic, RELIABLE)
        image_pub = client.node.create_publisher(Image, COLOR_TOPIC, RELIABLE)
        info_pub = client.node.create_publisher(CameraInfo, COLOR_INFO_TOPIC, RELIABLE)
        with node, BagReader(bag) as reader:
            wait_until(
                lambda: (
                    image_pub.get_subscription_count() > 0
                    and info_pub.get_subscription_count() > 0
                    and all(client.node.count_publishers(t) > 0 for t in OUTPUTS)
                ),
                timeout=3 * WAIT_S,
                what=f'pixio_node on {COLOR_TOPIC} ({node.tail()})',
            )
            info = next(iter(reader.raw([COLOR_INFO_TOPIC]))).data
            images = [
                (m.msg.header, raw.data)
                for m, raw in zip(
                    reader.messages(COLOR_TOPIC), reader.raw([COLOR_TOPIC]), strict=True
                )
            ]

            def publish(data: bytes) -> None:
                if camera_info:  # the node keeps the latest CameraInfo, as the bag's is constant
                    info_pub.publish(info)
                image_pub.publish(data)

            # Frame 0 once first, so that the CameraInfo has surely landed before the frames
            # compared; then one frame at a time, each sent until its outputs came back.
            send_until_received(client, lambda: publish(images[0][1]), images[0][0], OUTPUTS)
            client.clear()
            for msg_header, data in images:
                send_until_received(client, lambda d=data: publish(d), msg_header, OUTPUTS)
    finally:
        client.close()

    live_features = [decode_features(m) for m in client.messages('/features')]
    live_embeddings = {
        (m.header.stamp.sec * 10**9 + m.header.stamp.nanosec): decode_embedding(m)
        for m in client.messages('/embedding')
    }
    compared = 0
    for grid in live_features:
        stamp = grid.header.stamp.sec * 10**9 + grid.header.stamp.nanosec
        row = by_stamp[stamp]
        assert grid.header.frame_id == rows['frame_id'][row]
        offline_features = rows['features'][row]
        assert offline_features.dtype == np.dtype(dtype)
        assert np.array_equal(grid.features, offline_features.astype(np.float32), equal_nan=True)
        assert np.array_equal(grid.xyz, rows['xyz'][row], equal_nan=True)
        assert np.array_equal(live_embeddings[stamp], rows['embedding'][row], equal_nan=True)
        compared += 1
    assert compared >= FRAMES
    assert {
        by_stamp[g.header.stamp.sec * 10**9 + g.header.stamp.nanosec] for g in live_features
    } == set(range(FRAMES))
    assert np.isfinite(rows['xyz']).any()  # the geometry path under test produced numbers
