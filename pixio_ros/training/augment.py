"""Training examples at the model's input size: resize, random crop, horizontal flip, rays.

The paper's recipe: random crops at the input size and horizontal flips. The camera model
follows every step (`scaled_to`, `cropped`), so the point-map head's ground-truth rays are
`camera.rays()`: undistorted, exactly the rays the node back-projects with at that resolution.
A flip mirrors the scene: the rays mirror too and x/z changes sign (`flip_targets`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.training.samples import RGBDSample

FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class Example:
    """One prepared example, tensors on the CPU.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (1, H, W) float32 metres, NaN where invalid.
        rays: (2, H, W) float32 ground-truth (x/z, y/z); NaN when the intrinsics are unknown.
    """

    image: Tensor
    depth: Tensor
    rays: Tensor


def target_rays(camera: PinholeCamera | None, height: int, width: int) -> Tensor:
    """(2, H, W) float32 ground-truth rays (x/z, y/z) of ``camera``; NaN without a camera.

    The rays are ``camera.rays()``, the node's rays for a camera at this resolution.
    """
    if camera is None:
        return torch.full((2, height, width), math.nan, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(camera.rays().transpose(2, 0, 1)))


def _resize(sample: RGBDSample, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    src_h, src_w = sample.rgb.shape[:2]
    shrinking = height * width < src_h * src_w
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    rgb = cv2.resize(sample.rgb, (width, height), interpolation=interpolation)
    depth = cv2.resize(sample.depth, (width, height), interpolation=cv2.INTER_NEAREST)
    return rgb, depth


@dataclass(frozen=True)
class Draws:
    """One example's random numbers in [0, 1), drawn before any of its pixels are read.

    They do not depend on the frame, so every process of a distributed run can draw the
    numbers of the whole global batch (keeping the one generator in step) and decode only
    its own frames.
    """

    top: float
    left: float
    flip: float


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand(1, generator=generator).item())


def draw(generator: torch.Generator, *, crop: bool) -> Draws:
    """The next example's numbers: crop offsets (only with ``crop``), then the flip."""
    top = left = 0.0
    if crop:
        top, left = _uniform(generator), _uniform(generator)
    return Draws(top, left, _uniform(generator))


def _offset(fraction: float, high: int) -> int:
    """Uniform integer in [0, high] from a uniform ``fraction`` in [0, 1)."""
    return min(high, int(fraction * (high + 1)))


def make_example(
    sample: RGBDSample,
    input_size: tuple[int, int],
    *,
    crop: bool,
    flip: bool,
    generator: torch.Generator,
) -> Example:
    """Resize (and randomly crop / flip) a sample to ``input_size``.

    With ``crop`` the image is scaled to cover ``input_size`` keeping its aspect ratio and a
    random window is cut; without it the whole image is resized to ``input_size``. One flip
    draw is always taken from ``generator`` so the random stream does not depend on ``flip``.
    """
    return augment(sample, input_size, draw(generator, crop=crop), crop=crop, flip=flip)


def augment(
    sample: RGBDSample, input_size: tuple[int, int], draws: Draws, *, crop: bool, flip: bool
) -> Example:
    """`make_example` with the random numbers already drawn (`draw`)."""
    height, width = input_size
    src_h, src_w = sample.rgb.shape[:2]
    top = left = 0
    if crop:
        scale = max(height / src_h, width / src_w)
        new_h, new_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
        top = _offset(draws.top, new_h - height)
        left = _offset(draws.left, new_w - width)
    else:
        new_h, new_w = height, width
    rgb, depth = _resize(sample, new_h, new_w)
    rgb = rgb[top : top + height, left : left + width]
    depth = depth[top : top + height, left : left + width]
    camera = sample.camera
    if camera is not None:
        camera = camera.scaled_to(new_w, new_h).cropped(left, top, width, height)
    image = torch.from_numpy(np.ascontiguousarray(rgb))
    depth_map = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
    rays = target_rays(camera, height, width)
    if flip and draws.flip < FLIP_PROBABILITY:
        image = image.flip(1)
        depth_map, rays = flip_targets(depth_map, rays)
    return Example(image=image.contiguous(), depth=depth_map.contiguous(), rays=rays.contiguous())


def flip_targets(depth: Tensor, rays: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror (..., 1, H, W) depth and (..., 2, H, W) rays left-right; x/z changes sign."""
    rays = rays.flip(-1)
    return depth.flip(-1), torch.cat((-rays[..., 0:1, :, :], rays[..., 1:2, :, :]), dim=-3)
