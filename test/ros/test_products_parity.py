"""The node and `eval --write-bag` publish the same bytes for the same artifact and frames.

Both go through `pixio_ros.runtime.products` and `pixio_ros.wire`; this test pins that the two
transport adapters (rclpy for the node, rosbags for the bag) add nothing of their own: every
output message of every frame is compared as serialized CDR, byte for byte. rclpy's serializer
leaves CDR alignment padding uninitialised, so the node's bytes are first round-tripped through
rosbags' serializer (which zeroes padding); every field byte is still compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from ros_test_helpers import Client, output_types, send_until_received, wait_until
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image

from pixio_ros.data.sample_bag import (
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    DEPTH_TOPIC,
    SampleBagSpec,
    write_sample_bag,
)
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.run import run_evaluation
from pixio_ros.ros.node import PixioNode

OUTPUT_TYPES = output_types()
FRAMES = 3
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _raw_by_stamp(path) -> dict[str, dict[tuple[int, int], bytes]]:
    """The eval bag's serialized messages per output name and header stamp."""
    from rosbags.highlevel import AnyReader

    found: dict[str, dict[tuple[int, int], bytes]] = {}
    with AnyReader([path]) as reader:
        for connection, _, rawdata in reader.messages():
            msg = reader.deserialize(rawdata, connection.msgtype)
            name = connection.topic.removeprefix('/pixio/')
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            found.setdefault(name, {})[key] = bytes(rawdata)
    return found


@pytest.mark.parametrize('head_kind', ['points', 'depth'])
def test_node_and_eval_bag_publish_identical_bytes(tmp_path, tiny_artifact, ros_context, head_kind):
    bag = write_sample_bag(
        tmp_path / 'scene', SampleBagSpec(frames=FRAMES, height=96, width=128, seed=3)
    )
    artifact = tiny_artifact(head_kind, (64, 96))
    run_evaluation(
        EvalConfig(
            bag=bag,
            image_topic=COLOR_TOPIC,
            depth_topic=DEPTH_TOPIC,
            camera_info_topic=COLOR_INFO_TOPIC,
            model=artifact,
            out=tmp_path / 'eval',
            write_bag=tmp_path / 'predictions',
            device='cpu',
        )
    )
    recorded = _raw_by_stamp(tmp_path / 'predictions')
    assert set(recorded) == set(OUTPUT_TYPES), f'eval bag topics: {sorted(recorded)}'

    node = PixioNode(
        context=ros_context,
        parameter_overrides=[
            Parameter('model_path', value=str(artifact)),
            Parameter('device', value='cpu'),
            Parameter('warmup_runs', value=0),
        ],
    )
    client = Client(ros_context)
    try:
        client.add_node(node)
        for name, msg_type in OUTPUT_TYPES.items():
            client.subscribe(msg_type, name, RELIABLE)
        image_pub = client.node.create_publisher(Image, 'image', RELIABLE)
        info_pub = client.node.create_publisher(CameraInfo, 'camera_info', RELIABLE)
        info = deserialize_message(raw_messages(bag, COLOR_INFO_TOPIC)[0], CameraInfo)
        images = [deserialize_message(raw, Image) for raw in raw_messages(bag, COLOR_TOPIC)]
        assert len(images) == FRAMES
        wait_until(lambda: info_pub.get_subscription_count() > 0, what='camera_info matched')
        wait_until(lambda: image_pub.get_subscription_count() > 0, what='image matched')
        info_pub.publish(info)
        wait_until(lambda: node.has_camera_info, what='CameraInfo stored')
        compared = 0
        for image in images:
            live = send_until_received(
                client,
                lambda image=image: image_pub.publish(image),
                image.header,
                list(OUTPUT_TYPES),
            )
            key = (image.header.stamp.sec, image.header.stamp.nanosec)
            for name, msg in live.items():
                assert key in recorded[name], f'eval bag has no {name} at {key}'
                node_bytes = canonical_cdr(serialize_message(msg), msg_type_name(msg))
                bag_bytes = recorded[name][key]
                assert len(node_bytes) == len(bag_bytes), name
                if node_bytes != bag_bytes:
                    first = int(
                        np.argmax(
                            np.frombuffer(node_bytes, np.uint8)
                            != np.frombuffer(bag_bytes, np.uint8)
                        )
                    )
                    pytest.fail(
                        f'{name} differs from the eval bag at byte {first}: node '
                        f'{node_bytes[first - 8 : first + 8]!r}, bag '
                        f'{bag_bytes[first - 8 : first + 8]!r}'
                    )
                compared += 1
        assert compared == FRAMES * len(OUTPUT_TYPES)
    finally:
        client.close()
        node.destroy_node()


TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def msg_type_name(msg) -> str:
    """'sensor_msgs/msg/Image' for an rclpy message."""
    module = type(msg).__module__.split('.')[0]
    return f'{module}/msg/{type(msg).__name__}'


def canonical_cdr(data: bytes, msgtype: str) -> bytes:
    """The same message serialized again by rosbags: identical fields, zeroed padding."""
    return bytes(TYPESTORE.serialize_cdr(TYPESTORE.deserialize_cdr(data, msgtype), msgtype))


def raw_messages(bag, topic: str) -> list[bytes]:
    """The serialized messages of one topic of a bag, in log order."""
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        return [bytes(raw) for _, _, raw in reader.messages(connections=connections)]
