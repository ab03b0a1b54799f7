"""The model subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError


class ModelError(PixioRosError):
    """A checkpoint, size, head or artifact the model code cannot use as given."""
