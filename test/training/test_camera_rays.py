"""A point-map head trains on the rays the node back-projects with, also under strong distortion.

The bag's CameraInfo carries strong plumb_bob distortion. The node turns its rclpy CameraInfo into
a `PinholeCamera` matched to the depth resolution and uses `rays()`; training turns the bag's
rosbags CameraInfo into the same camera and must feed the loss exactly those rays (before the
shared camera model, training used pinhole rays, off by ~10 % of the focal length at the edges).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixio_ros.data.bag import BagReader
from pixio_ros.data.sample_bag import (
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    DEPTH_TOPIC,
    STRONG_DISTORTION,
    SampleBagSpec,
    write_sample_bag,
)
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.training import HeadTrainer, TrainConfig, load_bag_samples, train_head

BAG_SIZE = (96, 128)  # H, W
FRAMES = 6


@pytest.fixture(scope='module')
def distorted_bag(tmp_path_factory):
    spec = SampleBagSpec(
        frames=FRAMES, height=BAG_SIZE[0], width=BAG_SIZE[1], distortion=STRONG_DISTORTION
    )
    return write_sample_bag(tmp_path_factory.mktemp('distorted') / 'bag', spec)


@pytest.fixture(scope='module')
def samples(distorted_bag):
    return load_bag_samples(
        distorted_bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        camera_info_topic=COLOR_INFO_TOPIC,
    )


def node_rays(bag, frame: int, depth_width: int, depth_height: int) -> np.ndarray:
    """(2, H, W) rays the node uses for `frame`: rclpy CameraInfo -> camera at the depth size."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo

    with BagReader(bag) as reader:
        raw = list(reader.raw([COLOR_INFO_TOPIC]))[frame]
    info = deserialize_message(bytes(raw.data), CameraInfo)
    camera = PinholeCamera.from_camera_info(info).matched_to(depth_width, depth_height)
    return camera.rays().transpose(2, 0, 1)


def pinhole_rays(camera: PinholeCamera) -> np.ndarray:
    v, u = np.mgrid[0 : camera.height, 0 : camera.width]
    return np.stack(((u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy)).astype(np.float32)


def config(encoder, out, **changes) -> TrainConfig:
    base = TrainConfig(
        encoder=encoder,
        head_kind='points',
        out=out,
        input_size=(48, 64),
        epochs=1,
        batch=2,
        crop=False,
        flip=False,
        progress=False,
    )
    return replace(base, **changes)


def test_samples_keep_the_distortion(samples):
    assert len(samples) == FRAMES
    camera = samples[0].camera
    assert camera is not None and camera.d == STRONG_DISTORTION
    assert (camera.width, camera.height) == (BAG_SIZE[1], BAG_SIZE[0])


@pytest.mark.parametrize('input_size', [(48, 64), (96, 128)])
@pytest.mark.parametrize('cache', [False, True])
def test_training_batches_carry_the_node_rays(
    distorted_bag, samples, tiny_encoder, tmp_path, input_size, cache
):
    trainer = HeadTrainer(
        config(tiny_encoder, tmp_path / 'run', input_size=input_size, cache_features=cache),
        samples,
        [],
    )
    if cache:
        trainer.build_cache()
    frames = [1, 4]
    batch = trainer.make_batch(frames)
    height, width = input_size
    assert batch.rays.shape == (2, 2, height, width)
    for row, frame in enumerate(frames):
        expected = node_rays(distorted_bag, frame, width, height)
        np.testing.assert_array_equal(batch.rays[row].cpu().numpy(), expected)
        # and the distortion is strong: pinhole rays (the old training target) are far off
        camera = samples[frame].camera
        assert camera is not None
        pinhole = pinhole_rays(camera.matched_to(width, height))
        assert np.abs(expected - pinhole).max() > 0.05


def test_points_head_trains_on_the_distorted_bag(samples, tiny_encoder, tmp_path):
    result = train_head(config(tiny_encoder, tmp_path / 'run', epochs=2, lr=2e-3), samples[:4], [])
    assert len(result.step_silog) == 4
    assert np.isfinite(result.step_silog).all()
    assert torch.isfinite(torch.tensor(result.history[-1]['train_loss']))
