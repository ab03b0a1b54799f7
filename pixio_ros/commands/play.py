"""`pixio-ros play`: publish a bag's messages through rclpy at their recorded timing.

A stand-in for `ros2 bag play` on machines with only the rclpy wheels. Messages go out as the
recorded CDR bytes (ROS 1 bags are converted), so headers and payloads are exactly the original;
pacing follows the log (receive) times, scaled by --rate.
"""

from __future__ import annotations

import argparse
import importlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

HELP = 'Play a bag into ROS 2 through rclpy at its recorded timing (ros2 bag play stand-in).'
NS_PER_S: Final = 1_000_000_000
CLOCK_PERIOD_NS: Final = 25_000_000  # /clock at 40 Hz, as ros2 bag play does
PUBLISHER_QUEUE_DEPTH: Final = 10
SUBSCRIBER_POLL_S: Final = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options."""
    parser.add_argument('bag', type=Path, help='rosbag2 directory (sqlite3 / mcap) or ROS 1 .bag')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--topics', nargs='+', help='only these topics (default: all)')
    parser.add_argument('--clock', action='store_true',
                        help='publish /clock from the recorded times (use_sim_time consumers)')
    parser.add_argument('--delay', type=float, default=0.0,
                        help='seconds to wait after creating publishers (discovery)')


def message_class(msgtype: str) -> Any:
    """The rclpy message class for 'pkg/msg/Name'; raises DataError if it is not installed."""
    from pixio_ros.data.errors import DataError

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
        bag: an open `pixio_ros.data.bag.BagReader`.
        topics: topics to play (None = all).
        rate: playback speed factor (> 0).
        clock: also publish /clock.
    """

    def __init__(self, node: Any, bag: Any, topics: Iterable[str] | None = None, *,
                 rate: float = 1.0, clock: bool = False) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from pixio_ros.data.errors import DataError

        if not rate > 0:
            raise DataError(f'--rate {rate} must be > 0.')
        available = bag.topics
        chosen = list(available) if topics is None else list(topics)
        missing = [t for t in chosen if t not in available]
        if missing:
            raise DataError(f'--topics {" ".join(missing)} not in bag {bag.path}; its topics '
                            f'are: {bag.describe_topics()}.')
        qos = QoSProfile(depth=PUBLISHER_QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.node, self.bag, self.rate, self.topics = node, bag, rate, chosen
        self.publishers = {t: node.create_publisher(message_class(available[t]), t, qos)
                           for t in chosen}
        self.clock_publisher = None
        if clock:
            self.clock_publisher = node.create_publisher(message_class(
                'rosgraph_msgs/msg/Clock'), '/clock', qos)
        self.published = dict.fromkeys(chosen, 0)

    def wait_for_subscribers(self, topics: Iterable[str], timeout_s: float) -> bool:
        """Block until each of `topics` has a matched subscription; False on timeout."""
        deadline = time.monotonic() + timeout_s
        wanted = list(topics)
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in wanted):
                return True
            time.sleep(SUBSCRIBER_POLL_S)
        return False

    def _publish_clock(self, log_time_ns: int) -> None:
        from rclpy.time import Time

        msg = message_class('rosgraph_msgs/msg/Clock')()
        msg.clock = Time(nanoseconds=log_time_ns).to_msg()
        self.clock_publisher.publish(msg)

    def play(self, *, loop: bool = False, stop: threading.Event | None = None,
             on_publish: Callable[[Any, int], None] | None = None) -> int:
        """Publish until the end of the bag (forever with `loop`, until `stop` is set).

        Args:
            loop: start over at the end.
            stop: an event that ends playback early.
            on_publish: called with (RawMessage, wall time ns) after each publish.

        Returns:
            The number of messages published.
        """
        count = 0
        while True:
            first_log, start, last_clock = None, time.monotonic_ns(), None
            for raw in self.bag.raw(self.topics):
                if stop is not None and stop.is_set():
                    return count
                if first_log is None:
                    first_log = raw.log_time_ns
                due = start + round((raw.log_time_ns - first_log) / self.rate)
                wait = (due - time.monotonic_ns()) / NS_PER_S
                if wait > 0:
                    time.sleep(wait)
                if self.clock_publisher is not None and (
                        last_clock is None or raw.log_time_ns - last_clock >= CLOCK_PERIOD_NS):
                    self._publish_clock(raw.log_time_ns)
                    last_clock = raw.log_time_ns
                self.publishers[raw.topic].publish(raw.data)
                self.published[raw.topic] += 1
                count += 1
                if on_publish is not None:
                    on_publish(raw, time.time_ns())
            if not loop or count == 0:
                return count


def run(args: argparse.Namespace) -> int:
    """Play the bag; prints per-topic counts at the end."""
    import rclpy

    from pixio_ros.data.bag import BagReader

    with BagReader(args.bag) as bag:
        rclpy.init()
        try:
            node = rclpy.create_node('pixio_bag_player')
            player = BagPlayer(node, bag, args.topics, rate=args.rate, clock=args.clock)
            if args.delay > 0:
                time.sleep(args.delay)
            player.play(loop=args.loop)
            for topic, count in player.published.items():
                print(f'{topic}: {count} messages')
            node.destroy_node()
        finally:
            rclpy.try_shutdown()
    return 0
