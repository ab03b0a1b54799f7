"""`pixio-ros play`: publish a bag's messages through rclpy at their recorded timing.

A stand-in for `ros2 bag play` on machines with only the rclpy wheels; the player itself is
`pixio_ros.ros.player.BagPlayer`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = 'Play a bag into ROS 2 through rclpy at its recorded timing (ros2 bag play stand-in).'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options."""
    parser.add_argument('bag', type=Path, help='rosbag2 directory (sqlite3 / mcap) or ROS 1 .bag')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--topics', nargs='+', help='only these topics (default: all)')
    parser.add_argument(
        '--clock',
        action='store_true',
        help='publish /clock in bag time, so nodes started with use_sim_time:=true measure '
        'message age against the recording, not against today',
    )
    parser.add_argument(
        '--delay', type=float, default=0.0, help='seconds to wait after creating publishers'
    )


def run(args: argparse.Namespace) -> int:
    """Play the bag; prints per-topic counts at the end."""
    from pixio_ros.ros.player import play_bag

    published = play_bag(
        args.bag, args.topics, rate=args.rate, loop=args.loop, clock=args.clock, delay_s=args.delay
    )
    for topic, count in published.items():
        print(f'{topic}: {count} messages')
    return 0
