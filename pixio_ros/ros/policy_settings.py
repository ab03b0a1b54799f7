"""The policy node's settings: a frozen typed object and its ROS parameters (pure, no rclpy).

Built on the node's `ParameterSpec` (types, ranges, choices and their error messages are the
same as pixio_node's); `pixio_ros.ros.params.descriptor` turns each into the rclpy descriptor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Final, Literal, TypeAlias

from pixio_ros.ros.settings import (
    MAX_DIAGNOSTICS_PERIOD_S,
    MIN_DIAGNOSTICS_PERIOD_S,
    ParameterSpec,
    ParameterValue,
    Reliability,
    SettingsError,
    unknown_parameter_messages,
)

__all__ = ['OUTPUT_TYPES', 'POLICY_PARAMETERS', 'OutputType', 'PolicySettings']

OutputType: TypeAlias = Literal['twist', 'twist_stamped', 'float32_array']
OUTPUT_TYPES: Final[dict[str, str]] = {
    'twist': 'geometry_msgs/msg/Twist',
    'twist_stamped': 'geometry_msgs/msg/TwistStamped',
    'float32_array': 'std_msgs/msg/Float32MultiArray',
}
MAX_FEATURE_AGE_MS: Final = 60_000.0
MAX_QUEUE_DEPTH: Final = 100
POLICY_NODE: Final = 'pixio_policy_node'


@dataclass(frozen=True)
class PolicySettings:
    """Every policy-node parameter in force (frozen: a live change swaps in a new object)."""

    policy_path: str = ''
    device: str = 'cpu'
    output_type: OutputType = 'twist'
    max_feature_age_ms: float = 200.0
    diagnostics_period: float = 1.0
    input_reliability: Reliability = 'best_effort'
    input_depth: int = 2

    @classmethod
    def from_parameters(cls, values: Mapping[str, ParameterValue]) -> PolicySettings:
        """Settings from ROS parameter values; names not given keep their defaults.

        Raises:
            SettingsError: an unknown name, a wrong type, a value out of range or not a choice.
        """
        return cls().replaced(values)

    def replaced(self, changes: Mapping[str, ParameterValue]) -> PolicySettings:
        """A copy with `changes` applied and checked (SettingsError; `self` stays valid)."""
        problems = unknown_parameter_messages(
            changes, _SPECS, owner=POLICY_NODE, consequence='refused'
        )
        checked: dict[str, ParameterValue] = {}
        for name, value in changes.items():
            if name in _SPECS:
                try:
                    checked[name] = _SPECS[name].checked(value)
                except SettingsError as err:
                    problems.append(str(err))
        if problems:
            raise SettingsError('; '.join(problems))
        return replace(self, **checked)  # type: ignore[arg-type]


_DESCRIPTIONS: Final[dict[str, tuple[str, bool, tuple[float, float] | None]]] = {
    'policy_path': (
        'Policy checkpoint: RUN/best.safetensors of `pixio-ros train-policy`.',
        True,
        None,
    ),
    'device': ("Device of the policy head: 'cpu', 'cuda' or 'cuda:N'.", True, None),
    'output_type': (
        'Message type of `action`: twist (geometry_msgs/Twist, for cmd_vel; its actions must be '
        'Twist fields such as cmd_vel:angular.z), twist_stamped (geometry_msgs/TwistStamped with '
        "the features' header) or float32_array (std_msgs/Float32MultiArray, any actions, in the "
        'order the policy was trained with). Twist and Float32MultiArray have no header: the '
        "features' header goes out on action/header (std_msgs/Header) just before each action.",
        True,
        None,
    ),
    'max_feature_age_ms': (
        "Never act on features older than this (now - the features' header stamp, node clock, "
        'sim time with use_sim_time): such a frame publishes nothing and is counted as stale.',
        False,
        (0.0, MAX_FEATURE_AGE_MS),
    ),
    'diagnostics_period': (
        'Seconds between /diagnostics messages.',
        True,
        (MIN_DIAGNOSTICS_PERIOD_S, MAX_DIAGNOSTICS_PERIOD_S),
    ),
    'input_reliability': (
        'Reliability of the features and embedding subscriptions (best_effort matches any '
        'publisher).',
        True,
        None,
    ),
    'input_depth': (
        'Queue depth of the features and embedding subscriptions.',
        True,
        (1, MAX_QUEUE_DEPTH),
    ),
}


def _specs() -> tuple[ParameterSpec, ...]:
    import typing

    hints = typing.get_type_hints(PolicySettings)
    defaults = PolicySettings()
    specs = []
    for field in fields(PolicySettings):
        text, read_only, value_range = _DESCRIPTIONS[field.name]
        hint = hints[field.name]
        literal = typing.get_origin(hint) is Literal
        specs.append(
            ParameterSpec(
                name=field.name,
                path=(field.name,),
                kind=str if literal else hint,
                default=getattr(defaults, field.name),
                description=text,
                read_only=read_only,
                value_range=value_range,
                choices=tuple(typing.get_args(hint)) if literal else (),
            )
        )
    return tuple(specs)


POLICY_PARAMETERS: Final = _specs()
_SPECS: Final = {spec.name: spec for spec in POLICY_PARAMETERS}


TWIST_FIELDS: Final = (
    'linear.x',
    'linear.y',
    'linear.z',
    'angular.x',
    'angular.y',
    'angular.z',
)


def twist_components(actions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(vector, axis) of the Twist field each action fills: `cmd_vel:angular.z` -> angular, z.

    An action's field is the part of its column after the topic (`pixio_ros.data.feature_schema`
    `signal_column`); Twist fields the policy does not predict stay 0.

    Raises:
        SettingsError: an action that is no Twist field, or a field given twice (use
            output_type float32_array for such policies).
    """
    fields_of = [name.rpartition(':')[2] for name in actions]
    wrong = [field for field in fields_of if field not in TWIST_FIELDS]
    repeated = sorted({field for field in fields_of if fields_of.count(field) > 1})
    if wrong or repeated:
        raise SettingsError(
            f'output_type twist needs one action per Twist field ({", ".join(TWIST_FIELDS)}); '
            f'the policy predicts {", ".join(actions)}; set output_type to float32_array'
        )
    return tuple(
        (vector, axis) for vector, _, axis in (field.partition('.') for field in fields_of)
    )
