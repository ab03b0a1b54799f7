"""Depth accuracy metrics of the monocular-depth protocol used by the Pixio paper.

Per image, on valid pixels (min_depth < gt < max_depth and a finite positive prediction):
AbsRel, SqRel, RMSE, RMSE_log, log10, SILog (lambda 0.5) and delta1/2/3 (threshold 1.25^k);
then averaged over images. Images with too few valid pixels are skipped and counted by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from pixio_ros.evaluation.alignment import align_depth
from pixio_ros.evaluation.errors import EvaluationError

DELTA_BASE: Final = 1.25
SILOG_LAMBDA: Final = 0.5
MIN_VALID_PIXELS: Final = 10
METRIC_NAMES: Final = (
    'abs_rel',
    'sq_rel',
    'rmse',
    'rmse_log',
    'log10',
    'silog',
    'delta1',
    'delta2',
    'delta3',
)
# Direction in which each metric improves, for best/worst frame selection and reports.
HIGHER_IS_BETTER: Final = {name: name.startswith('delta') for name in METRIC_NAMES}


@dataclass(frozen=True)
class FrameDepthScore:
    """The metrics of one image plus what the alignment fitted and how many pixels counted."""

    metrics: dict[str, float]
    valid_pixels: int
    gt_pixels: int
    scale: float
    shift: float
    aligned: np.ndarray

    @property
    def coverage(self) -> float:
        """Fraction of valid ground-truth pixels that also had a usable prediction."""
        return self.valid_pixels / self.gt_pixels if self.gt_pixels else 0.0


def check_depth_range(min_depth: float, max_depth: float) -> None:
    """Raise unless 0 < min_depth < max_depth (logs and ratios need positive depth)."""
    if not (0.0 < min_depth < max_depth and np.isfinite(max_depth)):
        raise EvaluationError(
            f'depth range min={min_depth} max={max_depth} is invalid; need 0 < min < max '
            '(for example --min-depth 1e-3 --max-depth 10).'
        )


def valid_mask(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    min_depth: float,
    max_depth: float,
    region: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of evaluated pixels.

    Args:
        pred: (H, W) predicted depth.
        gt: (H, W) ground truth.
        min_depth: valid ground truth is above this.
        max_depth: valid ground truth is below this.
        region: (H, W) bool, the pixels a protocol scores (its crop); None = all.

    Returns:
        `(gt_valid, valid)`: ground truth inside (min_depth, max_depth) (and the region), and
        that intersected with a finite, positive prediction. Both (H, W) bool.
    """
    with np.errstate(invalid='ignore'):
        gt_valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
        if region is not None:
            gt_valid &= region
        valid = gt_valid & np.isfinite(pred) & (pred > 0)
    return gt_valid, valid


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The metrics on matched 1-D arrays of positive depths in metres.

    Args:
        pred: (N,) predicted depth, positive.
        gt: (N,) ground-truth depth, positive.

    Returns:
        Metric name -> value (float). RMSE in metres; the rest are unitless.
    """
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    diff = pred - gt
    squared = diff * diff
    inv_gt = 1.0 / gt
    log_diff = np.log(pred) - np.log(gt)
    abs_log = np.abs(log_diff)
    mean_log = float(np.mean(log_diff))
    mean_sq_log = float(np.mean(log_diff * log_diff))
    # max(pred/gt, gt/pred) < t  <=>  |log pred - log gt| < log t: one log pass serves all.
    return {
        'abs_rel': float(np.mean(np.abs(diff) * inv_gt)),
        'sq_rel': float(np.mean(squared * inv_gt)),
        'rmse': float(np.sqrt(np.mean(squared))),
        'rmse_log': float(np.sqrt(mean_sq_log)),
        'log10': float(np.mean(abs_log) / np.log(10.0)),
        'silog': float(np.sqrt(max(mean_sq_log - SILOG_LAMBDA * mean_log**2, 0.0))),
        'delta1': float(np.mean(abs_log < np.log(DELTA_BASE))),
        'delta2': float(np.mean(abs_log < 2 * np.log(DELTA_BASE))),
        'delta3': float(np.mean(abs_log < 3 * np.log(DELTA_BASE))),
    }


def score_frame(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    align: str,
    min_depth: float,
    max_depth: float,
    min_valid_pixels: int = MIN_VALID_PIXELS,
    region: np.ndarray | None = None,
) -> FrameDepthScore | None:
    """Align and score one image; None when fewer than `min_valid_pixels` pixels are valid.

    Args:
        pred: (H, W) predicted depth in metres at the ground truth's resolution (NaN = none).
        gt: (H, W) ground-truth depth in metres (NaN or out of range = invalid).
        align: alignment mode (see `pixio_ros.evaluation.alignment`).
        min_depth: evaluated range lower bound, metres (exclusive).
        max_depth: evaluated range upper bound, metres (exclusive).
        min_valid_pixels: images with fewer valid pixels are skipped.
        region: (H, W) bool, the pixels scored (a protocol's crop); None = every pixel.
    """
    if pred.shape != gt.shape:
        raise EvaluationError(
            f'prediction shape {pred.shape} differs from ground truth {gt.shape}; resize first.'
        )
    if region is not None and region.shape != gt.shape:
        raise EvaluationError(f'region {region.shape} differs from ground truth {gt.shape}.')
    gt_valid, valid = valid_mask(pred, gt, min_depth=min_depth, max_depth=max_depth, region=region)
    count = int(valid.sum())
    if count < min_valid_pixels:
        return None
    aligned, scale, shift = align_depth(
        pred, gt, valid, align, min_depth=min_depth, max_depth=max_depth
    )
    metrics = depth_metrics(aligned[valid], gt[valid])
    aligned = np.where(valid, aligned, np.nan)
    return FrameDepthScore(metrics, count, int(gt_valid.sum()), scale, shift, aligned)


def mean_metrics(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over images (the protocol's image-level mean); empty -> NaN."""
    if not per_frame:
        return {name: float('nan') for name in METRIC_NAMES}
    return {name: float(np.mean([m[name] for m in per_frame])) for name in METRIC_NAMES}
