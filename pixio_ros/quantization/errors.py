"""The quantization subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError

__all__ = ['QuantizationError']


class QuantizationError(PixioRosError):
    """A quantisation request that cannot be carried out, or an INT8 result the gate refuses."""
