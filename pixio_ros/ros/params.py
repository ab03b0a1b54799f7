"""The node's parameters: one table with defaults, descriptions, ranges and validation.

Read-only parameters (model, device, precision, input/QoS choices) are fixed at start-up (params
file or --ros-args -p); rclpy rejects runtime changes with a reason. The others change live: the
node swaps in a new immutable `Settings` snapshot the worker thread reads once per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from pixio_ros.ros.errors import NodeError

__all__ = [
    'PARAMETERS',
    'ParameterSpec',
    'Settings',
    'declare_parameters',
    'on_set_result',
    'qos_from_settings',
    'validate_changes',
]

RELIABILITY: dict[str, ReliabilityPolicy] = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
}
MAX_QUEUE_DEPTH = 100
MAX_STRIDE = 64
MAX_RANGE_M = 1000.0
MAX_VOXEL_M = 10.0
MAX_RATE_HZ = 1000.0
MAX_WARMUP_RUNS = 100
MIN_DIAGNOSTICS_PERIOD_S = 0.1
MAX_DIAGNOSTICS_PERIOD_S = 60.0


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter.

    Attributes:
        name: dotted parameter name.
        default: default value; its type is the parameter's type.
        description: what it does, shown by `ros2 param describe`.
        read_only: fixed after start-up.
        value_range: inclusive (low, high) for numbers.
        choices: allowed strings.
    """

    name: str
    default: bool | int | float | str
    description: str
    read_only: bool = False
    value_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        """The ParameterDescriptor rclpy enforces ranges and read-only with."""
        description = self.description
        if self.choices:
            description += f' One of: {", ".join(self.choices)}.'
        descriptor = ParameterDescriptor(description=description, read_only=self.read_only)
        if self.value_range is not None and isinstance(self.default, int):
            low, high = self.value_range
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high))]
        elif self.value_range is not None and isinstance(self.default, float):
            low, high = self.value_range
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high))
            ]
        if self.choices:
            descriptor.additional_constraints = f'one of: {", ".join(self.choices)}'
        return descriptor


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        'model_path', '', 'Pixio artifact (.ts or .pt2) made by `pixio-ros export`.', read_only=True
    ),
    ParameterSpec(
        'device', 'auto', "Torch device: 'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'.",
        read_only=True,
    ),
    ParameterSpec(
        'precision', 'fp32', 'Weights precision (half precisions are meant for CUDA).',
        read_only=True, choices=('fp32', 'fp16', 'bf16'),
    ),
    ParameterSpec(
        'warmup_runs', 1, 'Forward passes at start-up so the first frame is not slow.',
        read_only=True, value_range=(0, MAX_WARMUP_RUNS),
    ),
    ParameterSpec(
        'compressed_input', False,
        'Subscribe to image/compressed (JPEG/PNG) instead of image (raw).', read_only=True,
    ),
    ParameterSpec(
        'input_qos.reliability', 'best_effort',
        'Reliability of the image and camera_info subscriptions (SensorData is best_effort).',
        read_only=True, choices=tuple(RELIABILITY),
    ),
    ParameterSpec(
        'input_qos.depth', 5, 'Queue depth of the image and camera_info subscriptions.',
        read_only=True, value_range=(1, MAX_QUEUE_DEPTH),
    ),
    ParameterSpec(
        'output_qos.reliability', 'reliable', 'Reliability of the output publishers.',
        read_only=True, choices=tuple(RELIABILITY),
    ),
    ParameterSpec(
        'output_qos.depth', 2, 'Queue depth of the output publishers.',
        read_only=True, value_range=(1, MAX_QUEUE_DEPTH),
    ),
    ParameterSpec(
        'diagnostics_period', 1.0, 'Seconds between /diagnostics messages.', read_only=True,
        value_range=(MIN_DIAGNOSTICS_PERIOD_S, MAX_DIAGNOSTICS_PERIOD_S),
    ),
    ParameterSpec(
        'max_rate_hz', 0.0, 'Cap on processed frames per second; 0 = as fast as the model runs.',
        value_range=(0.0, MAX_RATE_HZ),
    ),
    ParameterSpec(
        'depth_resolution', 'camera',
        "Resolution of depth, points and depth/camera_info: the camera's or the model input's.",
        choices=('camera', 'model'),
    ),
    ParameterSpec('publish.depth', True, 'Publish depth and depth/camera_info.'),
    ParameterSpec('publish.depth_colored', True, 'Publish depth/colored (only while subscribed).'),
    ParameterSpec('publish.points', True, 'Publish the points cloud.'),
    ParameterSpec('publish.features', True, 'Publish the features cloud (patch grid).'),
    ParameterSpec('publish.embedding', True, 'Publish the global embedding.'),
    ParameterSpec(
        'colored_max_depth', 0.0,
        'Depth in metres mapped to the end of the colour map; 0 = the artifact max_depth.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    ParameterSpec(
        'points.stride', 1, 'Keep every N-th pixel row and column in points.',
        value_range=(1, MAX_STRIDE),
    ),
    ParameterSpec(
        'points.min_range', 0.0, 'Drop points closer than this (metres); 0 = off.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    ParameterSpec(
        'points.max_range', 0.0, 'Drop points farther than this (metres); 0 = off.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    ParameterSpec(
        'points.voxel_size', 0.0, 'Average points per voxel of this size (metres); 0 = off. '
        'Makes the cloud dense.', value_range=(0.0, MAX_VOXEL_M),
    ),
    ParameterSpec(
        'points.dense', False, 'Drop invalid points (height 1) instead of an organized cloud.'
    ),
    ParameterSpec('points.rgb', True, 'Add the PCL-style packed rgb field to points.'),
    ParameterSpec(
        'points.confidence', True, 'Add a confidence field when the artifact provides one.'
    ),
    ParameterSpec(
        'features.dtype', 'float32',
        'Feature cloud values: float32 (field feature) or float16 (field feature_f16, UINT16).',
        choices=('float32', 'float16'),
    ),
)
_SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}


class Settings(Mapping[str, Any]):
    """An immutable snapshot of every parameter value, read by the worker once per frame."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replaced(self, changes: Mapping[str, Any]) -> Settings:
        """A new snapshot with `changes` applied."""
        return Settings({**self._values, **changes})


def declare_parameters(node: Node) -> Settings:
    """Declare every parameter on `node` and return the start-up values."""
    values: dict[str, Any] = {}
    for spec in PARAMETERS:
        parameter = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        values[spec.name] = parameter.value
    problems = validate_changes(
        [Parameter(name, value=value) for name, value in values.items()], check_read_only=False
    )
    if problems:
        raise NodeError(f'invalid start-up parameters: {problems}')
    return Settings(values)


def validate_changes(
    parameters: Iterable[Parameter],
    *,
    current: Mapping[str, Any] | None = None,
    check_read_only: bool = True,
) -> str:
    """'' if the values are acceptable, else the reason (rclpy itself checks ranges and types).

    Args:
        parameters: the requested values.
        current: the values in force, for checks across parameters (min vs max range).
        check_read_only: refuse read-only parameters (runtime changes).
    """
    parameters = list(parameters)
    reasons = []
    for parameter in parameters:
        spec = _SPECS.get(parameter.name)
        if spec is None:
            continue
        if check_read_only and spec.read_only:
            reasons.append(f'{parameter.name} is read-only; set it at start-up (params file)')
            continue
        if spec.choices and parameter.value not in spec.choices:
            reasons.append(
                f'{parameter.name}={parameter.value!r} is not one of {", ".join(spec.choices)}'
            )
    merged = {**(current or {}), **{p.name: p.value for p in parameters}}
    min_range = merged.get('points.min_range') or 0.0
    max_range = merged.get('points.max_range') or 0.0
    if min_range > 0 and max_range > 0 and min_range > max_range:
        reasons.append(
            f'points.min_range={min_range} is greater than points.max_range={max_range}, which '
            'would drop every point; lower min_range, raise max_range or set either to 0 (off)'
        )
    return '; '.join(reasons)


def on_set_result(
    parameters: list[Parameter], current: Mapping[str, Any] | None = None
) -> SetParametersResult:
    """SetParametersResult for a runtime change request against the `current` values."""
    reason = validate_changes(parameters, current=current)
    return SetParametersResult(successful=not reason, reason=reason)


def qos_from_settings(settings: Mapping[str, Any], prefix: str) -> QoSProfile:
    """Keep-last QoS from `<prefix>.reliability` and `<prefix>.depth`, volatile durability."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(settings[f'{prefix}.depth']),
        reliability=RELIABILITY[settings[f'{prefix}.reliability']],
        durability=DurabilityPolicy.VOLATILE,
    )
