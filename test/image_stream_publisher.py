"""Publisher half of test_dds_transport: streams numbered 640x480 rgb8 images, then exits.

Run as its own process so the frames cross a real process boundary through Fast DDS. Each
frame's pixels are derived from its index (see `frame_pixels`), so the receiver can rebuild the
expected bytes without sharing anything but this file.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

TOPIC = 'image'
HEIGHT, WIDTH = 480, 640


def frame_pixels(index: int) -> np.ndarray:
    """Deterministic (480, 640, 3) uint8 pixels for frame `index`."""
    return np.random.default_rng(index).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def main() -> int:
    """Wait for one subscriber, publish the frames reliably, wait until they are acknowledged."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--frames', type=int, required=True)
    parser.add_argument('--match-timeout', type=float, default=30.0)
    args = parser.parse_args()

    import rclpy
    import rclpy.duration
    from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('image_stream_publisher')
    qos = QoSProfile(
        depth=args.frames,
        history=QoSHistoryPolicy.KEEP_LAST,
        reliability=QoSReliabilityPolicy.RELIABLE,
    )
    publisher = node.create_publisher(Image, TOPIC, qos)
    deadline = time.monotonic() + args.match_timeout
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print('no subscriber matched', file=sys.stderr)
            return 1
        time.sleep(0.01)

    for index in range(args.frames):
        msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', is_bigendian=0, step=WIDTH * 3)
        msg.header.frame_id = f'frame_{index}'
        msg.data = frame_pixels(index).tobytes()
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        time.sleep(1.0 / 30.0)
    publisher.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
