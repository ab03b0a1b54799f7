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


# Shared by the model, training and command tests.
TRAIN_BAG_FRAMES = 12
TRAIN_BAG_SIZE = (96, 128)


TINY_HF = {'hidden_size': 64, 'num_hidden_layers': 4, 'num_attention_heads': 4}


def _make_hf_model(dims: dict[str, int], seed: int, *, scale: float):
    """A transformers PixioModel with every parameter random (biases and LayerNorms too)."""
    import torch
    from transformers import PixioConfig, PixioModel

    torch.manual_seed(seed)
    model = PixioModel(PixioConfig(**dims)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'layernorm' in name and name.endswith('weight'):
                param.uniform_(0.5, 1.5)
            elif name.endswith('bias') or 'layernorm' in name:
                param.normal_(0.0, scale)
    return model


@pytest.fixture(scope='session')
def hf_tiny(tmp_path_factory) -> tuple[object, Path]:
    """(transformers PixioModel of the `tiny` dimensions, folder it saved itself to)."""
    model = _make_hf_model(TINY_HF, seed=1, scale=0.1)
    folder = tmp_path_factory.mktemp('hf_tiny')
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope='session')
def sample_bag(tmp_path_factory) -> Path:
    """12 frames of the synthetic scene at 96x128 (colour, aligned depth, CameraInfo)."""
    from pixio_ros.data import SampleBagSpec, write_sample_bag

    spec = SampleBagSpec(frames=TRAIN_BAG_FRAMES, height=TRAIN_BAG_SIZE[0], width=TRAIN_BAG_SIZE[1])
    return write_sample_bag(tmp_path_factory.mktemp('bag') / 'scene', spec)


@pytest.fixture(scope='session')
def tiny_encoder(tmp_path_factory) -> Path:
    """A random-init `tiny` encoder saved as an official-style .pth state dict."""
    import torch

    from pixio_ros.model import PixioEncoder, get_size

    path = tmp_path_factory.mktemp('encoder') / 'pixio_tiny.pth'
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(PixioEncoder(get_size('tiny')).state_dict(), path)
    return path


@pytest.fixture(scope='session')
def make_hf_model():
    """Factory ``make(dims, seed, *, scale)`` for randomised transformers PixioModels."""
    return _make_hf_model
