"""Test-wide setup: every ROS participant of a test run stays on loopback in its own domain.

The environment is set at import time, before anything imports rclpy, so the in-process
participants and every process the tests start (they inherit os.environ) use the same
loopback-only Fast DDS profile and a random ROS_DOMAIN_ID. Runs on the same machine therefore
never see each other, and no DDS traffic reaches another interface.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_PROFILE = REPO_ROOT / 'config' / 'fastdds_shm_localhost.xml'

os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = str(LOOPBACK_PROFILE)
os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(LOOPBACK_PROFILE)
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Tiny models on two cores: more torch threads than cores only adds contention.
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture
def ros_context():
    """An initialised rclpy Context of its own, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
