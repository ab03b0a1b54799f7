"""NodeSettings: the frozen typed settings and their parameter table (pure, no rclpy, no DDS)."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest
import yaml
from ros_test_helpers import RANGE_CHANGES, READ_ONLY_PARAMETERS

from pixio_ros.errors import PixioRosError
from pixio_ros.ros.settings import (
    PARAMETER_NAMES,
    PARAMETERS,
    NodeSettings,
    PointsSettings,
    QosSettings,
    SettingsError,
    closest_parameter,
    unknown_parameter_messages,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = {spec.name: spec for spec in PARAMETERS}
# A value different from the default for every parameter, valid on its own and together.
OTHER_VALUES: dict[str, bool | int | float | str | list[str] | list[float]] = {
    'model_path': '/models/vitb16.ts',
    'cameras': ['front', 'arm/wrist'],
    'device': 'cuda:1',
    'precision': 'bf16',
    'backend': 'openvino',
    'warmup_runs': 3,
    'compressed_input': True,
    'max_input_megapixels': 12.5,
    'input_qos.reliability': 'reliable',
    'input_qos.depth': 7,
    'output_qos.reliability': 'best_effort',
    'output_qos.depth': 9,
    'diagnostics_period': 2.5,
    'max_rate_hz': 15.0,
    'batch_window_ms': 50.0,
    'depth_resolution': 'model',
    'publish.depth': False,
    'publish.depth_colored': False,
    'publish.points': False,
    'publish.features': False,
    'publish.embedding': False,
    'colored_max_depth': 8.0,
    'points.stride': 4,
    'points.min_range': 0.5,
    'points.max_range': 6.0,
    'points.voxel_size': 0.05,
    'points.dense': True,
    'points.rgb': False,
    'points.confidence': False,
    'features.dtype': 'float16',
    'publish.scan': False,
    'publish.obstacles': False,
    'points.min_confidence': 0.3,
    'points.max_depth_gradient': 0.05,
    'align.mode': 'scale_shift',
    'align.min_points': 200,
    'align.max_gap_ms': 40.0,
    'align.smoothing': 0.5,
    'align.reset_factor': 2.0,
    'align.max_residual': 0.1,
    'align.extrinsic': [0.1, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0],
    'navigation.camera_height': 0.3,
    'navigation.camera_pitch': 0.2,
    'navigation.min_obstacle_height': 0.1,
    'navigation.max_obstacle_height': 1.5,
    'navigation.obstacle_stride': 2,
    'navigation.scan_rows': 9,
    'navigation.range_min': 0.3,
    'navigation.range_max': 8.0,
    'navigation.scan_frame_id': 'base_scan',
}


def dataclass_leaves(cls: type, prefix: str = '') -> list[str]:
    """Dotted names of every leaf field, walked here independently of settings.py."""
    names = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            names += dataclass_leaves(hint, f'{prefix}{field.name}.')
        else:
            names.append(f'{prefix}{field.name}')
    return names


def flatten(tree: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def test_defaults_equal_the_shipped_params_file_value_and_type():
    config = yaml.safe_load((REPO / 'config' / 'pixio.yaml').read_text())
    shipped = flatten(config['/**']['ros__parameters'])
    defaults = NodeSettings().as_parameters()
    # Types too: ROS refuses 1 for a double parameter, so 1.0 in the file must be a float here.
    assert {k: (type(v), v) for k, v in defaults.items()} == {
        k: (type(v), v) for k, v in shipped.items()
    }


def test_every_dataclass_field_has_exactly_one_parameter_and_vice_versa():
    leaves = dataclass_leaves(NodeSettings)
    assert len(PARAMETER_NAMES) == len(set(PARAMETER_NAMES))
    assert leaves == list(PARAMETER_NAMES)
    assert list(NodeSettings().as_parameters()) == leaves


@pytest.mark.parametrize('name', PARAMETER_NAMES)
def test_each_dotted_name_sets_its_own_field_and_nothing_else(name):
    settings = NodeSettings().replaced({name: OTHER_VALUES[name]})
    target: typing.Any = settings
    for attribute in name.split('.'):
        target = getattr(target, attribute)
    expected = OTHER_VALUES[name]  # a string array is a tuple in the frozen settings
    assert target == (tuple(expected) if isinstance(expected, list) else expected)
    changed = {
        key
        for key, value in settings.as_parameters().items()
        if value != NodeSettings().as_parameters()[key]
    }
    assert changed == {name}


def test_other_values_cover_every_parameter():
    assert set(OTHER_VALUES) == set(PARAMETER_NAMES)


def test_table_describes_every_parameter():
    for spec in PARAMETERS:
        assert spec.description.endswith('.'), spec.name
        assert spec.read_only == (spec.name in READ_ONLY_PARAMETERS), spec.name
        assert isinstance(spec.default, spec.kind), spec.name
        if spec.value_range is not None:
            low, high = spec.value_range
            assert low <= spec.default <= high, spec.name


@pytest.mark.parametrize(
    ('name', 'choices'),
    [
        ('precision', ('fp32', 'fp16', 'bf16', 'int8')),
        ('backend', ('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt')),
        ('input_qos.reliability', ('best_effort', 'reliable')),
        ('output_qos.reliability', ('best_effort', 'reliable')),
        ('depth_resolution', ('camera', 'model')),
        ('features.dtype', ('float32', 'float16')),
        ('device', ()),
        ('model_path', ()),
    ],
)
def test_choices_come_from_the_literal_types(name, choices):
    assert SPECS[name].choices == choices


def test_defaults_are_the_documented_shape():
    settings = NodeSettings()
    assert settings.input_qos == QosSettings('best_effort', 5)
    assert settings.output_qos == QosSettings('reliable', 2)
    assert settings.points == PointsSettings()
    assert settings.points.rgb is True and settings.points.dense is False
    assert settings.features.dtype == 'float32'


def test_from_parameters_round_trips_through_as_parameters():
    settings = NodeSettings.from_parameters(OTHER_VALUES)
    assert settings.as_parameters() == OTHER_VALUES
    assert NodeSettings.from_parameters(settings.as_parameters()) == settings
    assert settings != NodeSettings()


def test_names_not_given_keep_their_defaults():
    settings = NodeSettings.from_parameters({'input_qos.depth': 3})
    assert settings.input_qos == QosSettings('best_effort', 3)
    assert settings.replaced({}) == settings


def test_an_integer_for_a_double_becomes_a_float():
    settings = NodeSettings.from_parameters({'max_rate_hz': 5, 'points.max_range': 3})
    assert settings.max_rate_hz == 5.0 and isinstance(settings.max_rate_hz, float)
    assert isinstance(settings.as_parameters()['points.max_range'], float)


RANGE_REASON = (
    'points.min_range=5.0 is greater than points.max_range=2.0, which would drop every point; '
    'lower min_range, raise max_range or set either to 0 (off)'
)


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        (
            {'points.strid': 4},
            re.escape(
                'points.strid is not a parameter of pixio_node (refused); '
                'did you mean points.stride?'
            ),
        ),
        ({'max_rate_hx': 5.0}, 'did you mean max_rate_hz?'),
        ({'zzzzzz': 1}, 'zzzzzz is not a parameter .*config/pixio.yaml'),
        (
            {'precision': 'int4'},
            "precision='int4' is not one of fp32, fp16, bf16, int8; set precision",
        ),
        ({'features.dtype': 'float64'}, "features.dtype='float64' is not one of float32, float16"),
        ({'input_qos.reliability': 'sometimes'}, 'not one of best_effort, reliable'),
        ({'points.stride': 0}, r'points.stride=0 is outside 1..64; set a value in that range'),
        ({'points.stride': 65}, r'points.stride=65 is outside 1..64'),
        ({'diagnostics_period': 0.05}, r'diagnostics_period=0.05 is outside 0.1..60'),
        ({'max_rate_hz': -1.0}, r'max_rate_hz=-1.0 is outside 0..1000'),
        ({'max_rate_hz': math.nan}, r'max_rate_hz=nan is outside'),
        ({'points.voxel_size': math.inf}, r'points.voxel_size=inf is outside 0..10'),
        ({'points.stride': '4'}, "points.stride='4' is a string, expected an integer"),
        ({'points.stride': 4.0}, 'points.stride=4.0 is a double, expected an integer'),
        ({'warmup_runs': True}, 'warmup_runs=True is a bool, expected an integer'),
        ({'max_rate_hz': '5'}, "max_rate_hz='5' is a string, expected a double.*10.0, not 10"),
        ({'points.dense': 1}, 'points.dense=1 is an integer, expected a bool'),
        ({'device': 0}, 'device=0 is an integer, expected a string'),
        ({'points.min_range': 5.0, 'points.max_range': 2.0}, re.escape(RANGE_REASON)),
    ],
)
def test_from_parameters_refuses_with_name_value_and_fix(values, message):
    with pytest.raises(SettingsError, match=message):
        NodeSettings.from_parameters(values)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        NodeSettings.from_parameters({'points.stride': 0, 'precision': 'int4', 'max_rate_hx': 1.0})
    text = str(caught.value)
    assert 'points.stride=0' in text and "precision='int4'" in text and 'max_rate_hx' in text
    assert '\n' not in text


def test_settings_error_is_a_package_error():
    assert issubclass(SettingsError, PixioRosError)


@pytest.mark.parametrize(
    ('current', 'changes', 'refused'),
    RANGE_CHANGES,
)
def test_replaced_checks_ranges_against_the_current_values(current, changes, refused):
    settings = NodeSettings.from_parameters(current)
    if refused:
        with pytest.raises(SettingsError, match=r'points.min_range=\S+ is greater than'):
            settings.replaced(changes)
    else:
        assert settings.replaced(changes).as_parameters() == {
            **settings.as_parameters(),
            **changes,
        }


def test_replaced_leaves_the_original_in_force():
    settings = NodeSettings.from_parameters({'points.stride': 2})
    with pytest.raises(SettingsError):
        settings.replaced({'points.stride': 0})
    updated = settings.replaced({'points.stride': 8, 'publish.points': False})
    assert settings.points.stride == 2 and settings.publish.points is True
    assert updated.points.stride == 8 and updated.publish.points is False


def test_settings_are_frozen_all_the_way_down():
    settings = NodeSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_rate_hz = 5.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.points.stride = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.input_qos.depth = 1  # type: ignore[misc]
    hash(settings)  # usable as a dict key or in a set, as frozen values are


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'precision': 'int4'}, "precision='int4' is not one of"),
        ({'points': PointsSettings(stride=0)}, 'points.stride=0 is outside'),
        ({'points': PointsSettings(min_range=3.0, max_range=1.0)}, 'points.min_range=3.0'),
        ({'input_qos': QosSettings('sometimes', 5)}, "input_qos.reliability='sometimes'"),
    ],
)
def test_building_invalid_settings_directly_is_refused(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        NodeSettings(**kwargs)


@pytest.mark.parametrize(
    ('name', 'expected'),
    [
        ('points.strid', 'points.stride'),
        ('max_rate_hx', 'max_rate_hz'),
        ('publish.depht', 'publish.depth'),
        ('point.stride', 'points.stride'),
        ('modelpath', 'model_path'),
        ('completely_unrelated_name', None),
    ],
)
def test_closest_parameter(name, expected):
    assert closest_parameter(name) == expected


def test_unknown_parameter_messages_name_only_the_unknown_ones():
    lines = unknown_parameter_messages(
        ['points.stride', 'points.strid', 'max_rate_hx', 'use_sim_time'],
        [*PARAMETER_NAMES, 'use_sim_time'],
        owner='/ns/pixio',
        consequence='its value is ignored',
    )
    assert lines == [
        'max_rate_hx is not a parameter of /ns/pixio (its value is ignored); '
        'did you mean max_rate_hz?',
        'points.strid is not a parameter of /ns/pixio (its value is ignored); '
        'did you mean points.stride?',
    ]


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (['a', 'b'], "align.extrinsic has the item 'a', a string; expected a double array"),
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0], 'quaternion has norm 2.0000'),
        ([1.0, 2.0], 'has 2 values'),
    ],
)
def test_extrinsic_is_a_pose_or_refused(value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        NodeSettings().replaced({'align.extrinsic': value})


def test_extrinsic_takes_integers_as_doubles():
    settings = NodeSettings().replaced({'align.extrinsic': [0, 0, 0, 0, 0, 0, 1]})
    assert settings.align.extrinsic == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    assert all(type(value) is float for value in settings.align.extrinsic)
