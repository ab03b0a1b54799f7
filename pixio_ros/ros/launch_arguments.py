"""Launch-argument parsing for launch/pixio.launch.py, kept pure so it is tested without launch.

Launch arguments arrive as strings; `compressed:=yes` used to turn silently into false. The launch
file is thin and calls these functions, which either return a typed value or refuse the text. The
RViz view (`rviz:=true`) is resolved here too: where rviz2 runs and how its topics are remapped so
that the relative topics of `config/pixio.rviz` land on the node's outputs and input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ament_index_python.packages import PackageNotFoundError, get_package_prefix

__all__ = [
    'FALSE_WORDS',
    'LIFECYCLE_EXECUTABLE',
    'NODE_EXECUTABLE',
    'POLICY_EXECUTABLE',
    'RVIZ_CONFIG',
    'RVIZ_EXECUTABLE',
    'RVIZ_MISSING',
    'RVIZ_PACKAGE',
    'TRUE_WORDS',
    'NodeStart',
    'RvizView',
    'input_remappings',
    'parse_bool_argument',
    'parse_cameras_argument',
    'parse_node_start',
    'rviz_installed',
    'rviz_view',
]

TRUE_WORDS: Final = frozenset({'true', '1', 'yes'})
FALSE_WORDS: Final = frozenset({'false', '0', 'no'})
NODE_EXECUTABLE: Final = 'pixio_node'
LIFECYCLE_EXECUTABLE: Final = 'pixio_lifecycle_node'
POLICY_EXECUTABLE: Final = 'pixio_policy_node'
RVIZ_PACKAGE: Final = 'rviz2'
RVIZ_EXECUTABLE: Final = 'rviz2'
RVIZ_CONFIG: Final = 'pixio.rviz'
"""The RViz configuration in the package's share/config directory."""
RVIZ_MISSING: Final = (
    'rviz:=true: rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2); '
    'starting the node without it'
)
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


@dataclass(frozen=True)
class RvizView:
    """How the launch file starts rviz2 on `config/pixio.rviz`.

    The configuration names topics relative to the node (`image`, `depth/colored`, `points`,
    `features`), so rviz2 runs in the node's namespace with the node's input remappings and shows
    whatever namespace and camera the launch arguments chose.

    Attributes:
        namespace: rviz2's namespace (the node's; with several cameras the first camera's).
        remappings: the input remappings that put `image` on the camera driver's topic.
        arguments: rviz2's command line (`-d CONFIG`, and `-f FRAME` for another fixed frame).
    """

    namespace: str
    remappings: list[tuple[str, str]]
    arguments: list[str]


def rviz_view(
    namespace: str, camera: str, cameras: Sequence[str], *, config: str, fixed_frame: str = ''
) -> RvizView:
    """The rviz2 process that shows the node's first (or only) camera.

    Args:
        namespace: the node's namespace launch argument ('' = the root).
        camera: the `camera` launch argument (input prefix).
        cameras: the cameras of a several-camera node (empty for one camera); RViz shows the first.
        config: path of `config/pixio.rviz`.
        fixed_frame: RViz's fixed frame, the camera's frame_id ('' = the configuration's).
    """
    first = cameras[0] if cameras else ''
    view_namespace = '/'.join(part for part in (namespace.rstrip('/'), first) if part)
    source = f'{camera.rstrip("/")}/{first}' if first else camera
    arguments = ['-d', config] + (['-f', fixed_frame] if fixed_frame else [])
    return RvizView(
        namespace=view_namespace,
        remappings=input_remappings(source, ()),
        arguments=arguments,
    )


def rviz_installed() -> bool:
    """Whether rviz2 is in the ament index (AMENT_PREFIX_PATH), where launch_ros looks for it."""
    try:
        get_package_prefix(RVIZ_PACKAGE)
    except PackageNotFoundError:
        return False
    return True
