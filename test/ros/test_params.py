"""Declared parameters: descriptors with descriptions, ranges and read-only flags."""

from __future__ import annotations

import re

import pytest
from rclpy.parameter import Parameter

from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.params import PARAMETERS, declare_parameters, on_set_result

READ_ONLY = {'model_path', 'device', 'precision', 'warmup_runs', 'compressed_input',
             'input_qos.reliability', 'input_qos.depth', 'output_qos.reliability',
             'output_qos.depth', 'diagnostics_period'}


@pytest.fixture
def node(ros_context):
    import rclpy

    test_node = rclpy.create_node('pixio_params_test', context=ros_context)
    try:
        yield test_node
    finally:
        test_node.destroy_node()


def test_every_parameter_is_described_with_ranges(node):
    settings = declare_parameters(node)
    assert set(settings) == {spec.name for spec in PARAMETERS}
    descriptors = node.describe_parameters([spec.name for spec in PARAMETERS])
    for spec, descriptor in zip(PARAMETERS, descriptors, strict=True):
        assert descriptor.description, spec.name
        assert descriptor.read_only == (spec.name in READ_ONLY), spec.name
        if isinstance(spec.default, float) and spec.value_range:
            assert descriptor.floating_point_range[0].to_value == spec.value_range[1]
        if isinstance(spec.default, int) and not isinstance(spec.default, bool) \
                and spec.value_range:
            assert descriptor.integer_range[0].from_value == spec.value_range[0]


def test_invalid_start_up_choice_is_refused(ros_context):
    import rclpy

    bad = rclpy.create_node('pixio_params_bad', context=ros_context,
                            parameter_overrides=[Parameter('precision', value='int4')])
    try:
        with pytest.raises(NodeError, match="precision='int4' is not one of fp32, fp16, bf16"):
            declare_parameters(bad)
    finally:
        bad.destroy_node()


RANGE_REASON = r'points.min_range=5.0 is greater than points.max_range=2.0.*set either to 0'


def test_start_up_min_range_beyond_max_range_is_refused(ros_context):
    import rclpy

    bad = rclpy.create_node('pixio_params_range', context=ros_context, parameter_overrides=[
        Parameter('points.min_range', value=5.0), Parameter('points.max_range', value=2.0)])
    try:
        with pytest.raises(NodeError, match=f'invalid start-up parameters: {RANGE_REASON}'):
            declare_parameters(bad)
    finally:
        bad.destroy_node()


@pytest.mark.parametrize(
    ('current', 'changes', 'refused'),
    [
        ({'points.max_range': 2.0}, {'points.min_range': 5.0}, True),
        ({'points.min_range': 5.0}, {'points.max_range': 2.0}, True),
        ({}, {'points.min_range': 5.0, 'points.max_range': 2.0}, True),
        ({'points.max_range': 2.0}, {'points.min_range': 1.0}, False),
        ({'points.max_range': 0.0}, {'points.min_range': 5.0}, False),
        ({'points.min_range': 5.0, 'points.max_range': 2.0}, {'points.max_range': 0.0}, False),
    ],
)
def test_live_range_change_is_checked_against_current_values(node, current, changes, refused):
    settings = declare_parameters(node).replaced(current)
    result = on_set_result([Parameter(n, value=v) for n, v in changes.items()], settings)
    assert result.successful is not refused
    if refused:
        assert re.search(RANGE_REASON, result.reason)
