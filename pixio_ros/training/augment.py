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


def _draw_int(high: int, generator: torch.Generator) -> int:
    """Uniform integer in [0, high] from ``generator``."""
    return int(torch.randint(0, high + 1, (1,), generator=generator).item())


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
    height, width = input_size
    src_h, src_w = sample.rgb.shape[:2]
    top = left = 0
    if crop:
        scale = max(height / src_h, width / src_w)
        new_h, new_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
        top = _draw_int(new_h - height, generator)
        left = _draw_int(new_w - width, generator)
    else:
        new_h, new_w = height, width
    flip_draw = float(torch.rand(1, generator=generator).item())
    rgb, depth = _resize(sample, new_h, new_w)
    rgb = rgb[top : top + height, left : left + width]
    depth = depth[top : top + height, left : left + width]
    camera = sample.camera
    if camera is not None:
        camera = camera.scaled_to(new_w, new_h).cropped(left, top, width, height)
    image = torch.from_numpy(np.ascontiguousarray(rgb))
    depth_map = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
    rays = target_rays(camera, height, width)
    if flip and flip_draw < FLIP_PROBABILITY:
        image = image.flip(1)
        depth_map, rays = flip_targets(depth_map, rays)
    return Example(image=image.contiguous(), depth=depth_map.contiguous(), rays=rays.contiguous())


def flip_targets(depth: Tensor, rays: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror (..., 1, H, W) depth and (..., 2, H, W) rays left-right; x/z changes sign."""
    rays = rays.flip(-1)
    return depth.flip(-1), torch.cat((-rays[..., 0:1, :, :], rays[..., 1:2, :, :]), dim=-3)
