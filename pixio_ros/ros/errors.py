"""The ros subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError

__all__ = ['NodeError']


class NodeError(PixioRosError):
    """A node configuration (parameters, topics) that cannot work; the message says the fix."""
