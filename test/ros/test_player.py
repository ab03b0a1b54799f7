"""ros.player's /clock: a use_sim_time node measures replayed (2023) stamps in ms, not days."""

from __future__ import annotations

import threading
import time

import pytest

from pixio_ros.data.bag import BagReader
from pixio_ros.data.sample_bag import COLOR_TOPIC, SampleBagSpec, write_sample_bag
from pixio_ros.ros.player import BagPlayer, play_bag
from pixio_ros.units import stamp_ns

FRAMES = 8
NS_PER_MS = 1_000_000
DAY_MS = 86_400_000


@pytest.fixture(scope='module')
def old_bag(tmp_path_factory):
    """The sample bag: its stamps start in November 2023, years before any test run."""
    return write_sample_bag(
        tmp_path_factory.mktemp('player') / 'bag', SampleBagSpec(frames=FRAMES, height=12, width=16)
    )


def _listener(ros_context, *, sim_time: bool):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    listener = rclpy.create_node(
        'age_listener',
        context=ros_context,
        parameter_overrides=[Parameter('use_sim_time', Parameter.Type.BOOL, sim_time)],
    )
    ages_ms: list[float] = []

    def on_image(msg) -> None:  # what the node does: now - header.stamp
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        ages_ms.append((listener.get_clock().now().nanoseconds - stamp) / NS_PER_MS)

    qos = QoSProfile(depth=FRAMES * 2, reliability=ReliabilityPolicy.RELIABLE)
    listener.create_subscription(Image, COLOR_TOPIC, on_image, qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    threading.Thread(target=executor.spin, daemon=True).start()
    return listener, executor, ages_ms


def _play_into(ros_context, bag_path, *, sim_time: bool, clock: bool) -> list[float]:
    import rclpy

    listener, executor, ages_ms = _listener(ros_context, sim_time=sim_time)
    node = rclpy.create_node('player', context=ros_context)
    try:
        with BagReader(bag_path) as bag:
            player = BagPlayer(node, bag, [COLOR_TOPIC], rate=2.0, clock=clock)
            assert player.wait_for_subscribers([COLOR_TOPIC], timeout_s=20)
            assert player.play() == FRAMES
        deadline = time.monotonic() + 10
        while len(ages_ms) < FRAMES and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
    assert len(ages_ms) == FRAMES
    return ages_ms


@pytest.mark.timeout(60)
def test_sim_time_node_on_the_players_clock_sees_ages_of_milliseconds(old_bag, ros_context):
    ages_ms = _play_into(ros_context, old_bag, sim_time=True, clock=True)
    # the node's clock is the bag's: a frame is at most a /clock period or two old (or young)
    assert all(abs(age) < 1000 for age in ages_ms), ages_ms


@pytest.mark.timeout(60)
def test_without_the_clock_the_same_bag_looks_years_old(old_bag, ros_context):
    """The failure the clock fixes: wall time minus 2023 stamps (the 1113-day age)."""
    ages_ms = _play_into(ros_context, old_bag, sim_time=False, clock=False)
    assert all(age > 365 * DAY_MS for age in ages_ms)


@pytest.mark.timeout(60)
def test_run_clock_keeps_bag_time_advancing_after_the_last_message(old_bag, ros_context):
    import rclpy

    node = rclpy.create_node('player', context=ros_context)
    try:
        with BagReader(old_bag) as bag:
            last_log = max(r.log_time_ns for r in bag.raw([COLOR_TOPIC]))
            first_stamp = stamp_ns(bag.messages(COLOR_TOPIC)[0].msg.header)
            player = BagPlayer(node, bag, [COLOR_TOPIC], rate=4.0, clock=True)
            player.play()
            assert player.clock_ns == last_log
            stop = threading.Event()
            clock = threading.Thread(target=player.run_clock, args=(stop,))
            clock.start()
            time.sleep(0.3)  # the clock's own pace is what is measured here
            stop.set()
            clock.join()
    finally:
        node.destroy_node()
    advanced_ms = (player.clock_ns - last_log) / NS_PER_MS
    assert 4 * 300 * 0.5 < advanced_ms < 4 * 300 * 3  # rate 4: bag time runs 4x wall time
    assert player.clock_ns > first_stamp


@pytest.mark.timeout(60)
def test_play_bag_counts_per_topic_in_its_own_context(old_bag):
    assert play_bag(old_bag, [COLOR_TOPIC], rate=50.0, clock=True) == {COLOR_TOPIC: FRAMES}
