"""Fixtures for the node tests: contexts, a spinning client node, in-process nodes, artifacts."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter
from ros_test_helpers import INPUT_SIZE, Client

from pixio_ros.ros.node import PixioNode


@pytest.fixture(scope='module')
def module_context():
    """An rclpy context of the test module's own (its clients outlive single tests)."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture
def client(ros_context):
    test_client = Client(ros_context)
    try:
        yield test_client
    finally:
        test_client.close()


@pytest.fixture
def make_node(ros_context, client):
    """Start in-process PixioNodes on an artifact, spun by `client`; destroyed after the test."""
    nodes = []

    def make(artifact, **parameters) -> PixioNode:
        overrides = [
            Parameter('model_path', value=str(artifact)),
            Parameter('device', value='cpu'),
            Parameter('warmup_runs', value=0),
            *(Parameter(name, value=value) for name, value in parameters.items()),
        ]
        node = PixioNode(context=ros_context, parameter_overrides=overrides)
        nodes.append(node)
        client.add_node(node)
        return node

    yield make
    for node in nodes:
        client.executor.remove_node(node)
        node.destroy_node()


@pytest.fixture(scope='session')
def points_artifact(tiny_artifact):
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE)


@pytest.fixture(scope='session')
def depth_artifact(tiny_artifact):
    return tiny_artifact(head_kind='depth', input_size=INPUT_SIZE)
