"""The runtime's exception, shared by the Engine and its backends."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError

__all__ = ['EngineError']


class EngineError(PixioRosError):
    """An artifact, device or input the engine cannot run; the message says how to fix it."""
