"""Training losses: the paper's SiLog depth loss and the point-map loss built on it."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

SILOG_LAMBDA = 0.5
"""Variance weight of SiLog (the paper's and Depth Anything's value)."""
CONFIDENCE_SCALE = 0.1
"""Log-depth error at which the confidence target falls to 1/e."""

Total = Callable[[Tensor], Tensor]
"""Sum of a per-process partial sum over every process of a step (identity on one process).

Each loss is a function of sums over the global batch's valid pixels (not a mean of
per-process means), so training on N processes with a global batch B follows the same loss
as one process with batch B; `pixio_ros.training.data_parallel.global_total` makes one.
"""


def _local(partial: Tensor) -> Tensor:
    return partial


def valid_depth(target: Tensor, *, min_depth: float, max_depth: float) -> Tensor:
    """Bool mask of ground truth inside (min_depth, max_depth); NaN counts as invalid."""
    return torch.isfinite(target) & (target > min_depth) & (target < max_depth)


def silog_loss(
    pred: Tensor,
    target: Tensor,
    valid: Tensor,
    lam: float = SILOG_LAMBDA,
    *,
    total: Total = _local,
) -> Tensor:
    """sqrt(mean(d^2) - lam * mean(d)^2), d = log(pred) - log(target) over valid pixels.

    Args:
        pred: (B, 1, H, W) positive depth, metres.
        target: (B, 1, H, W) ground truth, metres.
        valid: (B, 1, H, W) bool; at least one pixel must be set.
        lam: Weight of the squared mean (0: plain log RMSE; 1: fully scale-invariant).
        total: Sums a partial sum over the processes of a step (see `Total`).
    """
    diff = torch.log(pred[valid]) - torch.log(target[valid])
    count = total(valid.sum().to(diff.dtype))
    mean = total(diff.sum()) / count
    mean_square = total(diff.square().sum()) / count
    return torch.sqrt(mean_square - lam * mean.square())


def point_map_loss(
    outputs: dict[str, Tensor],
    depth: Tensor,
    rays: Tensor,
    valid: Tensor,
    *,
    total: Total = _local,
) -> tuple[Tensor, Tensor]:
    """Point-map head loss: SiLog on depth + L1 on rays + confidence regression.

    The confidence learns exp(-|log depth error| / CONFIDENCE_SCALE), a per-pixel estimate of
    how right the depth is, with binary cross-entropy against that (detached) target.

    Args:
        outputs: The head's dict: depth (B,1,H,W), points (B,3,H,W), confidence (B,1,H,W).
        depth: (B, 1, H, W) ground truth, metres.
        rays: (B, 2, H, W) ground-truth (x/z, y/z).
        valid: (B, 1, H, W) bool.
        total: Sums a partial sum over the processes of a step (see `Total`).

    Returns:
        (total loss, SiLog part) so the depth term can be logged on its own.
    """
    pred_depth = outputs['depth']
    silog = silog_loss(pred_depth, depth, valid, total=total)
    pred_rays = outputs['points'][:, 0:2] / pred_depth
    # Pixels the lens model cannot reach have NaN rays (PinholeCamera.rays_at): no ray target.
    valid_rays = valid.expand_as(rays) & rays.isfinite()
    ray_error = (pred_rays[valid_rays] - rays[valid_rays]).abs().sum()
    ray_l1 = total(ray_error) / total(valid_rays.sum().to(ray_error.dtype)).clamp(min=1)
    with torch.no_grad():
        error = (torch.log(pred_depth) - torch.log(depth.clamp(min=1e-6))).abs()
        confidence_target = torch.exp(-error / CONFIDENCE_SCALE)
    confidence = outputs['confidence'].clamp(1e-6, 1 - 1e-6)
    bce_sum = F.binary_cross_entropy(confidence[valid], confidence_target[valid], reduction='sum')
    bce = total(bce_sum) / total(valid.sum().to(bce_sum.dtype))
    return silog + ray_l1 + bce, silog
