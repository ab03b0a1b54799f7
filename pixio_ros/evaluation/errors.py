"""The evaluation subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError


class EvaluationError(PixioRosError):
    """An evaluation cannot run as asked: bad option, missing topic, no stamp pairs."""
