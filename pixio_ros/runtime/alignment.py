"""Scale alignment of predicted depth to sparse metric range data (numpy only).

A monocular head's depth is metric only as far as its training scenes were like the robot's;
a cheap sparse range sensor (LiDAR, ToF, a depth camera with holes) fixes the scale. Per frame
the reference becomes pixel pairs on the depth grid (`pixio_ros.runtime.sparse_reference`), a
robust fit here gives the scale (and the shift in inverse depth), and `ScaleTracker` smooths it
over time so it does not flicker, resets it when the scene jumps and keeps the last good
estimate when a frame cannot be fitted. The node (`align.*` parameters) and
`pixio-ros eval --align-to` share both modules.

The aligned depth is ``1 / (1 / (scale * depth) + shift)``: with shift 0 (mode `scale`) it is
``scale * depth``; `scale_shift` adds an offset in inverse depth (1/m), MiDaS style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

import numpy as np

from pixio_ros.errors import PixioRosError
from pixio_ros.units import NS_PER_MS

if TYPE_CHECKING:
    from pixio_ros.runtime.engine import Prediction

__all__ = [
    'AlignMode',
    'AlignOptions',
    'AlignmentError',
    'AlignmentFit',
    'AlignmentState',
    'DepthPairs',
    'ScaleTracker',
    'aligned_depth',
    'aligned_prediction',
    'fit_alignment',
    'fit_scale_shift',
]

AlignMode: TypeAlias = Literal['off', 'scale', 'scale_shift']
# Outlier rejection: pairs farther than this many robust sigmas (1.4826 MAD) from the fit go.
OUTLIER_SIGMAS: Final = 3.0
MAD_TO_SIGMA: Final = 1.4826
REFIT_ROUNDS: Final = 3
# Floor of the rejection band, so exact data (MAD 0) keeps the pairs within rounding.
MIN_BAND: Final = 1e-6


class AlignmentError(PixioRosError):
    """A reference that cannot be paired with the depth (sizes, extrinsic).

    The frame keeps the last good scale.
    """


@dataclass(frozen=True)
class AlignOptions:
    """How alignment runs (the node fills it from `align.*`).

    Attributes:
        mode: off, scale (median ratio) or scale_shift (inverse-depth least squares).
        min_points: fewest valid pairs a fit needs.
        max_gap_ms: largest |stamp difference| between the frame and its reference.
        smoothing: weight of the previous estimate in the exponential average (0 = none).
        reset_factor: a fit off the estimate by more than this factor replaces it at once.
        max_residual: largest AbsRel on the pairs a fit may have to be accepted.
        extrinsic: (x, y, z, qx, qy, qz, qw) of the reference cloud's frame in the camera's
            optical frame; empty = the cloud is in the optical frame already.
    """

    mode: AlignMode = 'off'
    min_points: int = 50
    max_gap_ms: float = 100.0
    smoothing: float = 0.8
    reset_factor: float = 1.5
    max_residual: float = 0.2
    extrinsic: tuple[float, ...] = ()


@dataclass(frozen=True)
class DepthPairs:
    """Predicted and reference depth at the same pixels, (N,) float64 metres, both > 0."""

    predicted: np.ndarray
    reference: np.ndarray

    @property
    def count(self) -> int:
        """How many pairs."""
        return int(self.predicted.size)


@dataclass(frozen=True)
class AlignmentFit:
    """One frame's fit: aligned = 1 / (1 / (scale * depth) + shift).

    Attributes:
        scale: multiplies depth (> 0).
        shift: added to inverse depth, 1/m (0 in mode scale).
        pairs: valid pairs the fit saw.
        inliers: pairs kept after outlier rejection.
        residual: AbsRel of the aligned depth against the reference on the inliers.
    """

    scale: float
    shift: float
    pairs: int
    inliers: int
    residual: float


@dataclass(frozen=True)
class AlignmentState:
    """What a frame was aligned with, and why it kept the last good estimate if it did.

    Attributes:
        scale: the scale in force (smoothed), 1 before any good fit.
        shift: the shift in force, 1/m.
        pairs: valid pairs of this frame (0 without a reference).
        residual: this frame's fit residual (NaN without a fit).
        problem: why this frame's fit was not used (None when it was).
        fitted: whether any good fit has been seen (else depth passes unscaled).
    """

    scale: float = 1.0
    shift: float = 0.0
    pairs: int = 0
    residual: float = math.nan
    problem: str | None = None
    fitted: bool = False


def fit_scale_shift(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares `scale, shift` minimising sum((scale * source + shift - target)^2).

    Args:
        source: (N,) values to map, float.
        target: (N,) values to reach, float.

    Returns:
        The scale and shift, as floats (float64 solve for stability on metre-scale values).
    """
    src = source.astype(np.float64)
    tgt = target.astype(np.float64)
    design = np.stack([src, np.ones_like(src)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, tgt, rcond=None)
    return float(scale), float(shift)


def _band(residuals: np.ndarray) -> float:
    """Rejection half-width: OUTLIER_SIGMAS robust sigmas of `residuals` (median-centred)."""
    mad = float(np.median(np.abs(residuals - np.median(residuals))))
    return max(OUTLIER_SIGMAS * MAD_TO_SIGMA * mad, MIN_BAND)


def _robust_scale(pairs: DepthPairs) -> tuple[float, np.ndarray]:
    """Median of reference/predicted in log space, refitted on the pairs within the band."""
    log_ratio = np.log(pairs.reference) - np.log(pairs.predicted)
    keep = np.ones(log_ratio.shape, dtype=bool)
    centre = float(np.median(log_ratio))
    for _ in range(REFIT_ROUNDS):
        keep = np.abs(log_ratio - centre) <= _band(log_ratio[keep] - centre)
        if not keep.any():
            break
        centre = float(np.median(log_ratio[keep]))
    return math.exp(centre), keep


def _robust_scale_shift(pairs: DepthPairs) -> tuple[float, float, np.ndarray]:
    """Inverse-depth least squares, started from the robust scale, refitted on the inliers."""
    scale, keep = _robust_scale(pairs)
    inverse_pred = 1.0 / pairs.predicted
    inverse_ref = 1.0 / pairs.reference
    gain, offset = 1.0 / scale, 0.0
    for _ in range(REFIT_ROUNDS):
        if np.count_nonzero(keep) < 2:
            break
        gain, offset = fit_scale_shift(inverse_pred[keep], inverse_ref[keep])
        residuals = inverse_ref - (gain * inverse_pred + offset)
        keep = np.abs(residuals) <= _band(residuals[keep])
    if not (gain > 0 and math.isfinite(gain)):
        return scale, 0.0, keep
    return 1.0 / gain, offset, keep


def aligned_depth(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Depth aligned with `scale` and `shift`: 1 / (1 / (scale * depth) + shift), float32.

    Pixels whose aligned inverse depth is not positive (behind infinity) become NaN.
    """
    scaled = depth.astype(np.float32) * np.float32(scale)
    if shift == 0.0:
        return scaled
    with np.errstate(divide='ignore', invalid='ignore'):
        inverse = 1.0 / scaled + np.float32(shift)
        return np.where(inverse > 0, 1.0 / inverse, np.nan).astype(np.float32)


def fit_alignment(pairs: DepthPairs, mode: AlignMode) -> AlignmentFit:
    """The robust fit of `mode` on `pairs` (which must not be empty)."""
    if mode == 'scale_shift':
        scale, shift, keep = _robust_scale_shift(pairs)
    else:
        scale, keep = _robust_scale(pairs)
        shift = 0.0
    kept = DepthPairs(pairs.predicted[keep], pairs.reference[keep])
    if kept.count:
        aligned = aligned_depth(kept.predicted, scale, shift).astype(np.float64)
        residual = float(np.mean(np.abs(aligned - kept.reference) / kept.reference))
    else:
        residual = math.nan
    return AlignmentFit(scale, shift, pairs.count, kept.count, residual)


class ScaleTracker:
    """The scale in force over time: exponential smoothing, reset on jumps, last good kept.

    Smoothing acts on log-scale (a 2x and a 0.5x error weigh alike). A fit off the estimate by
    more than `reset_factor` (the scene changed, the sensor was swapped) replaces it at once.
    """

    def __init__(self) -> None:
        self._scale = 1.0
        self._shift = 0.0
        self._fitted = False

    def reset(self) -> None:
        """Forget the estimate (the next good fit is taken as it is)."""
        self.__init__()  # type: ignore[misc]

    def kept(self, problem: str, pairs: int = 0, residual: float = math.nan) -> AlignmentState:
        """A frame without a usable fit: the last good estimate stays in force."""
        return AlignmentState(self._scale, self._shift, pairs, residual, problem, self._fitted)

    def update(self, fit: AlignmentFit, options: AlignOptions) -> AlignmentState:
        """Take `fit` into the estimate, or keep the last good one when it is not usable."""
        if fit.inliers < options.min_points:
            return self.kept(
                f'{fit.inliers} valid pairs, fewer than align.min_points={options.min_points}',
                fit.pairs,
                fit.residual,
            )
        if not (math.isfinite(fit.residual) and fit.residual <= options.max_residual):
            return self.kept(
                f'fit residual AbsRel {fit.residual:.3f} exceeds align.max_residual='
                f'{options.max_residual}',
                fit.pairs,
                fit.residual,
            )
        jump = abs(math.log(fit.scale / self._scale))
        if not self._fitted or jump > math.log(options.reset_factor) or options.smoothing == 0:
            self._scale, self._shift = fit.scale, fit.shift
        else:
            weight = options.smoothing
            self._scale = math.exp(
                weight * math.log(self._scale) + (1 - weight) * math.log(fit.scale)
            )
            self._shift = weight * self._shift + (1 - weight) * fit.shift
        self._fitted = True
        return AlignmentState(self._scale, self._shift, fit.pairs, fit.residual, None, True)


def stale_problem(gap_ns: int | None, options: AlignOptions) -> str | None:
    """Why the nearest reference (`gap_ns` from the frame; None = none yet) is unusable."""
    if gap_ns is None:
        return 'no reference received on sparse_depth or sparse_points'
    if abs(gap_ns) > options.max_gap_ms * NS_PER_MS:
        return (
            f'nearest reference is {abs(gap_ns) / NS_PER_MS:.1f} ms from the frame, more than '
            f'align.max_gap_ms={options.max_gap_ms}'
        )
    return None


def aligned_prediction(prediction: Prediction, state: AlignmentState) -> Prediction:
    """`prediction` with depth (and a point-map head's points) aligned by `state`.

    Without a good fit yet the prediction is returned unchanged (nothing to align with).
    """
    if not state.fitted or prediction.depth is None:
        return prediction
    depth = aligned_depth(prediction.depth, state.scale, state.shift)
    points = prediction.points
    if points is not None:
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = depth / prediction.depth
        points = (points * ratio[..., np.newaxis]).astype(np.float32)
    return replace(prediction, depth=depth, points=points)
