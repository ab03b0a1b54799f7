"""Per-image alignment of predicted depth to ground truth before scoring.

Relative-depth models (and random-init heads) are only meaningful up to a scale, or a scale and a
shift; the alignment modes put them on the ground truth's metric scale per image so their shape can
be judged. Metric models are scored with `none`. Reports label aligned numbers as such.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.runtime.alignment import fit_scale_shift

ALIGN_NONE: Final = 'none'
ALIGN_MEDIAN: Final = 'median'
ALIGN_SCALE_SHIFT: Final = 'scale_shift'
ALIGN_SCALE_SHIFT_INVERSE: Final = 'scale_shift_inverse'
ALIGN_MODES: Final = (ALIGN_NONE, ALIGN_MEDIAN, ALIGN_SCALE_SHIFT, ALIGN_SCALE_SHIFT_INVERSE)


def check_align_mode(mode: str) -> str:
    """Return `mode` if it is a known alignment mode, else raise naming the choices."""
    if mode not in ALIGN_MODES:
        raise EvaluationError(
            f'alignment mode {mode!r} is unknown; choose one of {", ".join(ALIGN_MODES)}.'
        )
    return mode


def align_depth(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    mode: str,
    *,
    min_depth: float,
    max_depth: float,
) -> tuple[np.ndarray, float, float]:
    """Align `pred` to `gt` on the `valid` pixels and clip it to the evaluated depth range.

    Args:
        pred: (H, W) predicted depth in metres (positive where `valid`).
        gt: (H, W) ground-truth depth in metres.
        valid: (H, W) bool mask of pixels used for the fit.
        mode: one of `ALIGN_MODES`. `scale_shift_inverse` fits in inverse depth (disparity),
            MiDaS style, and maps back to depth.
        min_depth: lower clip in metres, as in the standard protocol.
        max_depth: upper clip in metres.

    Returns:
        The aligned, clipped depth (H, W) float64 and the fitted scale and shift (1, 0 for none;
        for the inverse mode they act on inverse depth).
    """
    check_align_mode(mode)
    pred64 = pred.astype(np.float64)
    gt = gt.astype(np.float64)  # medians of float32 halves would round differently
    scale, shift = 1.0, 0.0
    if mode == ALIGN_MEDIAN:
        scale = float(np.median(gt[valid]) / np.median(pred64[valid]))
        aligned = pred64 * scale
    elif mode == ALIGN_SCALE_SHIFT:
        scale, shift = fit_scale_shift(pred64[valid], gt[valid])
        aligned = pred64 * scale + shift
    elif mode == ALIGN_SCALE_SHIFT_INVERSE:
        with np.errstate(divide='ignore', invalid='ignore'):
            pred_inv = 1.0 / pred64
            scale, shift = fit_scale_shift(pred_inv[valid], 1.0 / gt[valid])
            aligned_inv = np.maximum(pred_inv * scale + shift, 1.0 / max_depth)
            aligned = 1.0 / aligned_inv
    else:
        aligned = pred64
    return np.clip(aligned, min_depth, max_depth), scale, shift
