"""ROS 2 side: the node, message conversions, parameters (the only place importing rclpy)."""

from typing import Any

from pixio_ros.ros.errors import NodeError

__all__ = ['NodeError', 'PixioNode', 'main']


def __getattr__(name: str) -> Any:
    """Import the node (rclpy, torch) only when it is asked for."""
    if name in ('PixioNode', 'main'):
        from pixio_ros.ros import node

        return getattr(node, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
