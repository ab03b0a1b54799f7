"""The shared time units: exact integer factors and header stamps from either message flavour."""

from __future__ import annotations

from decimal import Decimal

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from pixio_ros.data.messages import header as bag_header
from pixio_ros.units import MS_PER_S, NS_PER_MS, NS_PER_S, stamp_ns


def test_the_factors_are_exact_integers():
    # Integers keep integer stamps integral and accept Decimal (TUM's timestamps) exactly.
    for factor in (MS_PER_S, NS_PER_MS, NS_PER_S):
        assert type(factor) is int
    assert NS_PER_S == NS_PER_MS * MS_PER_S
    assert Decimal('1305031102.175304') * NS_PER_S == Decimal(1305031102175304000)


def test_stamp_of_an_rclpy_header():
    msg = Header(stamp=Time(sec=1_700_000_000, nanosec=999_999_999), frame_id='camera')
    assert stamp_ns(msg) == 1_700_000_000_999_999_999


def test_stamp_of_a_rosbags_header_round_trips():
    for stamp in (0, 1, 999_999_999, 1_000_000_000, 1_765_000_123_456_789_012):
        assert stamp_ns(bag_header(stamp, 'camera')) == stamp
