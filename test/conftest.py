"""Test-wide setup: every ROS participant of a test run stays on loopback in its own domain.

The environment is set at import time, before anything imports rclpy, so the in-process
participants and every process the tests start (they inherit os.environ) use the same
loopback-only Fast DDS profile and a random ROS_DOMAIN_ID. Runs on the same machine therefore
never see each other, and no DDS traffic reaches another interface.
"""

from __future__ import annotations

import ast
import functools
import os
import random
from pathlib import Path

import pytest

from pixio_ros.ros.fastdds import point_fast_dds_at

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_ROOT = Path(__file__).resolve().parent
LOOPBACK_PROFILE = REPO_ROOT / 'config' / 'fastdds_shm_localhost.xml'

os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
# The variable the distro's Fast DDS reads (ROS_DISTRO; `make` writes it into the venv's env file).
point_fast_dds_at(LOOPBACK_PROFILE)
# Not ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (nor Humble's ROS_LOCALHOST_ONLY): with it,
# rmw_fastrtps (Jazzy and Kilted) adds its own UDP transport beside the profile's, bound to 0.0.0.0
# and the external interface, and a 512 KiB SHM segment (test_dds_transport.py checks both).
os.environ.pop('ROS_AUTOMATIC_DISCOVERY_RANGE', None)
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Tiny models on two cores: more torch threads than cores only adds contention.
os.environ.setdefault('OMP_NUM_THREADS', '2')


# --- the `ros` marker: the tests `make test-kilted` runs on a second ROS distro (pytest -m ros) ---

# Top-level modules that make a test ROS-facing when imported (anywhere in the test module).
ROS_MODULES = frozenset({'rclpy', 'ament_index_python'})
ROS_MODULE_SUFFIXES = ('_msgs', '_interfaces')


def _is_ros_module(name: str) -> bool:
    top = name.split('.')[0]
    ours = name == 'pixio_ros.ros' or name.startswith('pixio_ros.ros.')
    return ours or top in ROS_MODULES or top.endswith(ROS_MODULE_SUFFIXES)


@functools.cache
def _imports_ros(path: Path) -> bool:
    """Whether the module at `path` imports rclpy, a ROS message package or pixio_ros.ros."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import) and any(_is_ros_module(a.name) for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_ros_module(node.module) or (
                node.module == 'pixio_ros' and any(a.name == 'ros' for a in node.names)
            ):
                return True
    return False


def pytest_collection_modifyitems(config, items):
    """Mark ROS-facing tests `ros`: all of test/ros/ and every test module importing ROS.

    A test module that talks to rclpy only through a helper can opt in with
    ``pytestmark = pytest.mark.ros``.
    """
    ros_dir = TEST_ROOT / 'ros'
    for item in items:
        path = Path(item.path)
        if ros_dir in path.parents or _imports_ros(path):
            item.add_marker(pytest.mark.ros)


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
            suffix = {'torchscript': '.ts', 'export': '.pt2', 'onnx': '.onnx'}[fmt]
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
