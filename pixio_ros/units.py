"""Time units and header stamps: the conversions every layer shares, written once.

The factors are exact integers, so integer nanosecond stamps stay integers (a message's
``sec`` / ``nanosec`` split, a TUM timestamp through `Decimal`) and a float operand still gives
the same float as before.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ['MS_PER_S', 'NS_PER_MS', 'NS_PER_S', 'stamp_ns']

NS_PER_S: Final = 1_000_000_000
NS_PER_MS: Final = 1_000_000
MS_PER_S: Final = 1_000


def stamp_ns(header: Any) -> int:
    """Integer nanoseconds of a header's stamp.

    Any object with ``stamp.sec`` / ``stamp.nanosec`` will do: rclpy messages and rosbags'
    message dataclasses alike.
    """
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)
