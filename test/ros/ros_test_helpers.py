"""Node test helpers: a client node on a spinning executor, message builders, a PointCloud2 decoder.

The decoder builds a numpy dtype from the message's own fields, independently of the node code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

WAIT_S = 20.0
POLL_S = 0.01
SPIN_TIMEOUT_S = 0.05
INPUT_SIZE = (64, 96)
# Camera images at 1.5x the artifact input: 24x24 camera pixels per 16x16 patch.
IMAGE_HEIGHT, IMAGE_WIDTH = 96, 144
FX, FY, CX, CY = 120.0, 118.0, 71.5, 47.5

# The parameters fixed at start-up, written out here rather than read from the package's table.
READ_ONLY_PARAMETERS = frozenset(
    {
        'model_path',
        'cameras',
        'device',
        'precision',
        'backend',
        'warmup_runs',
        'compressed_input',
        'max_input_megapixels',
        'input_qos.reliability',
        'input_qos.depth',
        'output_qos.reliability',
        'output_qos.depth',
        'diagnostics_period',
    }
)
# (settings in force, requested change, refused?) for the min_range <= max_range rule.
RANGE_CHANGES = [
    ({'points.max_range': 2.0}, {'points.min_range': 5.0}, True),
    ({'points.min_range': 5.0}, {'points.max_range': 2.0}, True),
    ({}, {'points.min_range': 5.0, 'points.max_range': 2.0}, True),
    ({'points.max_range': 2.0}, {'points.min_range': 1.0}, False),
    ({'points.max_range': 2.0}, {'points.min_range': 2.0}, False),
    ({'points.max_range': 0.0}, {'points.min_range': 5.0}, False),
    ({'points.min_range': 5.0, 'points.max_range': 6.0}, {'points.max_range': 0.0}, False),
]
# Output topics of the node and their message types (names as DESIGN.md lists them).
OUTPUT_TYPE_NAMES = {
    'depth': 'Image',
    'depth/camera_info': 'CameraInfo',
    'depth/colored': 'Image',
    'points': 'PointCloud2',
    'features': 'PointCloud2',
    'embedding': 'PointCloud2',
}


def output_types() -> dict[str, Any]:
    """Output topic -> rclpy message class."""
    import sensor_msgs.msg

    return {topic: getattr(sensor_msgs.msg, name) for topic, name in OUTPUT_TYPE_NAMES.items()}


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S, what: str = '') -> None:
    """Poll `predicate` until true; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout} s waiting for {what or predicate}')
        time.sleep(POLL_S)


def image_msg(rgb: np.ndarray, frame_id: str = 'camera_optical', stamp_ns: int = 1) -> Any:
    """sensor_msgs/Image rgb8 of a (H, W, 3) uint8 array."""
    from sensor_msgs.msg import Image

    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3)
    msg.data = rgb.tobytes()
    set_header(msg, frame_id, stamp_ns)
    return msg


def set_header(msg: Any, frame_id: str, stamp_ns: int) -> None:
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = stamp_ns // 1_000_000_000
    msg.header.stamp.nanosec = stamp_ns % 1_000_000_000


def camera_info_msg(
    width: int = IMAGE_WIDTH,
    height: int = IMAGE_HEIGHT,
    scale: float = 1.0,
    d: tuple[float, ...] = (0.0,) * 5,
) -> Any:
    """CameraInfo with the test intrinsics, for an image `scale` times the test image."""
    from sensor_msgs.msg import CameraInfo

    fx, fy = FX * scale, FY * scale
    cx, cy = (CX + 0.5) * scale - 0.5, (CY + 0.5) * scale - 0.5
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob', d=list(d))
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.header.frame_id = 'camera_optical'
    return info


def random_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (IMAGE_HEIGHT, IMAGE_WIDTH, 3), np.uint8)


class Client:
    """A test node on its own executor thread, collecting messages per topic."""

    def __init__(self, context: Any, name: str = 'pixio_test_client'):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.node = rclpy.create_node(name, context=context)
        self.executor = MultiThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)

    def add_node(self, node: Any) -> None:
        self.executor.add_node(node)

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10, *, raw: bool = False) -> Any:
        self.received.setdefault(topic, [])

        def store(msg: Any) -> None:
            with self._lock:
                self.received[topic].append(msg)

        return self.node.create_subscription(msg_type, topic, store, qos, raw=raw)

    def messages(self, topic: str) -> list[Any]:
        with self._lock:
            return list(self.received.get(topic, []))

    def clear(self) -> None:
        with self._lock:
            for messages in self.received.values():
                messages.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()


RESEND_S = 0.25


def stamp_key(header: Any) -> tuple[int, int, str]:
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)


def send_until_received(
    client: Client,
    publish: Callable[[], None],
    header: Any,
    topics: list[str],
    timeout: float = WAIT_S,
) -> dict[str, Any]:
    """Publish until every topic has a message with `header`; returns it per topic.

    Publishes again every RESEND_S, as a best-effort subscription may lose a message.
    """
    key = stamp_key(header)
    deadline = time.monotonic() + timeout
    while True:
        publish()
        resend_at = time.monotonic() + RESEND_S
        while time.monotonic() < resend_at:
            found = {
                topic: next((m for m in client.messages(topic) if stamp_key(m.header) == key), None)
                for topic in topics
            }
            if all(message is not None for message in found.values()):
                return found
            time.sleep(POLL_S)
        if time.monotonic() > deadline:
            missing = [topic for topic, message in found.items() if message is None]
            pytest.fail(f'no message with stamp {key} on {missing} after {timeout} s')


def latched_model_info(client: Any) -> dict[str, Any]:
    """The node's latched `model_info` JSON, as a late subscriber (transient-local) gets it."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    client.subscribe(String, 'model_info', latched)
    wait_until(lambda: client.messages('model_info'), what='latched model_info')
    return json.loads(client.messages('model_info')[0].data)
