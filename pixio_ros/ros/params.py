"""The rclpy side of the node's settings: declaring, live changes, QoS, start-up checks.

What the parameters are (types, defaults, descriptions, ranges, validation) lives in the pure
`pixio_ros.ros.settings`; this module turns it into rclpy descriptors and results. Read-only
parameters (model, device, precision, input/QoS choices) are fixed at start-up (params file or
--ros-args -p); the others change live: the node swaps in a new frozen `NodeSettings` that the
worker threads read once per frame.
"""

from __future__ import annotations

import array
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import rclpy
import yaml
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.context import Context
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.settings import (
    PARAMETERS,
    NodeSettings,
    ParameterSpec,
    ParameterValue,
    QosSettings,
    Reliability,
    SettingsError,
    unknown_parameter_messages,
)

__all__ = [
    'PARAMETERS',
    'apply_changes',
    'declare_parameters',
    'descriptor',
    'init_rclpy',
    'on_set_result',
    'qos_profile',
    'settings_changes',
    'unknown_parameter_warnings',
]

RELIABILITY: dict[Reliability, ReliabilityPolicy] = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
}
_SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}
# ROS arguments that take one value (so the value is not read as another flag).
_ROS_ARGS_WITH_VALUE = frozenset(
    {'-p', '--param', '-r', '--remap', '-e', '--enclave', '--log-level', '--log-config-file'}
)
# rcl's message for a params file it could not parse ("... Error: <why>, at parse.c:782, ...").
_RCL_PARAMS_FILE_ERROR = re.compile(
    r"Couldn't parse params file: '--params-file (?P<path>.*?)'\. Error: (?P<why>.*?)"
    r'(?:, at [^,]*:\d+)*$'
)
_RCL_SOURCE_LOCATION = re.compile(r'(?:, at [^,]*:\d+)+$')
PARAMS_FILE_LAYOUT = (
    'config/pixio.yaml shows the layout: a node name (or /**), then ros__parameters, then values'
)


def descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """The ParameterDescriptor rclpy enforces ranges and read-only with."""
    description = spec.description
    if spec.choices:
        description += f' One of: {", ".join(spec.choices)}.'
    result = ParameterDescriptor(description=description, read_only=spec.read_only)
    if spec.value_range is not None and spec.kind is int:
        low, high = spec.value_range
        result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high))]
    elif spec.value_range is not None and spec.kind is float:
        low, high = spec.value_range
        result.floating_point_range = [
            FloatingPointRange(from_value=float(low), to_value=float(high))
        ]
    if spec.choices:
        result.additional_constraints = f'one of: {", ".join(spec.choices)}'
    return result


def declare_parameters(node: Node) -> NodeSettings:
    """Declare every parameter on `node` and return the start-up settings.

    rclpy itself refuses a value of the wrong type or out of range here (ParameterException).

    Raises:
        SettingsError: a start-up value rclpy accepted but the settings refuse (a choice, or
            points.min_range beyond points.max_range).
    """
    values: dict[str, ParameterValue] = {}
    for spec in PARAMETERS:
        if spec.kind is list:
            # rclpy infers a byte array from an empty list: declare the type, not a default.
            # Without an override the value stays unset (None), which is the empty list.
            array = (
                Parameter.Type.DOUBLE_ARRAY
                if spec.item_kind is float
                else Parameter.Type.STRING_ARRAY
            )
            parameter = node.declare_parameter(spec.name, array, descriptor(spec))
            values[spec.name] = list(parameter.value or [])
        else:
            parameter = node.declare_parameter(spec.name, spec.default, descriptor(spec))
            values[spec.name] = parameter.value
    try:
        return NodeSettings.from_parameters(values)
    except SettingsError as err:
        raise SettingsError(f'invalid start-up parameters: {err}') from err


def settings_changes(parameters: Iterable[Parameter]) -> dict[str, ParameterValue]:
    """The node-settings part of a change request (rclpy's own, such as use_sim_time, left out).

    rclpy hands a double array over as array.array('d'); the settings take it as a list.
    """
    return {
        p.name: list(p.value) if isinstance(p.value, array.array) else p.value
        for p in parameters
        if p.name in _SPECS
    }


def apply_changes(
    current: NodeSettings, parameters: Iterable[Parameter]
) -> tuple[SetParametersResult, NodeSettings]:
    """Check a runtime change request: rclpy's result and the settings in force afterwards.

    A refused request leaves `current` in force. Read-only parameters are refused with where to
    set them; the rest is validated by `NodeSettings.replaced` (choices, min vs max range).
    """
    parameters = list(parameters)
    read_only = [p.name for p in parameters if p.name in _SPECS and _SPECS[p.name].read_only]
    if read_only:
        reason = '; '.join(
            f'{name} is read-only; set it at start-up (params file or --ros-args -p)'
            for name in read_only
        )
        return SetParametersResult(successful=False, reason=reason), current
    try:
        updated = current.replaced(settings_changes(parameters))
    except SettingsError as err:
        return SetParametersResult(successful=False, reason=str(err)), current
    return SetParametersResult(successful=True, reason=''), updated


def on_set_result(parameters: list[Parameter], current: NodeSettings) -> SetParametersResult:
    """SetParametersResult for a runtime change request against the `current` settings."""
    result, _ = apply_changes(current, parameters)
    return result


def qos_profile(qos: QosSettings) -> QoSProfile:
    """Keep-last QoS with the configured reliability and depth, volatile durability."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=qos.depth,
        reliability=RELIABILITY[qos.reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def unknown_parameter_warnings(node: Node) -> list[str]:
    """One line per parameter set for `node` (params file, -p) that it never declared.

    rclpy silently ignores such overrides, so a misspelt `points.strid: 4` would leave the node
    on the default stride. Call this after `declare_parameters`.

    rclpy has no public accessor for the overrides: `Node._parameter_overrides` (the same
    attribute in Humble, Jazzy and Kilted) holds exactly those rcl resolved for this node, from
    sections under its fully qualified name and the `/**` and `/*` wildcards, plus the
    constructor's `parameter_overrides`.
    """
    overrides = getattr(node, '_parameter_overrides', None) or {}
    declared = list(node.get_parameters_by_prefix(''))
    return unknown_parameter_messages(
        overrides,
        declared,
        owner=node.get_fully_qualified_name(),
        consequence='its value is ignored',
    )


def init_rclpy(args: Sequence[str] | None = None, *, context: Context | None = None) -> None:
    """`rclpy.init` that reports a bad params file or ROS argument as one NodeError line.

    rclpy raises a bare RCLError (a traceback in the node log) for a params file that does not
    exist or is not valid YAML. The params files named after --params-file are checked first, so
    the common mistakes get a precise message naming the file, the line and the fix; anything
    else rcl refuses is turned into one line too.

    Args:
        args: the command line, as for `rclpy.init` (None: sys.argv).
        context: the context to initialise (None: the default context).

    Raises:
        NodeError: a params file is missing, unreadable or invalid, or rcl refused the
            arguments.
    """
    argv = list(sys.argv if args is None else args)
    for path in params_files(argv):
        check_params_file(path)
    try:
        rclpy.init(args=None if args is None else argv, context=context)
    except rclpy_implementation.RCLError as err:
        raise NodeError(_rcl_init_failure(str(err))) from err


def params_files(argv: Sequence[str]) -> Iterator[str]:
    """The paths given with --params-file inside the --ros-args sections of `argv`."""
    in_ros_args = False
    tokens = iter(argv)
    for token in tokens:
        if token == '--ros-args':
            in_ros_args = True
        elif not in_ros_args:
            continue
        elif token == '--':
            in_ros_args = False
        elif token == '--params-file':
            path = next(tokens, None)
            if path is not None:
                yield path
        elif token in _ROS_ARGS_WITH_VALUE:
            next(tokens, None)


def check_params_file(path: str) -> None:
    """Raise NodeError when the params file at `path` cannot be read as YAML.

    rcl checks the layout (ros__parameters, one type per list) itself; this catches what it
    reports least clearly: a missing file, a directory, and YAML syntax errors with their line.
    """
    file = Path(path)
    where = '(given with --params-file)'
    if not file.is_absolute():
        where = f'(given with --params-file, relative to {os.getcwd()})'
    if not file.exists():
        raise NodeError(
            f'params file {path} does not exist {where}; check the path, or start from the '
            'shipped config/pixio.yaml'
        )
    if file.is_dir():
        raise NodeError(f'params file {path} is a directory {where}; name a YAML file in it')
    try:
        text = file.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as err:
        raise NodeError(
            f'cannot read params file {path}: {err}; check its permissions and that it is a '
            'UTF-8 YAML file'
        ) from err
    try:
        # Syntax only: compose builds the node tree without constructing Python objects, so the
        # tags launch_ros writes (e.g. !!python/tuple for a list parameter), which rcl's own
        # parser accepts, are not refused here.
        for _ in yaml.compose_all(text, Loader=yaml.SafeLoader):
            pass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = err.problem or err.context or 'invalid syntax'
        raise NodeError(
            f'params file {path} is not valid YAML: {problem}{at}; fix the syntax there '
            f'({PARAMS_FILE_LAYOUT})'
        ) from err
    except yaml.YAMLError as err:
        raise NodeError(
            f'params file {path} is not valid YAML: {err}; fix the syntax ({PARAMS_FILE_LAYOUT})'
        ) from err


def _rcl_init_failure(message: str) -> str:
    """One line for an rcl initialisation error, naming the params file when rcl names one."""
    found = _RCL_PARAMS_FILE_ERROR.search(message)
    if found is not None:
        return (
            f'params file {found["path"]} was refused by ROS: {found["why"]}; fix it there '
            f'({PARAMS_FILE_LAYOUT})'
        )
    detail = _RCL_SOURCE_LOCATION.sub('', message.strip())
    return f'ROS could not start: {detail}; check the arguments after --ros-args'
