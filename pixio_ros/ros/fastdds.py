"""Which variable points Fast DDS at a profile file: the one place that depends on the ROS distro.

Fast DDS 2.x (Humble, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE. Fast DDS 3.x (Kilted and
later) reads FASTDDS_DEFAULT_PROFILES_FILE; its rmw still honours FASTRTPS_DEFAULT_PROFILES_FILE but
then logs a deprecation warning for every participant, which turns a node's one-line error into two
lines. Pure (no rclpy), so the launch file, the CLI and the tests can all use it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Final

__all__ = [
    'FAST_DDS_2_DISTROS',
    'PROFILE_VARIABLES',
    'point_fast_dds_at',
    'profile_variables',
]

FAST_DDS_2_VARIABLE: Final = 'FASTRTPS_DEFAULT_PROFILES_FILE'
FAST_DDS_3_VARIABLE: Final = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILE_VARIABLES: Final = (FAST_DDS_2_VARIABLE, FAST_DDS_3_VARIABLE)
# ROS 2 distributions (ROS_DISTRO) that ship Fast DDS 2.x; later ones ship 3.x.
FAST_DDS_2_DISTROS: Final = frozenset({'humble', 'iron', 'jazzy'})


def profile_variables(distro: str | None) -> tuple[str, ...]:
    """The profile variables to set for `distro` (a ROS_DISTRO value, None when unknown).

    An unknown distro gets both names: every Fast DDS then finds the profile, and Fast DDS 3 warns.
    """
    if not distro:
        return PROFILE_VARIABLES
    if distro.strip().lower() in FAST_DDS_2_DISTROS:
        return (FAST_DDS_2_VARIABLE,)
    return (FAST_DDS_3_VARIABLE,)


def point_fast_dds_at(
    profile: Path | str, environ: MutableMapping[str, str] | None = None
) -> tuple[str, ...]:
    """Make `profile` the Fast DDS profile of `environ` (default os.environ) for its ROS_DISTRO.

    Both names are cleared first, so a profile chosen earlier under the other name cannot win.

    Returns:
        The variable names set.
    """
    env = os.environ if environ is None else environ
    for name in PROFILE_VARIABLES:
        env.pop(name, None)
    names = profile_variables(env.get('ROS_DISTRO'))
    for name in names:
        env[name] = str(profile)
    return names
