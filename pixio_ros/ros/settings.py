"""The node's settings: a frozen typed object and the one table describing its ROS parameters.

Pure Python (no rclpy), so every rule is unit-testable without DDS. The dataclasses below hold the
parameters' types and defaults; `_DESCRIPTIONS` holds what `ros2 param describe` shows (text,
range, read-only). `PARAMETERS` joins the two: a nested field `points.stride` is the ROS parameter
`points.stride`, its `Literal` type gives the allowed strings; a `tuple[str, ...]` field is a ROS
string array (a list on the ROS side, a tuple in the frozen settings). Adding a parameter means
adding a field and its row here; a field without a row (or a row without a field) fails at import.

Settings are validated whenever a `NodeSettings` is built, so an invalid combination can never be
in force: a misspelt name is a mypy error in code and a `SettingsError` naming the closest
parameter when it comes from outside (params file, `ros2 param set`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pixio_ros.ros.errors import NodeError
from pixio_ros.runtime.alignment import AlignMode, AlignOptions
from pixio_ros.runtime.navigation import NavigationOptions
from pixio_ros.runtime.sparse_reference import extrinsic_problem

__all__ = [
    'PARAMETERS',
    'AlignMode',
    'DoubleArray',
    'Backend',
    'PARAMETER_NAMES',
    'DepthResolution',
    'FeatureDtype',
    'FeaturesSettings',
    'NodeSettings',
    'ParameterSpec',
    'ParameterValue',
    'PointsSettings',
    'Precision',
    'PublishSettings',
    'QosSettings',
    'Reliability',
    'SettingsError',
    'StringArray',
    'closest_parameter',
    'unknown_parameter_messages',
]

Reliability: TypeAlias = Literal['best_effort', 'reliable']
Precision: TypeAlias = Literal['fp32', 'fp16', 'bf16', 'int8']
# pixio_ros.runtime.backends.BACKEND_CHOICES, written out: this module must not import torch.
Backend: TypeAlias = Literal['auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt']
DepthResolution: TypeAlias = Literal['camera', 'model']
FeatureDtype: TypeAlias = Literal['float32', 'float16']
# A ROS string array as rclpy and params files give it; `NodeSettings` keeps it as a tuple.
StringArray: TypeAlias = list[str]
# A ROS double array (align.extrinsic); a tuple of floats in `NodeSettings`.
DoubleArray: TypeAlias = list[float]
ParameterValue: TypeAlias = bool | int | float | str | StringArray | DoubleArray

MAX_QUEUE_DEPTH = 100
MAX_STRIDE = 64
MAX_RANGE_M = 1000.0
MAX_VOXEL_M = 10.0
MAX_RATE_HZ = 1000.0
MAX_INPUT_MEGAPIXELS = 1000.0
MAX_WARMUP_RUNS = 100
MIN_DIAGNOSTICS_PERIOD_S = 0.1
MAX_DIAGNOSTICS_PERIOD_S = 60.0
MAX_BATCH_WINDOW_MS = 1000.0
MAX_CAMERAS = 16
MAX_ALIGN_POINTS = 1_000_000
MAX_GAP_MS = 10_000.0
MAX_RESET_FACTOR = 100.0
MAX_RESIDUAL = 10.0
MAX_GRADIENT = 100.0
MAX_CAMERA_HEIGHT_M = 100.0
MAX_PITCH_RAD = 1.5
MAX_OBSTACLE_HEIGHT_M = 100.0
MAX_SCAN_ROWS = 1000
# A camera name is a relative ROS namespace: tokens of letters, digits and _, joined by /.
CAMERA_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*')
# difflib ratio above which a declared name is offered as "did you mean".
SUGGESTION_CUTOFF = 0.6
PARAMETERS_HELP = 'the parameters are listed in config/pixio.yaml and the README'


class SettingsError(NodeError):
    """Parameter values the node cannot run with; the message names each value and the fix."""


@dataclass(frozen=True)
class QosSettings:
    """Keep-last QoS of a group of topics (volatile durability)."""

    reliability: Reliability
    depth: int


@dataclass(frozen=True)
class PublishSettings:
    """Which outputs are published (each is computed only while someone subscribes)."""

    depth: bool = True
    depth_colored: bool = True
    points: bool = True
    features: bool = True
    embedding: bool = True
    scan: bool = True
    obstacles: bool = True


@dataclass(frozen=True)
class PointsSettings:
    """How the points cloud is thinned and which fields it carries; 0 switches a filter off."""

    stride: int = 1
    min_range: float = 0.0
    max_range: float = 0.0
    voxel_size: float = 0.0
    dense: bool = False
    rgb: bool = True
    confidence: bool = True
    min_confidence: float = 0.0
    max_depth_gradient: float = 0.0


@dataclass(frozen=True)
class FeaturesSettings:
    """The value type of the features cloud."""

    dtype: FeatureDtype = 'float32'


@dataclass(frozen=True)
class NodeSettings:
    """Every parameter value in force; the worker threads read one snapshot per frame.

    Frozen so a live `ros2 param set` swaps in a new object instead of changing one a frame is
    using. Building one validates it (types, choices, ranges, min_range vs max_range) and raises
    `SettingsError`; nested groups are checked when their `NodeSettings` is built.
    """

    model_path: str = ''
    cameras: tuple[str, ...] = ()
    device: str = 'auto'
    precision: Precision = 'fp32'
    backend: Backend = 'auto'
    warmup_runs: int = 1
    compressed_input: bool = False
    max_input_megapixels: float = 50.0
    input_qos: QosSettings = QosSettings('best_effort', 5)
    output_qos: QosSettings = QosSettings('reliable', 2)
    diagnostics_period: float = 1.0
    max_rate_hz: float = 0.0
    batch_window_ms: float = 20.0
    depth_resolution: DepthResolution = 'camera'
    publish: PublishSettings = PublishSettings()
    colored_max_depth: float = 0.0
    points: PointsSettings = PointsSettings()
    features: FeaturesSettings = FeaturesSettings()
    # The runtime's own option groups: the parameters are their fields, one to one. In
    # settings navigation.range_max 0 stands for the head's range (frame.py resolves it).
    align: AlignOptions = AlignOptions()
    navigation: NavigationOptions = NavigationOptions(range_max=0.0)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SettingsError('; '.join(problems))

    @classmethod
    def from_parameters(cls, values: Mapping[str, ParameterValue]) -> NodeSettings:
        """Settings from dotted ROS parameter names; names not given keep their defaults.

        Raises:
            SettingsError: an unknown name (with the closest one), a value of the wrong type,
                not among the choices or out of range, or min_range beyond max_range.
        """
        return cls().replaced(values)

    def replaced(self, changes: Mapping[str, ParameterValue]) -> NodeSettings:
        """A copy with `changes` (dotted names) applied, validated as `from_parameters` does.

        Raises:
            SettingsError: as `from_parameters`; `self` stays in force.
        """
        problems = unknown_parameter_messages(
            changes, PARAMETER_NAMES, owner='pixio_node', consequence='refused'
        )
        values = self.as_parameters()
        for name, value in changes.items():
            if name in _SPECS:
                try:
                    values[name] = _SPECS[name].checked(value)
                except SettingsError as err:
                    problems.append(str(err))
        if problems:
            raise SettingsError('; '.join(problems))
        return typing.cast(NodeSettings, _build(type(self), values, ''))

    def as_parameters(self) -> dict[str, ParameterValue]:
        """Dotted ROS parameter names -> values, in declaration order."""
        values: dict[str, ParameterValue] = {}
        for spec in PARAMETERS:
            value = spec.value_in(self)
            if spec.kind is float:
                value = float(value)
            elif spec.kind is list:
                value = list(value)
            values[spec.name] = value
        return values


@dataclass(frozen=True)
class _Description:
    """The hand-written part of a parameter: what it does and how it may be set."""

    text: str
    read_only: bool = False
    value_range: tuple[float, float] | None = None


_DESCRIPTIONS: dict[str, _Description] = {
    'model_path': _Description(
        'Pixio artifact (.ts, .pt2 or .onnx) made by `pixio-ros export`.', read_only=True
    ),
    'cameras': _Description(
        'Camera names for one node serving several cameras in one batched forward: camera '
        '<name> is read from <name>/image (or <name>/image/compressed) and <name>/camera_info '
        'and its outputs go under <name>/. Empty = one camera on image and camera_info. Up to '
        f'{MAX_CAMERAS} names (letters, digits, _, nested with /).',
        read_only=True,
    ),
    'device': _Description(
        "Device: 'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'; backend openvino also "
        "takes OpenVINO's 'GPU' and 'NPU'.",
        read_only=True,
    ),
    'precision': _Description(
        'Precision the backend computes in: fp32; bf16 on CPUs with native bf16 (AVX-512 BF16, '
        'AMX), about 2x fp32 there; fp16 on NVIDIA GPUs; int8 for an INT8 artifact of '
        '`pixio-ros quantize` (and only for one; never chosen by auto) on openvino, onnxruntime '
        '(CPU) or tensorrt. Beyond tolerance of its reference at start-up it is refused.',
        read_only=True,
    ),
    'backend': _Description(
        "Runtime of the forward pass: 'auto' is the fastest installed one that reads the "
        'artifact on the device (TensorRT on NVIDIA, OpenVINO on CPUs for an .onnx; torch for '
        "a .ts or .pt2), else 'torch', 'onnxruntime', 'openvino' or 'tensorrt'.",
        read_only=True,
    ),
    'warmup_runs': _Description(
        'Forward passes at start-up so the first frame is not slow.',
        read_only=True,
        value_range=(0, MAX_WARMUP_RUNS),
    ),
    'compressed_input': _Description(
        'Subscribe to image/compressed (JPEG/PNG) instead of image (raw).', read_only=True
    ),
    'max_input_megapixels': _Description(
        'Largest compressed image decoded, in megapixels: a larger size in the JPEG/PNG header '
        'is refused (counted as decode) before any memory is allocated.',
        read_only=True,
        value_range=(0.01, MAX_INPUT_MEGAPIXELS),
    ),
    'input_qos.reliability': _Description(
        'Reliability of the image and camera_info subscriptions (SensorData is best_effort).',
        read_only=True,
    ),
    'input_qos.depth': _Description(
        'Queue depth of the image and camera_info subscriptions.',
        read_only=True,
        value_range=(1, MAX_QUEUE_DEPTH),
    ),
    'output_qos.reliability': _Description('Reliability of the output publishers.', read_only=True),
    'output_qos.depth': _Description(
        'Queue depth of the output publishers.', read_only=True, value_range=(1, MAX_QUEUE_DEPTH)
    ),
    'diagnostics_period': _Description(
        'Seconds between /diagnostics messages.',
        read_only=True,
        value_range=(MIN_DIAGNOSTICS_PERIOD_S, MAX_DIAGNOSTICS_PERIOD_S),
    ),
    'max_rate_hz': _Description(
        'Cap on processed frames per second; 0 = as fast as the model runs.',
        value_range=(0.0, MAX_RATE_HZ),
    ),
    'batch_window_ms': _Description(
        'With several cameras: once one camera has a frame, wait at most this long for a frame '
        'of every other camera, so they run as one batch; 0 = take what is there.',
        value_range=(0.0, MAX_BATCH_WINDOW_MS),
    ),
    'depth_resolution': _Description(
        "Resolution of depth, points and depth/camera_info: the camera's or the model input's."
    ),
    'publish.depth': _Description('Publish depth and depth/camera_info.'),
    'publish.depth_colored': _Description('Publish depth/colored (only while subscribed).'),
    'publish.points': _Description('Publish the points cloud.'),
    'publish.features': _Description('Publish the features cloud (patch grid).'),
    'publish.embedding': _Description('Publish the global embedding.'),
    'colored_max_depth': _Description(
        'Depth in metres mapped to the end of the colour map; 0 = the artifact max_depth.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    'points.stride': _Description(
        'Keep every N-th pixel row and column in points.', value_range=(1, MAX_STRIDE)
    ),
    'points.min_range': _Description(
        'Drop points closer than this (metres); 0 = off.', value_range=(0.0, MAX_RANGE_M)
    ),
    'points.max_range': _Description(
        'Drop points farther than this (metres); 0 = off; not below points.min_range (refused '
        'at start-up and live).',
        value_range=(0.0, MAX_RANGE_M),
    ),
    'points.voxel_size': _Description(
        'Average points per voxel of this size (metres); 0 = off. Makes the cloud dense.',
        value_range=(0.0, MAX_VOXEL_M),
    ),
    'points.dense': _Description('Drop invalid points (height 1) instead of an organized cloud.'),
    'points.rgb': _Description('Add the PCL-style packed rgb field to points.'),
    'points.confidence': _Description('Add a confidence field when the artifact provides one.'),
    'features.dtype': _Description(
        'Feature cloud values: float32 (field feature) or float16 (field feature_f16, UINT16).'
    ),
    'publish.scan': _Description('Publish scan, a LaserScan of the rows at the horizon.'),
    'publish.obstacles': _Description(
        'Publish points/obstacles, the points in the obstacle height band.'
    ),
    'points.min_confidence': _Description(
        'Drop points whose point-map head confidence is below this; 0 = off.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    'points.max_depth_gradient': _Description(
        'Drop flying pixels: points whose depth leaves both neighbours of a row or column by '
        'more than this share of their depth (e.g. 0.05); 0 = off. Also applies to scan and '
        'points/obstacles.',
        value_range=(0.0, MAX_GRADIENT),
    ),
    'align.mode': _Description(
        'Scale alignment to sparse_depth / sparse_points: off, scale (robust median ratio) or '
        'scale_shift (inverse-depth least squares with outlier rejection).'
    ),
    'align.min_points': _Description(
        'Fewest valid depth/reference pairs a fit needs; fewer keeps the last good scale.',
        value_range=(1, MAX_ALIGN_POINTS),
    ),
    'align.max_gap_ms': _Description(
        'Largest stamp difference between a frame and its reference, ms.',
        value_range=(0.0, MAX_GAP_MS),
    ),
    'align.smoothing': _Description(
        'Weight of the previous scale in the exponential average (0 = each frame its own).',
        value_range=(0.0, 0.99),
    ),
    'align.reset_factor': _Description(
        'A fit off the smoothed scale by more than this factor replaces it at once.',
        value_range=(1.0, MAX_RESET_FACTOR),
    ),
    'align.max_residual': _Description(
        'Largest AbsRel of the aligned depth on the pairs; a worse fit keeps the last good scale.',
        value_range=(0.0, MAX_RESIDUAL),
    ),
    'align.extrinsic': _Description(
        'Pose [x, y, z, qx, qy, qz, qw] of the sparse_points frame in the camera optical frame; '
        '[] = the cloud is in the optical frame.'
    ),
    'navigation.camera_height': _Description(
        'Optical centre above the floor, metres (obstacle heights).',
        value_range=(0.0, MAX_CAMERA_HEIGHT_M),
    ),
    'navigation.camera_pitch': _Description(
        'Downward tilt of the optical axis, radians (0 = level).',
        value_range=(-MAX_PITCH_RAD, MAX_PITCH_RAD),
    ),
    'navigation.min_obstacle_height': _Description(
        'Lowest obstacle point above the floor, metres.',
        value_range=(-MAX_OBSTACLE_HEIGHT_M, MAX_OBSTACLE_HEIGHT_M),
    ),
    'navigation.max_obstacle_height': _Description(
        'Highest obstacle point above the floor, metres.',
        value_range=(-MAX_OBSTACLE_HEIGHT_M, MAX_OBSTACLE_HEIGHT_M),
    ),
    'navigation.obstacle_stride': _Description(
        'Keep every N-th pixel row and column in points/obstacles.', value_range=(1, MAX_STRIDE)
    ),
    'navigation.scan_rows': _Description(
        'Rows of the scan band, centred on the horizon row; each bearing keeps its nearest range.',
        value_range=(1, MAX_SCAN_ROWS),
    ),
    'navigation.range_min': _Description(
        'Nearest range of scan and points/obstacles, metres.', value_range=(0.0, MAX_RANGE_M)
    ),
    'navigation.range_max': _Description(
        'Farthest range of scan and points/obstacles, metres; 0 = the artifact max_depth.',
        value_range=(0.0, MAX_RANGE_M),
    ),
    'navigation.scan_frame_id': _Description(
        "Frame of scan; '' = the image frame with _optical_frame replaced by _frame."
    ),
}

_KIND_NAMES: dict[type, str] = {
    bool: 'a bool',
    int: 'an integer',
    float: 'a double',
    str: 'a string',
    list: 'a string array',
    tuple: 'a string array',
}


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: a leaf field of `NodeSettings` joined with its description row.

    Attributes:
        name: dotted parameter name (`points.stride`).
        path: attribute path in `NodeSettings` (`('points', 'stride')`).
        kind: the value type, bool, int, float, str or list (an array of `item_kind`; ROS
            distinguishes integer and double).
        default: the dataclass default (a string array as a list, as ROS gives it).
        description: what it does, shown by `ros2 param describe`.
        read_only: fixed after start-up.
        value_range: inclusive (low, high) for numbers.
        choices: allowed strings, from the field's `Literal` type; empty for free strings.
        item_kind: the item type of an array, str (string array) or float (double array).
    """

    name: str
    path: tuple[str, ...]
    kind: type
    default: ParameterValue
    description: str
    read_only: bool = False
    value_range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    item_kind: type = str

    @property
    def array_name(self) -> str:
        """'a string array' or 'a double array'."""
        return 'a double array' if self.item_kind is float else 'a string array'

    def checked(self, value: object) -> ParameterValue:
        """`value` if this parameter accepts it (an int becomes a float for a double).

        Raises:
            SettingsError: naming the parameter, the value and what is allowed.
        """
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is list and isinstance(value, (list, tuple)):
            items = list(value)
            if self.item_kind is float:  # an integer item is a double, as for a scalar
                items = [
                    float(i) if isinstance(i, int) and not isinstance(i, bool) else i for i in items
                ]
            if all(type(item) is self.item_kind for item in items):
                return typing.cast(ParameterValue, items)
            value = next(item for item in items if type(item) is not self.item_kind)
            raise SettingsError(
                f'{self.name} has the item {value!r}, '
                f'{_KIND_NAMES.get(type(value), type(value).__name__)}; expected '
                f'{self.array_name}; {self._write_hint()}'
            )
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            expected = self.array_name if self.kind is list else _KIND_NAMES[self.kind]
            raise SettingsError(
                f'{self.name}={value!r} is {_KIND_NAMES.get(type(value), type(value).__name__)}, '
                f'expected {expected} (default {self.default!r}); '
                f'{self._write_hint()}'
            )
        if self.choices and value not in self.choices:
            raise SettingsError(
                f'{self.name}={value!r} is not one of {", ".join(self.choices)}; '
                f'set {self.name} to one of them'
            )
        if self.value_range is not None and isinstance(value, (int, float)):
            low, high = self.value_range
            if not low <= value <= high:
                raise SettingsError(
                    f'{self.name}={value!r} is outside {_number(low)}..{_number(high)}; '
                    'set a value in that range'
                )
        return typing.cast(ParameterValue, value)

    def value_in(self, settings: NodeSettings) -> Any:
        """This parameter's value in `settings` (following the nested groups)."""
        target: Any = settings
        for attribute in self.path:
            target = getattr(target, attribute)
        return target

    def _write_hint(self) -> str:
        if self.kind is float:
            return 'write a decimal point for a double (10.0, not 10)'
        if self.kind is str:
            return 'quote it in a params file if YAML reads it as another type'
        if self.kind is bool:
            return 'write true or false'
        if self.kind is list and self.item_kind is float:
            return 'write a YAML list of numbers, e.g. [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]'
        if self.kind is list:
            return "write a YAML list of names, e.g. [front, left], or -p 'cameras:=[front, left]'"

        return 'write a whole number'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _leaves(
    cls: type, defaults: Mapping[str, object], prefix: str = ''
) -> Iterator[tuple[str, object, object]]:
    """(dotted name, type hint, default) of every leaf field under dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        default = defaults[field.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            nested = {name.name: getattr(default, name.name) for name in dataclasses.fields(hint)}
            yield from _leaves(hint, nested, f'{prefix}{field.name}.')
        else:
            yield f'{prefix}{field.name}', hint, default


def _specs() -> tuple[ParameterSpec, ...]:
    """Join the dataclass fields with `_DESCRIPTIONS`; a field or row without partner raises."""
    # Read the class defaults, not NodeSettings(): building one validates against PARAMETERS.
    defaults = {field.name: field.default for field in dataclasses.fields(NodeSettings)}
    specs = []
    for name, hint, default in _leaves(NodeSettings, defaults):
        if name not in _DESCRIPTIONS:
            raise TypeError(f'NodeSettings field {name} has no row in _DESCRIPTIONS; add one')
        item_kind: type = str
        if typing.get_origin(hint) is Literal:
            kind: type = str
            choices = tuple(str(choice) for choice in typing.get_args(hint))
        elif hint in (bool, int, float, str):
            kind, choices = typing.cast(type, hint), ()
        elif typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, Ellipsis):
            kind, choices = list, ()
            default = list(typing.cast(tuple[str, ...], default))
        elif typing.get_origin(hint) is tuple and typing.get_args(hint) == (float, Ellipsis):
            kind, choices, item_kind = list, (), float
            default = list(typing.cast(tuple[float, ...], default))
        else:
            raise TypeError(
                f'NodeSettings field {name} has type {hint}; use bool/int/float/str or '
                'tuple[str, ...] / tuple[float, ...]'
            )
        row = _DESCRIPTIONS[name]
        specs.append(
            ParameterSpec(
                name=name,
                path=tuple(name.split('.')),
                kind=kind,
                default=typing.cast(ParameterValue, default),
                description=row.text,
                read_only=row.read_only,
                value_range=row.value_range,
                choices=choices,
                item_kind=item_kind,
            )
        )
    extra = set(_DESCRIPTIONS) - {spec.name for spec in specs}
    if extra:
        raise TypeError(f'_DESCRIPTIONS rows without a NodeSettings field: {sorted(extra)}')
    return tuple(specs)


PARAMETERS: tuple[ParameterSpec, ...] = _specs()
PARAMETER_NAMES: tuple[str, ...] = tuple(spec.name for spec in PARAMETERS)
_SPECS: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}


def _problems(settings: NodeSettings) -> list[str]:
    """Every reason `settings` cannot be used (empty when it can)."""
    problems = []
    for spec in PARAMETERS:
        try:
            spec.checked(spec.value_in(settings))
        except SettingsError as err:
            problems.append(str(err))
        except AttributeError:
            problems.append(f'{spec.name} is missing: {spec.path[0]} is not a settings group')
    problems.extend(_camera_problems(settings.cameras))
    points = settings.points
    if isinstance(points, PointsSettings):
        min_range, max_range = points.min_range, points.max_range
        if min_range > 0 and max_range > 0 and min_range > max_range:
            problems.append(
                f'points.min_range={min_range} is greater than points.max_range={max_range}, '
                'which would drop every point; lower min_range, raise max_range or set either '
                'to 0 (off)'
            )
    align = settings.align
    if isinstance(align, AlignOptions) and isinstance(align.extrinsic, tuple):
        extrinsic = extrinsic_problem(align.extrinsic)
        if extrinsic is not None:
            problems.append(extrinsic)
    navigation = settings.navigation
    if isinstance(navigation, NavigationOptions):
        low, high = navigation.min_obstacle_height, navigation.max_obstacle_height
        if low > high:
            problems.append(
                f'navigation.min_obstacle_height={low} is above navigation.max_obstacle_height='
                f'{high}, which would leave no obstacle; lower the minimum or raise the maximum'
            )
    return problems


def _camera_problems(cameras: object) -> list[str]:
    """Why the `cameras` names cannot be used as namespaces (empty when they can)."""
    if not isinstance(cameras, (list, tuple)) or not all(isinstance(c, str) for c in cameras):
        return []  # the type check has reported it
    problems = [
        f'cameras has {name!r}, not a relative ROS namespace; use letters, digits and _ '
        '(starting with a letter), nested with / (e.g. front or arm/wrist)'
        for name in cameras
        if not CAMERA_NAME.fullmatch(name)
    ]
    repeated = sorted({name for name in cameras if cameras.count(name) > 1})
    if repeated:
        problems.append(
            f'cameras lists {", ".join(repeated)} more than once; give every camera its own name'
        )
    if len(cameras) > MAX_CAMERAS:
        problems.append(
            f'cameras lists {len(cameras)} cameras, more than {MAX_CAMERAS}; run a second node '
            'for the others'
        )
    return problems


def _build(cls: type[Any], values: Mapping[str, ParameterValue], prefix: str) -> Any:
    """An instance of dataclass `cls` from dotted `values` (the nested groups built first)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[field.name] = _build(hint, values, f'{prefix}{field.name}.')
        else:
            value = values[f'{prefix}{field.name}']
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def closest_parameter(name: str, known: Iterable[str] = PARAMETER_NAMES) -> str | None:
    """The declared name `name` most likely misspells, or None when none is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=SUGGESTION_CUTOFF)
    return matches[0] if matches else None


def unknown_parameter_messages(
    names: Iterable[str], known: Iterable[str], *, owner: str, consequence: str
) -> list[str]:
    """One line per name in `names` that is not in `known`, with the closest known name.

    A misspelt parameter in a params file is otherwise ignored without a word and the node runs
    on the default; these lines tell the user which name to fix and what it should be.

    Args:
        names: the names that were set (params file, -p, a change request).
        known: the names that exist.
        owner: who the names were set for, as the user knows it (`/pixio`, `pixio_node`).
        consequence: what happens to such a name (`ignored`, `refused`).
    """
    known = list(known)
    lines = []
    for name in sorted(set(names) - set(known)):
        suggestion = closest_parameter(name, known)
        hint = f'did you mean {suggestion}?' if suggestion else PARAMETERS_HELP
        lines.append(f'{name} is not a parameter of {owner} ({consequence}); {hint}')
    return lines
