"""Resize / crop / flip keep images, depth and ground-truth rays consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixio_ros.training import RGBDSample
from pixio_ros.training.augment import flip_targets, make_example, pixel_rays

K = np.array([[80.0, 0.0, 40.0], [0.0, 90.0, 30.0], [0.0, 0.0, 1.0]])


def sample(height: int = 64, width: int = 96) -> RGBDSample:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 5.0, (height, width)).astype(np.float32)
    return RGBDSample(rgb, depth, K, 'test', 0)


def test_crop_moves_the_principal_point():
    source = sample()
    generator = torch.Generator().manual_seed(3)
    example = make_example(source, (64, 64), crop=True, flip=False, generator=generator)
    image = example.image.numpy()
    lefts = [x for x in range(33) if np.array_equal(source.rgb[:, x : x + 64], image)]
    assert len(lefts) == 1
    left = lefts[0]
    np.testing.assert_array_equal(example.depth[0].numpy(), source.depth[:, left : left + 64])
    full_rays = pixel_rays(K, 64, 96)
    np.testing.assert_allclose(example.rays.numpy(), full_rays[:, :, left : left + 64], atol=1e-6)


def test_flip_mirrors_image_depth_and_rays():
    source = sample()
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
    torch.testing.assert_close(flipped.rays, rays, rtol=0, atol=1e-6)
    # Mirrored scene: the ray through the flipped left column is the original right one, negated.
    assert flipped.rays[0, 0, 0].item() == pytest.approx(-(95 - 40) / 80.0)


def test_resize_scales_intrinsics():
    source = sample(64, 96)
    example = make_example(source, (32, 48), crop=False, flip=False, generator=torch.Generator())
    half = K.copy()
    half[:2] *= 0.5
    half[0, 2] = (K[0, 2] + 0.5) * 0.5 - 0.5
    half[1, 2] = (K[1, 2] + 0.5) * 0.5 - 0.5
    np.testing.assert_allclose(example.rays.numpy(), pixel_rays(half, 32, 48), atol=1e-6)


def test_unknown_intrinsics_give_nan_rays():
    source = RGBDSample(sample().rgb, sample().depth, None, 'test', 0)
    example = make_example(source, (32, 48), crop=False, flip=False, generator=torch.Generator())
    assert bool(torch.isnan(example.rays).all())
