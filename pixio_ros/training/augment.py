"""Training examples at the model's input size: resize, random crop, horizontal flip, rays.

The paper's recipe: random crops at the input size and horizontal flips. Intrinsics follow
every step, so the ground-truth rays (x/z, y/z) of the point-map head stay correct; a flip
mirrors the scene, which negates x/z (cx becomes W - 1 - cx).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from pixio_ros.runtime.camera import rescale_projection
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


def pixel_rays(k: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """(2, H, W) float32 normalised rays (x/z, y/z) of pixel centres; NaN without intrinsics."""
    if k is None:
        return np.full((2, height, width), np.nan, dtype=np.float32)
    u = (np.arange(width, dtype=np.float64) - k[0, 2]) / k[0, 0]
    v = (np.arange(height, dtype=np.float64) - k[1, 2]) / k[1, 1]
    grid_u, grid_v = np.meshgrid(u, v)
    return np.stack((grid_u, grid_v)).astype(np.float32)


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
    k = None if sample.k is None else rescale_projection(sample.k, new_w / src_w, new_h / src_h)
    rgb = rgb[top : top + height, left : left + width]
    depth = depth[top : top + height, left : left + width]
    if k is not None:
        k[0, 2] -= left
        k[1, 2] -= top
    if flip and flip_draw < FLIP_PROBABILITY:
        rgb, depth = rgb[:, ::-1], depth[:, ::-1]
        if k is not None:
            k[0, 2] = width - 1 - k[0, 2]
    return Example(
        image=torch.from_numpy(np.ascontiguousarray(rgb)),
        depth=torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None],
        rays=torch.from_numpy(pixel_rays(k, height, width)),
    )


def flip_targets(depth: Tensor, rays: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror (..., 1, H, W) depth and (..., 2, H, W) rays left-right; x/z changes sign."""
    rays = rays.flip(-1)
    return depth.flip(-1), torch.cat((-rays[..., 0:1, :, :], rays[..., 1:2, :, :]), dim=-3)
