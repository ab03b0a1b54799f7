"""Launch-argument parsing for launch/pixio.launch.py, kept pure so it is tested without launch.

Launch arguments arrive as strings; `compressed:=yes` used to turn silently into false. The launch
file is thin and calls these functions, which either return a typed value or refuse the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    'FALSE_WORDS',
    'LIFECYCLE_EXECUTABLE',
    'NODE_EXECUTABLE',
    'TRUE_WORDS',
    'NodeStart',
    'input_remappings',
    'parse_bool_argument',
    'parse_cameras_argument',
    'parse_node_start',
]

TRUE_WORDS: Final = frozenset({'true', '1', 'yes'})
FALSE_WORDS: Final = frozenset({'false', '0', 'no'})
NODE_EXECUTABLE: Final = 'pixio_node'
LIFECYCLE_EXECUTABLE: Final = 'pixio_lifecycle_node'
_NAME_SEPARATORS = re.compile(r'[,\s]+')


def parse_bool_argument(name: str, value: str) -> bool | None:
    """A boolean launch argument: true/false, 1/0, yes/no in any case; '' means "not given".

    Args:
        name: the argument's name, for the error message.
        value: the argument's text as launch resolved it.

    Returns:
        True or False, or None for an empty value (the params file's value stays in force).

    Raises:
        ValueError: any other text, naming the argument, the value and the accepted words.
    """
    text = value.strip().lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(
        f'launch argument {name}:={value!r} is not a boolean; use true/false, 1/0 or yes/no '
        "(any case), or leave it out to keep params_file's value."
    )


def parse_cameras_argument(value: str) -> tuple[str, ...] | None:
    """`cameras:=front,left` (commas and/or spaces): the names; '' means "not given".

    The names themselves are checked by the node (parameter `cameras`), which refuses an
    invalid one with a message naming it.
    """
    names = tuple(name for name in _NAME_SEPARATORS.split(value.strip()) if name)
    return names or None


def input_remappings(camera: str, cameras: Sequence[str]) -> list[tuple[str, str]]:
    """Remappings of the node's inputs onto a driver's usual topics under the `camera` prefix.

    One camera: `image` -> `<camera>/image_raw` (and `/compressed`), `camera_info` ->
    `<camera>/camera_info`. Several: the same for each name, under `<camera>/<name>`
    (`camera:=/` puts camera `front` on `/front/image_raw`).
    """
    prefix = camera.rstrip('/')
    names = [f'{name}/' for name in cameras] or ['']
    remappings = []
    for name in names:
        source = f'{prefix}/{name}'
        remappings += [
            (f'{name}image', f'{source}image_raw'),
            (f'{name}image/compressed', f'{source}image_raw/compressed'),
            (f'{name}camera_info', f'{source}camera_info'),
        ]
    return remappings


@dataclass(frozen=True)
class NodeStart:
    """Which executable the launch file starts, and whether it drives the lifecycle itself.

    Attributes:
        lifecycle: start the managed `pixio_lifecycle_node` (else the plain `pixio_node`).
        autostart: configure and then activate it at once (lifecycle only).
    """

    lifecycle: bool
    autostart: bool

    @property
    def executable(self) -> str:
        """The console script to start."""
        return LIFECYCLE_EXECUTABLE if self.lifecycle else NODE_EXECUTABLE


def parse_node_start(lifecycle: str, autostart: str) -> NodeStart:
    """The `lifecycle:=` and `autostart:=` launch arguments (booleans, '' = false).

    Raises:
        ValueError: a value that is not a boolean, or autostart without lifecycle (the plain
            node starts processing at once; there is nothing to start).
    """
    managed = bool(parse_bool_argument('lifecycle', lifecycle))
    start = bool(parse_bool_argument('autostart', autostart))
    if start and not managed:
        raise ValueError(
            'launch argument autostart:=true needs lifecycle:=true (the plain pixio_node '
            'processes from the start); add lifecycle:=true or leave autostart out.'
        )
    return NodeStart(lifecycle=managed, autostart=start)
