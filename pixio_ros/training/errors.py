"""The training subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError


class TrainingError(PixioRosError):
    """Training data, options or a run directory that head training cannot use as given."""
