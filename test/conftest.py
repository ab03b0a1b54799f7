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


TINY_ARTIFACT_SEED = 0


@pytest.fixture(scope='session')
def tiny_artifact(tmp_path_factory):
    """Factory for random-init `tiny` artifacts, exported once per argument set per session.

    Call ``make(head_kind='points', input_size=(64, 96), fmt='torchscript') -> Path``; the
    weights come from a fixed torch seed, so equal arguments give equal models.
    """
    import torch

    from pixio_ros.model import build_network, export_artifact

    directory = tmp_path_factory.mktemp('tiny_artifacts')
    cache: dict[tuple[str, tuple[int, int], str], Path] = {}

    def make(
        head_kind: str = 'points', input_size: tuple[int, int] = (64, 96), fmt: str = 'torchscript'
    ) -> Path:
        key = (head_kind, (int(input_size[0]), int(input_size[1])), fmt)
        if key not in cache:
            suffix = '.ts' if fmt == 'torchscript' else '.pt2'
            path = directory / f'tiny_{head_kind}_{key[1][0]}x{key[1][1]}{suffix}'
            with torch.random.fork_rng():
                torch.manual_seed(TINY_ARTIFACT_SEED)
                net = build_network('tiny', head_kind)
            export_artifact(
                net,
                path,
                input_size=key[1],
                fmt=fmt,
                encoder_pretrained=False,
                head_trained=False,
            )
            cache[key] = path
        return cache[key]

    return make
