"""`pixio-ros play` and ros.player: original bytes over real rclpy / Fast DDS, paced by the log."""

from __future__ import annotations

import threading
import time

import pytest

from pixio_ros.cli import main
from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC, SampleBagSpec, write_sample_bag
from pixio_ros.ros.player import BagPlayer

FRAMES = 6


@pytest.fixture(scope='module')
def small_bag(tmp_path_factory):
    return write_sample_bag(
        tmp_path_factory.mktemp('play') / 'bag', SampleBagSpec(frames=FRAMES, height=12, width=16)
    )


@pytest.mark.timeout(60)
def test_played_messages_arrive_byte_identical_and_paced(small_bag, ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    received: dict[str, list[bytes]] = {COLOR_TOPIC: [], DEPTH_TOPIC: []}
    clocks: list[int] = []
    listener = rclpy.create_node('listener', context=ros_context)
    qos = QoSProfile(depth=FRAMES * 2, reliability=ReliabilityPolicy.RELIABLE)
    for topic in received:
        listener.create_subscription(Image, topic, received[topic].append, qos, raw=True)
    listener.create_subscription(
        Clock, '/clock', lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), qos
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    node = rclpy.create_node('player', context=ros_context)
    try:
        with BagReader(small_bag) as bag:
            expected = {t: [r.data for r in bag.raw([t])] for t in received}
            log_times = sorted(r.log_time_ns for r in bag.raw(list(received)))
            player = BagPlayer(node, bag, list(received), rate=2.0, clock=True)
            assert player.wait_for_subscribers(received, timeout_s=20)  # /clock included
            start = time.monotonic()
            count = player.play()
            elapsed = time.monotonic() - start
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(v) < FRAMES for v in received.values()):
            time.sleep(0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
    assert count == 2 * FRAMES
    assert received == expected  # original headers and payloads, in stamp order
    # /clock runs in bag (log) time: from the first log time to the last, never backwards,
    # and reaches every message's log time when that message goes out
    assert clocks[0] == log_times[0] and clocks[-1] == log_times[-1]
    assert clocks == sorted(clocks) and set(log_times) <= set(clocks)
    # the recorded span is (FRAMES - 1) frames at 30 Hz plus the depth log delay; rate 2 halves it
    assert elapsed >= ((FRAMES - 1) / 30.0 + 0.002) / 2.0 * 0.95


def test_unknown_topic_is_refused_listing_the_bags_topics(small_bag, ros_context):
    import rclpy

    node = rclpy.create_node('player', context=ros_context)
    try:
        with (
            BagReader(small_bag) as bag,
            pytest.raises(
                DataError, match=r'--topics /nope not in bag .*its topics are: .*/camera/color/'
            ),
        ):
            BagPlayer(node, bag, ['/nope'])
    finally:
        node.destroy_node()


def test_cli_reports_bad_rate_in_one_line(small_bag, capsys):
    assert main(['play', str(small_bag), '--rate', '0']) == 1
    assert '--rate 0.0 must be > 0' in capsys.readouterr().err


def test_loop_starts_over_until_stopped(small_bag, ros_context):
    import rclpy

    node = rclpy.create_node('looper', context=ros_context)
    stop = threading.Event()
    stamps: list[int] = []

    def count(raw, wall_ns):
        stamps.append(raw.log_time_ns)
        if len(stamps) == FRAMES + 2:
            stop.set()

    try:
        with BagReader(small_bag) as bag:
            player = BagPlayer(node, bag, [COLOR_TOPIC], rate=20.0)
            published = player.play(loop=True, stop=stop, on_publish=count)
    finally:
        node.destroy_node()
    assert published == FRAMES + 2
    assert stamps[FRAMES:] == stamps[:2]  # the second pass repeats the recording
