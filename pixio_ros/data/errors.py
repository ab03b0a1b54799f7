"""The data subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError


class DataError(PixioRosError):
    """A bag, topic or message cannot be read or written as asked."""
