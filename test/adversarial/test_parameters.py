"""Hostile parameter requests through a real pixio_node's parameter services.

Every refused request (out of range, wrong type, not a choice, read-only, undeclared) leaves the
settings in force, is counted as `errors parameter` and logged on one line; misspelt names in the
params file were warned at start-up with the closest declared name (issue 12, defect 7).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from adversarial_helpers import WAIT_S, wait_until
from conftest import MISSPELT

# The live parameters and values a peer may send that the node must refuse.
LIVE_REFUSED: dict[str, list[Any]] = {
    'max_rate_hz': [-1.0, 1001.0, math.nan, 'fast', 5],
    'depth_resolution': ['metric', 3],
    'publish.depth': ['yes'],
    'publish.depth_colored': [0.0],
    'publish.points': ['false'],
    'publish.features': [1],
    'publish.embedding': ['true'],
    'colored_max_depth': [-0.5, math.inf],
    'points.stride': [0, 65, 2.5],
    'points.min_range': [-1.0, 1e9],
    'points.max_range': [math.nan, 3],
    'points.voxel_size': [-0.1, 11.0],
    'points.dense': ['no'],
    'points.rgb': [2],
    'points.confidence': [math.nan],
    'features.dtype': ['float64', 1],
}
# Read-only parameters, each set to a value of its own type.
READ_ONLY: dict[str, Any] = {
    'model_path': '/tmp/other.ts',
    'device': 'cuda',
    'precision': 'fp16',
    'warmup_runs': 3,
    'compressed_input': True,
    'max_input_megapixels': 10.0,
    'input_qos.reliability': 'best_effort',
    'input_qos.depth': 2,
    'output_qos.reliability': 'best_effort',
    'output_qos.depth': 3,
    'diagnostics_period': 2.0,
}
CASES = [
    *(
        pytest.param(name, value, id=f'{name}={value!r}')
        for name, values in LIVE_REFUSED.items()
        for value in values
    ),
    *(pytest.param(name, value, id=f'read-only {name}') for name, value in READ_ONLY.items()),
    pytest.param('points.strid', 4, id='undeclared points.strid'),
]


def parameter_value(value: Any) -> Any:
    from rcl_interfaces.msg import ParameterType, ParameterValue

    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)


def plain(value: Any) -> Any:
    """The Python value of an rcl_interfaces ParameterValue."""
    from rcl_interfaces.msg import ParameterType

    field = {
        ParameterType.PARAMETER_BOOL: 'bool_value',
        ParameterType.PARAMETER_INTEGER: 'integer_value',
        ParameterType.PARAMETER_DOUBLE: 'double_value',
        ParameterType.PARAMETER_STRING: 'string_value',
    }[value.type]
    return getattr(value, field)


@pytest.fixture(scope='module')
def services(raw_target):
    from rcl_interfaces.srv import GetParameters, SetParameters

    node_name = f'{raw_target.namespace}/pixio'
    set_client = raw_target.node.create_client(SetParameters, f'{node_name}/set_parameters')
    get_client = raw_target.node.create_client(GetParameters, f'{node_name}/get_parameters')
    wait_until(
        lambda: (
            raw_target.check_alive()
            and set_client.service_is_ready()
            and get_client.service_is_ready()
        ),
        what='parameter services',
    )
    yield set_client, get_client
    raw_target.node.destroy_client(set_client)
    raw_target.node.destroy_client(get_client)


def call(client: Any, request: Any) -> Any:
    future = client.call_async(request)
    wait_until(future.done, what=f'{client.srv_name} response', timeout=WAIT_S)
    return future.result()


def current(get_client: Any, names: list[str]) -> dict[str, Any]:
    from rcl_interfaces.srv import GetParameters

    response = call(get_client, GetParameters.Request(names=names))
    return {name: plain(value) for name, value in zip(names, response.values, strict=True)}


@pytest.mark.parametrize(('name', 'value'), CASES)
def test_refused_parameter_change_is_counted_and_changes_nothing(raw_target, services, name, value):
    from rcl_interfaces.msg import Parameter
    from rcl_interfaces.srv import SetParameters

    set_client, get_client = services
    declared = [n for n in (*LIVE_REFUSED, *READ_ONLY) if n == name]
    before = current(get_client, declared) if declared else {}
    results = []

    def send() -> list[Any]:
        request = SetParameters.Request(
            parameters=[Parameter(name=name, value=parameter_value(value))]
        )
        results.extend(call(set_client, request).results)
        return [request]

    _, lines = raw_target.expect_refused('parameter', send)
    [result] = results
    assert not result.successful and result.reason
    assert current(get_client, declared) == before or all(
        isinstance(v, float) and math.isnan(v) for v in before.values()
    )
    for line in lines:
        assert 'parameter' in line


def test_misspelt_params_file_names_were_warned_with_the_closest_name(raw_target):
    log = raw_target.log_since(0)
    start = '\n'.join(line for line in log if 'not a parameter' in line or 'did you mean' in line)
    for misspelt, closest in (('points.strid', 'points.stride'), ('max_rate_hx', 'max_rate_hz')):
        assert misspelt in start and closest in start, start
    assert set(MISSPELT) == {'points', 'max_rate_hx'}
