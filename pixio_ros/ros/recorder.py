"""Recorder: raw rclpy subscriptions that keep what arrives, and its mcap recording.

The demo and the live tests need the node's outputs exactly as sent (CDR bytes with their receive
times) to summarise and to write a bag that Foxglove, sensor_msgs_py or our own eval can open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from pixio_ros.ros.player import message_class

__all__ = ['Recorder', 'TimedMessage', 'spinning_node', 'write_recording']

LOGGER = logging.getLogger(__name__)
TimedMessage = tuple[str, str, int, bytes]  # topic, type, wall time ns, CDR bytes
RECORDER_QUEUE_DEPTH: Final = 50
POLL_S: Final = 0.05


@contextmanager
def spinning_node(name: str) -> Iterator[Node]:
    """A node in an rclpy context of its own, spun by a background executor until exit.

    A private context lets a command run beside other rclpy users in one process (tests) and
    is shut down whatever happens inside the block.
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = rclpy.create_node(name, context=context)
    try:
        executor.add_node(node)
        threading.Thread(target=executor.spin, name=f'{name}_spin', daemon=True).start()
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


class Recorder:
    """Raw subscriptions to `topics`; keeps (topic, type, receive wall ns, CDR bytes).

    Args:
        node: a spinning node to subscribe from.
        topics: topic -> message type ('sensor_msgs/msg/Image'), subscribed reliable.
        latched: topic -> message type, subscribed reliable + transient-local (e.g. model_info),
            so a message published before the subscription still arrives.
    """

    def __init__(
        self,
        node: Node,
        topics: Mapping[str, str],
        latched: Mapping[str, str] | None = None,
    ) -> None:
        self.node = node
        self._messages: list[TimedMessage] = []
        self._lock = threading.Lock()
        self._first: dict[str, threading.Event] = {}
        reliable = QoSProfile(depth=RECORDER_QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        durable = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        chosen = [(t, m, reliable) for t, m in topics.items()]
        chosen += [(t, m, durable) for t, m in (latched or {}).items()]
        for topic, msgtype, qos in chosen:
            self._first[topic] = threading.Event()
            node.create_subscription(
                message_class(msgtype), topic, self._keeper(topic, msgtype), qos, raw=True
            )
        self.topics = [topic for topic, _, _ in chosen]

    def _keeper(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        def keep(data: bytes) -> None:
            with self._lock:
                self._messages.append((topic, msgtype, time.time_ns(), data))
            self._first[topic].set()

        return keep

    @property
    def messages(self) -> list[TimedMessage]:
        """A copy of everything received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def count(self, topic: str) -> int:
        """Messages received on `topic` so far."""
        with self._lock:
            return sum(1 for m in self._messages if m[0] == topic)

    def wait_for_message(self, topic: str, timeout_s: float) -> bool:
        """Block until `topic` delivered its first message; False on timeout."""
        return self._first[topic].wait(timeout_s)

    def wait_for_publishers(self, timeout_s: float, topics: Iterable[str] | None = None) -> bool:
        """Block until each subscribed topic (or `topics`) sees a publisher; False on timeout."""
        wanted = list(self.topics if topics is None else topics)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.node.count_publishers(topic) > 0 for topic in wanted):
                return True
            time.sleep(POLL_S)
        return False

    def wait_quiet(self, topic: str, settle_s: float, timeout_s: float) -> None:
        """Return once `topic` got nothing new for `settle_s` seconds (or after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        last, since = self.count(topic), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < settle_s:
            time.sleep(POLL_S)
            now = self.count(topic)
            if now != last:
                last, since = now, time.monotonic()

    def wait_for_more(self, topic: str, timeout_s: float) -> bool:
        """Block until `topic` receives one message more than now; False on timeout."""
        before = self.count(topic)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(topic) > before:
                return True
            time.sleep(POLL_S)
        return False


def write_recording(path: Path, messages: Iterable[TimedMessage]) -> int:
    """Write `messages` (any topics) into a new mcap rosbag2 directory, in wall-time order.

    Returns:
        The number of messages written.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from pixio_ros.data.messages import typestore

    ordered = sorted(messages, key=lambda m: m[2])
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, wall_ns, data in ordered:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore())
            writer.write(connections[topic], wall_ns, data)
    LOGGER.info('recorded %d messages into %s', len(ordered), path)
    return len(ordered)
