"""Two processes exchange 640x480 rgb8 images through rclpy and Fast DDS (shipped profile)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from image_stream_publisher import HEIGHT, TOPIC, WIDTH, frame_pixels

FRAMES = 30
PUBLISHER = Path(__file__).with_name('image_stream_publisher.py')


@pytest.mark.timeout(120)
def test_every_frame_arrives_byte_identical_across_processes(ros_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import Image

    node = rclpy_node(ros_context)
    received: list[tuple[Image, int]] = []
    qos = QoSProfile(
        depth=FRAMES,
        history=QoSHistoryPolicy.KEEP_LAST,
        reliability=QoSReliabilityPolicy.RELIABLE,
    )
    node.create_subscription(Image, TOPIC, lambda msg: received.append((msg, time.time_ns())), qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    publisher = subprocess.Popen(
        [sys.executable, str(PUBLISHER), '--frames', str(FRAMES)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while len(received) < FRAMES and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if publisher.poll() not in (None, 0):
                break
        assert publisher.wait(timeout=30) == 0, publisher.stderr.read()
    finally:
        if publisher.poll() is None:
            publisher.kill()
        executor.shutdown()
        node.destroy_node()

    assert [msg.header.frame_id for msg, _ in received] == [f'frame_{i}' for i in range(FRAMES)]
    latencies_ms = []
    for index, (msg, arrival_ns) in enumerate(received):
        assert (msg.height, msg.width, msg.encoding, msg.step) == (HEIGHT, WIDTH, 'rgb8', WIDTH * 3)
        pixels = np.frombuffer(msg.data, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(pixels, frame_pixels(index))
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies_ms.append((arrival_ns - stamp_ns) / 1e6)
    median_ms = statistics.median(latencies_ms)
    print(f'\n640x480 rgb8 across processes: median latency {median_ms:.2f} ms')


def rclpy_node(context):
    """A plain rclpy node in `context`."""
    from rclpy.node import Node

    return Node('image_stream_subscriber', context=context)
