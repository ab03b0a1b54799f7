"""The policy subpackage's exception."""

from __future__ import annotations

from pixio_ros.errors import PixioRosError


class PolicyError(PixioRosError):
    """A feature dataset, policy checkpoint or option that the policy example cannot use."""
