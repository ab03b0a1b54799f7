"""The rclpy side of the settings: descriptors, live changes, unknown overrides, rclpy.init.

Real rclpy contexts and nodes (no executor is spun, so nothing waits on discovery).
"""

from __future__ import annotations

import re

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
from ros_test_helpers import RANGE_CHANGES, READ_ONLY_PARAMETERS

from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.params import (
    PARAMETERS,
    apply_changes,
    declare_parameters,
    init_rclpy,
    on_set_result,
    params_files,
    qos_profile,
    unknown_parameter_warnings,
)
from pixio_ros.ros.settings import NodeSettings, QosSettings, SettingsError


@pytest.fixture
def node(ros_context):
    test_node = rclpy.create_node('pixio_params_test', context=ros_context)
    try:
        yield test_node
    finally:
        test_node.destroy_node()


def make_node(context, name='pixio_params_node', **kwargs):
    return rclpy.create_node(name, context=context, **kwargs)


def test_every_parameter_is_declared_with_its_descriptor(node):
    settings = declare_parameters(node)
    assert settings == NodeSettings()
    descriptors = node.describe_parameters([spec.name for spec in PARAMETERS])
    for spec, descriptor in zip(PARAMETERS, descriptors, strict=True):
        assert descriptor.description.startswith(spec.description), spec.name
        assert descriptor.read_only == (spec.name in READ_ONLY_PARAMETERS), spec.name
        if spec.choices:
            assert descriptor.additional_constraints == f'one of: {", ".join(spec.choices)}'
        if spec.kind is float and spec.value_range:
            rng = descriptor.floating_point_range[0]
            assert (rng.from_value, rng.to_value) == spec.value_range, spec.name
        elif spec.kind is int and spec.value_range:
            rng = descriptor.integer_range[0]
            assert (rng.from_value, rng.to_value) == spec.value_range, spec.name
        else:
            assert not descriptor.floating_point_range and not descriptor.integer_range
    assert node.get_parameter('points.stride').value == 1


def test_start_up_overrides_become_typed_settings(ros_context):
    overridden = make_node(
        ros_context,
        parameter_overrides=[
            Parameter('points.stride', value=4),
            Parameter('input_qos.reliability', value='reliable'),
            Parameter('features.dtype', value='float16'),
        ],
    )
    try:
        settings = declare_parameters(overridden)
    finally:
        overridden.destroy_node()
    assert settings.points.stride == 4
    assert settings.input_qos == QosSettings('reliable', 5)
    assert settings.features.dtype == 'float16'


def test_invalid_start_up_choice_is_refused(ros_context):
    bad = make_node(ros_context, parameter_overrides=[Parameter('precision', value='int4')])
    try:
        with pytest.raises(NodeError, match="precision='int4' is not one of fp32, fp16, bf16"):
            declare_parameters(bad)
    finally:
        bad.destroy_node()


RANGE_REASON = r'points.min_range=5.0 is greater than points.max_range=2.0.*set either to 0'


def test_start_up_min_range_beyond_max_range_is_refused(ros_context):
    bad = make_node(
        ros_context,
        parameter_overrides=[
            Parameter('points.min_range', value=5.0),
            Parameter('points.max_range', value=2.0),
        ],
    )
    try:
        with pytest.raises(SettingsError, match=f'invalid start-up parameters: {RANGE_REASON}'):
            declare_parameters(bad)
    finally:
        bad.destroy_node()


@pytest.mark.parametrize(
    ('current', 'changes', 'refused'),
    RANGE_CHANGES,
)
def test_live_range_change_is_checked_against_current_values(node, current, changes, refused):
    settings = declare_parameters(node).replaced(current)
    parameters = [Parameter(n, value=v) for n, v in changes.items()]
    result, after = apply_changes(settings, parameters)
    assert on_set_result(parameters, settings).successful is result.successful
    assert result.successful is not refused
    if refused:
        assert re.search(RANGE_REASON, result.reason)
        assert after is settings
    else:
        assert after.as_parameters() == {**settings.as_parameters(), **changes}


def test_live_change_of_a_read_only_parameter_is_refused_with_where_to_set_it():
    settings = NodeSettings()
    result, after = apply_changes(settings, [Parameter('device', value='cpu')])
    assert not result.successful
    assert result.reason == 'device is read-only; set it at start-up (params file or --ros-args -p)'
    assert after is settings


def test_rclpys_own_parameters_pass_through_a_change_request():
    settings = NodeSettings()
    result, after = apply_changes(
        settings, [Parameter('use_sim_time', value=True), Parameter('points.stride', value=3)]
    )
    assert result.successful, result.reason
    assert after.points.stride == 3


def test_live_changes_through_rclpy_use_the_settings_validation(node):
    holder = {'settings': declare_parameters(node)}

    def on_set(parameters):
        result, holder['settings'] = apply_changes(holder['settings'], parameters)
        return result

    node.add_on_set_parameters_callback(on_set)
    results = node.set_parameters([Parameter('points.max_range', value=2.0)])
    assert results[0].successful and holder['settings'].points.max_range == 2.0
    refused = node.set_parameters([Parameter('points.min_range', value=5.0)])[0]
    assert not refused.successful and re.search(RANGE_REASON, refused.reason)
    refused = node.set_parameters([Parameter('depth_resolution', value='sideways')])[0]
    assert "depth_resolution='sideways' is not one of camera, model" in refused.reason
    assert node.get_parameter('depth_resolution').value == 'camera'
    assert holder['settings'].points.min_range == 0.0
    assert holder['settings'].depth_resolution == 'camera'


@pytest.mark.parametrize(
    ('qos', 'reliability'),
    [
        (QosSettings('best_effort', 7), ReliabilityPolicy.BEST_EFFORT),
        (QosSettings('reliable', 1), ReliabilityPolicy.RELIABLE),
    ],
)
def test_qos_profile(qos, reliability):
    profile = qos_profile(qos)
    assert profile.reliability == reliability
    assert profile.depth == qos.depth
    assert profile.history == HistoryPolicy.KEEP_LAST
    assert profile.durability == DurabilityPolicy.VOLATILE


# --- misspelt parameters in a params file or -p (issue 12, item 7) ----------------------------

PARAMS_WITH_TYPOS = """\
/**:
  ros__parameters:
    max_rate_hx: 5.0
    points:
      strid: 4
      max_range: 8.0
/robot/pixio_typos:
  ros__parameters:
    publish:
      depht: false
/robot/another_node:
  ros__parameters:
    not_for_us: 1
"""


@pytest.fixture
def context_with_args(tmp_path):
    contexts = []

    def make(*ros_args):
        context = Context()
        rclpy.init(args=['pixio_node', '--ros-args', *ros_args], context=context)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        if context.ok():
            rclpy.shutdown(context=context)


def test_misspelt_overrides_for_this_node_are_named_with_the_closest_parameter(
    tmp_path, context_with_args
):
    params = tmp_path / 'params.yaml'
    params.write_text(PARAMS_WITH_TYPOS)
    context = context_with_args('--params-file', str(params), '-p', 'warmup_run:=2')
    node = make_node(context, name='pixio_typos', namespace='robot')
    try:
        settings = declare_parameters(node)
        warnings = unknown_parameter_warnings(node)
    finally:
        node.destroy_node()
    owner = '/robot/pixio_typos'
    assert warnings == [
        f'max_rate_hx is not a parameter of {owner} (its value is ignored); '
        'did you mean max_rate_hz?',
        f'points.strid is not a parameter of {owner} (its value is ignored); '
        'did you mean points.stride?',
        f'publish.depht is not a parameter of {owner} (its value is ignored); '
        'did you mean publish.depth?',
        f'warmup_run is not a parameter of {owner} (its value is ignored); '
        'did you mean warmup_runs?',
    ]
    # The correctly spelt neighbour in the same file did apply.
    assert settings.points.max_range == 8.0 and settings.points.stride == 1


def test_a_clean_params_file_gives_no_warning(tmp_path, context_with_args):
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n    points:\n      stride: 2\n')
    context = context_with_args('--params-file', str(params), '-p', 'use_sim_time:=true')
    node = make_node(context)
    try:
        settings = declare_parameters(node)
        assert unknown_parameter_warnings(node) == []
    finally:
        node.destroy_node()
    assert settings.points.stride == 2


# --- params files rclpy.init cannot read (issue 12, item 6) -----------------------------------


@pytest.fixture
def fresh_context():
    context = Context()
    yield context
    if context.ok():
        rclpy.shutdown(context=context)


def init_with(context, *ros_args):
    init_rclpy(['pixio_node', '--ros-args', *ros_args], context=context)


def one_line_error(context, *ros_args) -> str:
    with pytest.raises(NodeError) as caught:
        init_with(context, *ros_args)
    message = str(caught.value)
    assert '\n' not in message
    assert not context.ok()
    return message


def test_missing_params_file_is_one_line_naming_it(tmp_path, fresh_context):
    missing = tmp_path / 'nope.yaml'
    message = one_line_error(fresh_context, '--params-file', str(missing))
    assert message.startswith(f'params file {missing} does not exist (given with --params-file')
    assert 'check the path' in message


def test_a_directory_as_params_file_is_refused(tmp_path, fresh_context):
    message = one_line_error(fresh_context, '--params-file', str(tmp_path))
    assert message.startswith(f'params file {tmp_path} is a directory')


def test_yaml_syntax_error_names_the_file_and_line(tmp_path, fresh_context):
    params = tmp_path / 'broken.yaml'
    params.write_text('/**:\n  ros__parameters:\n    points: {stride: 2\n    device: cpu\n')
    message = one_line_error(fresh_context, '-p', 'device:=cpu', '--params-file', str(params))
    assert re.match(
        rf'params file {re.escape(str(params))} is not valid YAML: .* at line 4', message
    )
    assert 'fix the syntax there' in message


def test_a_layout_rcl_refuses_is_one_line_naming_the_file(tmp_path, fresh_context):
    params = tmp_path / 'flat.yaml'
    params.write_text('model_path: model.ts\n')  # valid YAML, but no node / ros__parameters
    message = one_line_error(fresh_context, '--params-file', str(params))
    assert message.startswith(f'params file {params} was refused by ROS: ')
    assert 'ros__parameters' in message and 'parse.c' not in message


def test_a_good_params_file_initialises_the_context(tmp_path, fresh_context):
    params = tmp_path / 'good.yaml'
    params.write_text('/**:\n  ros__parameters:\n    points:\n      stride: 2\n')
    init_with(fresh_context, '--params-file', str(params))
    assert fresh_context.ok()


def test_launch_ros_tuple_tags_are_accepted(tmp_path, fresh_context):
    """launch_ros dumps a list parameter as !!python/tuple; rcl reads it, so must our check.

    Found running launch/pixio.launch.py with cameras:=front,left under the real launch_ros.
    """
    params = tmp_path / 'from_launch.yaml'
    params.write_text(
        '/**:\n  ros__parameters:\n    cameras: !!python/tuple\n    - front\n    - left\n'
    )
    init_with(fresh_context, '--params-file', str(params))
    assert fresh_context.ok()


@pytest.mark.parametrize(
    ('argv', 'files'),
    [
        (['prog', '--params-file', 'not_ros.yaml'], []),
        (['prog', '--ros-args', '--params-file', 'a.yaml', '-p', 'x:=1'], ['a.yaml']),
        (['prog', '--ros-args', '-p', '--params-file', '--params-file', 'b.yaml'], ['b.yaml']),
        (
            ['prog', '--ros-args', '--params-file', 'a.yaml', '--', '--params-file', 'user.yaml'],
            ['a.yaml'],
        ),
        (
            ['prog', '--ros-args', '--params-file', 'a.yaml', '--ros-args', '--params-file', 'b'],
            ['a.yaml', 'b'],
        ),
    ],
)
def test_params_files_are_read_from_ros_args_sections_only(argv, files):
    assert list(params_files(argv)) == files
