"""Resize / crop / flip keep images, depth and the camera's ground-truth rays consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.training import RGBDSample
from pixio_ros.training.augment import flip_targets, make_example, target_rays

K = (80.0, 0.0, 40.0, 0.0, 90.0, 30.0, 0.0, 0.0, 1.0)
STRONG_PLUMB_BOB = (-0.35, 0.12, 0.001, -0.0015, -0.02)


def sample(height: int = 64, width: int = 96, d: tuple[float, ...] = ()) -> RGBDSample:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 5.0, (height, width)).astype(np.float32)
    camera = PinholeCamera.from_k(width, height, K, d=d, distortion_model='plumb_bob')
    return RGBDSample(rgb, depth, camera, 'test', 0)


def rays_of(camera: PinholeCamera) -> np.ndarray:
    return camera.rays().transpose(2, 0, 1)


@pytest.mark.parametrize('d', [(), STRONG_PLUMB_BOB])
def test_crop_gives_the_rays_of_the_cropped_camera(d):
    source = sample(d=d)
    generator = torch.Generator().manual_seed(3)
    example = make_example(source, (64, 64), crop=True, flip=False, generator=generator)
    image = example.image.numpy()
    lefts = [x for x in range(33) if np.array_equal(source.rgb[:, x : x + 64], image)]
    assert len(lefts) == 1
    left = lefts[0]
    np.testing.assert_array_equal(example.depth[0].numpy(), source.depth[:, left : left + 64])
    assert source.camera is not None
    expected = rays_of(source.camera.cropped(left, 0, 64, 64))
    np.testing.assert_array_equal(example.rays.numpy(), expected)
    # the window of the full frame's rays, distortion and all
    full = rays_of(source.camera)[:, :, left : left + 64]
    np.testing.assert_allclose(example.rays.numpy(), full, rtol=0, atol=1e-6)


def test_flip_mirrors_image_depth_and_rays():
    source = sample(d=STRONG_PLUMB_BOB)
    plain = make_example(source, (64, 96), crop=False, flip=False, generator=torch.Generator())
    flipped = None
    for seed in range(20):  # find a draw that flips
        candidate = make_example(
            source, (64, 96), crop=False, flip=True, generator=torch.Generator().manual_seed(seed)
        )
        if not torch.equal(candidate.image, plain.image):
            flipped = candidate
            break
    assert flipped is not None
    assert torch.equal(flipped.image, plain.image.flip(1))
    depth, rays = flip_targets(plain.depth, plain.rays)
    assert torch.equal(flipped.depth, depth)
    assert torch.equal(flipped.rays, rays)
    # Mirrored scene: the ray through the flipped left column is the original right one, negated.
    assert flipped.rays[0, 0, 0].item() == -plain.rays[0, 0, 95].item()


def test_resize_gives_the_rays_of_the_scaled_camera():
    source = sample(64, 96, d=STRONG_PLUMB_BOB)
    example = make_example(source, (32, 48), crop=False, flip=False, generator=torch.Generator())
    half = PinholeCamera.from_k(
        48,
        32,
        (40.0, 0.0, (40.0 + 0.5) * 0.5 - 0.5, 0.0, 45.0, (30.0 + 0.5) * 0.5 - 0.5, 0, 0, 1),
        d=STRONG_PLUMB_BOB,
        distortion_model='plumb_bob',
    )
    np.testing.assert_array_equal(example.rays.numpy(), rays_of(half))


def test_training_rays_are_undistorted_not_pinhole():
    """The bug this replaces: training used pinhole rays (u - cx) / fx under distortion."""
    source = sample(d=STRONG_PLUMB_BOB)
    example = make_example(source, (64, 96), crop=False, flip=False, generator=torch.Generator())
    v, u = np.mgrid[0:64, 0:96]
    pinhole_x = (u - K[2]) / K[0]
    assert np.abs(example.rays[0].numpy() - pinhole_x).max() > 0.05


def test_unknown_intrinsics_give_nan_rays():
    source = RGBDSample(sample().rgb, sample().depth, None, 'test', 0)
    example = make_example(source, (32, 48), crop=False, flip=False, generator=torch.Generator())
    assert bool(torch.isnan(example.rays).all())
    assert bool(torch.isnan(target_rays(None, 2, 3)).all())


def test_sample_camera_must_match_the_image():
    from pixio_ros.data import DataError  # RGBDSample is the data layer's (every reader's) sample

    camera = PinholeCamera.from_k(96, 64, K)
    with pytest.raises(DataError, match='frame 0 of test is 48x32 but its camera is 96x64'):
        RGBDSample(
            np.zeros((32, 48, 3), np.uint8), np.ones((32, 48), np.float32), camera, 'test', 0
        )
