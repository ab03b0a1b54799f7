"""A small synthetic RGB-D bag and a tiny random encoder checkpoint for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

BAG_FRAMES = 12
BAG_SIZE = (96, 128)
INPUT_SIZE = (64, 96)


@pytest.fixture(scope='session')
def sample_bag(tmp_path_factory) -> Path:
    """12 frames of the synthetic scene at 96x128 (colour, aligned depth, CameraInfo)."""
    from pixio_ros.data import SampleBagSpec, write_sample_bag

    spec = SampleBagSpec(frames=BAG_FRAMES, height=BAG_SIZE[0], width=BAG_SIZE[1])
    return write_sample_bag(tmp_path_factory.mktemp('bag') / 'scene', spec)


@pytest.fixture(scope='session')
def tiny_encoder(tmp_path_factory) -> Path:
    """A random-init `tiny` encoder saved as an official-style .pth state dict."""
    from pixio_ros.model import PixioEncoder, get_size

    path = tmp_path_factory.mktemp('encoder') / 'pixio_tiny.pth'
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(PixioEncoder(get_size('tiny')).state_dict(), path)
    return path


@pytest.fixture(scope='session')
def bag_samples(sample_bag):
    """The bag's frames as training samples, with intrinsics."""
    from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
    from pixio_ros.training import load_bag_samples

    return load_bag_samples(
        sample_bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        camera_info_topic=COLOR_INFO_TOPIC,
    )
