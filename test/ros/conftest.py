"""Fixtures for the node tests: a spinning client node and tiny artifacts."""

from __future__ import annotations

import pytest
from ros_test_helpers import INPUT_SIZE, Client


@pytest.fixture
def client(ros_context):
    test_client = Client(ros_context)
    try:
        yield test_client
    finally:
        test_client.close()


@pytest.fixture(scope='session')
def points_artifact(tiny_artifact):
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE)


@pytest.fixture(scope='session')
def depth_artifact(tiny_artifact):
    return tiny_artifact(head_kind='depth', input_size=INPUT_SIZE)
