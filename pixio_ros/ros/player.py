"""BagPlayer: publish a bag's recorded CDR bytes through rclpy, paced by the log times.

A stand-in for `ros2 bag play` where only the rclpy wheels exist. Messages go out as the recorded
bytes (ROS 1 bags are converted by the reader), so headers and payloads are exactly the original.
With `clock=True` the player also publishes /clock in bag time, so that nodes running with
`use_sim_time:=true` measure message age against the bag's clock instead of today's wall time.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from rosgraph_msgs.msg import Clock

from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.units import NS_PER_S

if TYPE_CHECKING:
    from pixio_ros.data.bag import RawMessage

__all__ = ['CLOCK_TOPIC', 'BagPlayer', 'message_class', 'play_bag']

LOGGER = logging.getLogger(__name__)
CLOCK_TOPIC: Final = '/clock'
# /clock at 40 Hz of wall time, as `ros2 bag play --clock` does by default.
CLOCK_PERIOD_NS: Final = 25_000_000
PUBLISHER_QUEUE_DEPTH: Final = 10
SUBSCRIBER_POLL_S: Final = 0.05


def message_class(msgtype: str) -> Any:
    """The rclpy message class for 'pkg/msg/Name'.

    Raises:
        DataError: the message package is not installed for rclpy (names the wheel to install).
    """
    package, _, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError) as err:
        raise DataError(
            f'message type {msgtype} is not installed for rclpy; install ros-<distro>-'
            f'{package.replace("_", "-")} or leave its topic out with --topics.'
        ) from err


class BagPlayer:
    """Publishers for a bag's topics on an rclpy node, and the paced publishing loop.

    Args:
        node: the rclpy node to publish from.
        bag: an open BagReader.
        topics: topics to play (None = all).
        rate: playback speed factor (> 0).
        clock: also publish /clock in bag time (log times), for `use_sim_time` consumers.

    Raises:
        DataError: a bad rate, a topic the bag does not have, or a message type rclpy lacks.
    """

    def __init__(
        self,
        node: Node,
        bag: BagReader,
        topics: Iterable[str] | None = None,
        *,
        rate: float = 1.0,
        clock: bool = False,
    ) -> None:
        if not rate > 0:
            raise DataError(f'--rate {rate} must be > 0.')
        available = bag.topics
        chosen = list(available) if topics is None else list(topics)
        missing = [t for t in chosen if t not in available]
        if missing:
            raise DataError(
                f'--topics {" ".join(missing)} not in bag {bag.path}; its topics '
                f'are: {bag.describe_topics()}.'
            )
        qos = QoSProfile(depth=PUBLISHER_QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.node, self.bag, self.rate, self.topics = node, bag, rate, chosen
        self.publishers: dict[str, Publisher] = {
            t: node.create_publisher(message_class(available[t]), t, qos) for t in chosen
        }
        self.clock_publisher: Publisher | None = (
            node.create_publisher(Clock, CLOCK_TOPIC, qos) if clock else None
        )
        self.published = dict.fromkeys(chosen, 0)
        self._clock_ns: int | None = None  # the bag time last published on /clock

    def wait_for_subscribers(self, topics: Iterable[str], timeout_s: float) -> bool:
        """Block until each of `topics` (and /clock, when published) has a matched subscription.

        A `use_sim_time` node must have its /clock subscription matched before the first frame,
        or it would stamp that frame's age against time zero.

        Returns:
            False on timeout.
        """
        wanted = [self.publishers[t] for t in topics]
        if self.clock_publisher is not None:
            wanted.append(self.clock_publisher)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(publisher.get_subscription_count() > 0 for publisher in wanted):
                return True
            time.sleep(SUBSCRIBER_POLL_S)
        return False

    @property
    def clock_ns(self) -> int | None:
        """The bag time last published on /clock (None before the first, or without a clock)."""
        return self._clock_ns

    def publish_clock(self, bag_time_ns: int) -> None:
        """Publish `bag_time_ns` on /clock (a no-op when the player has no clock)."""
        if self.clock_publisher is None:
            return
        msg = Clock()
        msg.clock = Time(nanoseconds=bag_time_ns).to_msg()
        self.clock_publisher.publish(msg)
        self._clock_ns = bag_time_ns

    def play(
        self,
        *,
        loop: bool = False,
        stop: threading.Event | None = None,
        on_publish: Callable[[RawMessage, int], None] | None = None,
    ) -> int:
        """Publish until the end of the bag (forever with `loop`, until `stop` is set).

        Messages keep their recorded spacing divided by the rate. With a clock, /clock advances
        every 25 ms of wall time between messages and equals a message's log time when that
        message is published, so sim time never runs behind a frame that was already sent.

        Args:
            loop: start over at the end.
            stop: an event that ends playback early.
            on_publish: called with (RawMessage, wall time ns) after each publish.

        Returns:
            The number of messages published.
        """
        count = 0
        while True:
            first_log: int | None = None
            start = time.monotonic_ns()
            for raw in self.bag.raw(self.topics):
                if stop is not None and stop.is_set():
                    return count
                if first_log is None:
                    first_log = raw.log_time_ns
                    self.publish_clock(first_log)
                due = start + round((raw.log_time_ns - first_log) / self.rate)
                if not self._wait_until(due, start, first_log, stop):
                    return count
                self.publish_clock(raw.log_time_ns)
                self.publishers[raw.topic].publish(raw.data)
                self.published[raw.topic] += 1
                count += 1
                if on_publish is not None:
                    on_publish(raw, time.time_ns())
            LOGGER.info('played %d messages of %s', count, self.bag.path)
            if not loop or count == 0:
                return count

    def run_clock(self, stop: threading.Event) -> None:
        """Keep /clock advancing from where playback ended, at the play rate, until `stop`.

        A `use_sim_time` node's timers (diagnostics) and its last frames still need time to pass
        after the bag's last message; `ros2 bag play` would freeze the clock there instead.
        """
        if self.clock_publisher is None or self._clock_ns is None:
            return
        origin_bag, origin_wall = self._clock_ns, time.monotonic_ns()
        while not stop.wait(CLOCK_PERIOD_NS / NS_PER_S):
            elapsed = time.monotonic_ns() - origin_wall
            self.publish_clock(origin_bag + round(elapsed * self.rate))

    def _wait_until(
        self, due: int, start: int, first_log: int, stop: threading.Event | None
    ) -> bool:
        """Sleep until monotonic time `due`, publishing the interpolated /clock meanwhile.

        Returns:
            False when `stop` was set while waiting.
        """
        while True:
            now = time.monotonic_ns()
            if now >= due:
                return True
            step = min(due - now, CLOCK_PERIOD_NS) / NS_PER_S
            if stop is not None:
                if stop.wait(step):
                    return False
            else:
                time.sleep(step)
            if self.clock_publisher is not None and time.monotonic_ns() < due:
                bag_now = first_log + round((time.monotonic_ns() - start) * self.rate)
                self.publish_clock(max(bag_now, self._clock_ns or bag_now))


def play_bag(
    path: Path,
    topics: Iterable[str] | None = None,
    *,
    rate: float = 1.0,
    loop: bool = False,
    clock: bool = False,
    delay_s: float = 0.0,
) -> dict[str, int]:
    """Play the bag at `path` from a node of its own in a fresh rclpy context.

    Args:
        path: the bag (anything BagReader opens).
        topics: topics to play (None = all).
        rate: playback speed factor (> 0).
        loop: start over at the end (until interrupted).
        clock: also publish /clock in bag time.
        delay_s: wait this long after creating the publishers, for discovery.

    Returns:
        Messages published per topic.
    """
    if not rate > 0:  # before any DDS participant is created
        raise DataError(f'--rate {rate} must be > 0.')
    with BagReader(path) as bag:
        context = rclpy.Context()
        rclpy.init(context=context)
        try:
            node = rclpy.create_node('pixio_bag_player', context=context)
            try:
                player = BagPlayer(node, bag, topics, rate=rate, clock=clock)
                if delay_s > 0:
                    time.sleep(delay_s)
                player.play(loop=loop)
                return dict(player.published)
            finally:
                node.destroy_node()
        finally:
            rclpy.try_shutdown(context=context)
