"""Point selection for published clouds: stride, range limits, voxel averaging (numpy only).

Organized clouds keep the image grid (invalid points NaN) so consumers can index them by pixel;
dense clouds drop invalid points, which voxel averaging requires anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['CloudOptions', 'SelectedPoints', 'flying_pixels', 'gate_mask', 'select_points']

RGB_CHANNELS = 3
# Largest cell count whose linear voxel keys stay inside int64 (with headroom).
MAX_LINEAR_KEY = 2.0**62


@dataclass(frozen=True)
class CloudOptions:
    """How to turn a (H, W, 3) point map into a published cloud.

    Attributes:
        stride: keep every stride-th row and column (1 = all).
        min_range: points closer than this many metres (Euclidean) become invalid; 0 = off.
        max_range: points farther than this many metres become invalid; 0 = off.
        voxel_size: average points per cube of this side in metres; 0 = off. Implies dense.
        dense: drop invalid points (height 1) instead of keeping the organized grid.
        min_confidence: points whose head confidence is below this become invalid; 0 = off.
        max_depth_gradient: flying pixels (see `flying_pixels`) become invalid; 0 = off.
    """

    stride: int = 1
    min_range: float = 0.0
    max_range: float = 0.0
    voxel_size: float = 0.0
    dense: bool = False
    min_confidence: float = 0.0
    max_depth_gradient: float = 0.0


@dataclass
class SelectedPoints:
    """Points and per-point attributes after selection.

    Attributes:
        points: (H', W', 3) float32 metres (organized, NaN invalid) or (1, N, 3) (dense).
        rgb: same leading shape, 3 uint8 channels, or None.
        confidence: same leading shape, float32, or None.
        dense: True when every point is finite (invalid ones were dropped).
    """

    points: np.ndarray
    rgb: np.ndarray | None
    confidence: np.ndarray | None
    dense: bool = False


def _voxel_average(
    points: np.ndarray, rgb: np.ndarray | None, confidence: np.ndarray | None, voxel_size: float
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Average the (N, 3) points (and attributes) that fall into the same voxel."""
    if points.shape[0] == 0:
        return points, rgb, confidence
    # Float cell indices: an int64 cast of points / voxel_size overflows for tiny voxels.
    cells = np.floor(points.astype(np.float64) / voxel_size)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    if float(np.prod(extent)) < MAX_LINEAR_KEY:  # fast path: one int64 key per cell
        index = cells.astype(np.int64)
        width = extent.astype(np.int64)
        keys = (index[:, 0] * width[1] + index[:, 1]) * width[2] + index[:, 2]
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    else:  # tiny voxels over a wide extent: unique rows, slower but without a key to overflow
        _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)

    def mean(values: np.ndarray) -> np.ndarray:
        return (np.bincount(inverse, weights=values, minlength=counts.size) / counts).astype(
            np.float32
        )

    averaged = np.stack([mean(points[:, axis]) for axis in range(3)], axis=1)
    if rgb is not None:
        channels = [np.rint(mean(rgb[:, c].astype(np.float64))) for c in range(RGB_CHANNELS)]
        rgb = np.stack(channels, axis=1).astype(np.uint8)
    if confidence is not None:
        confidence = mean(confidence.astype(np.float64))
    return averaged, rgb, confidence


def flying_pixels(depth: np.ndarray, max_gradient: float) -> np.ndarray:
    """(H, W) bool: flying pixels, whose depth leaves BOTH row (or column) neighbours.

    A pixel flies when its depth differs from both neighbours by more than `max_gradient`
    times its own depth.

    Learned depth blurs a discontinuity into a ramp of pixels floating between the two surfaces
    (the main source of phantom obstacles). Each ramp pixel differs from the pixels on both its
    sides, while a surface's own border pixel has a neighbour on its surface, so the planes on
    either side of a step are kept whole. Invalid neighbours (NaN, the image border) are ignored.
    """
    z = np.asarray(depth, dtype=np.float32)
    padded = np.pad(z, 1, constant_values=np.nan)
    centre = padded[1:-1, 1:-1]
    flying = np.zeros(z.shape, dtype=bool)
    with np.errstate(invalid='ignore'):
        for before, after in (
            (padded[1:-1, :-2], padded[1:-1, 2:]),
            (padded[:-2, 1:-1], padded[2:, 1:-1]),
        ):
            jump = np.fmin(np.abs(centre - before), np.abs(centre - after))
            flying |= jump > max_gradient * centre
    return flying


def gate_mask(
    depth: np.ndarray, confidence: np.ndarray | None, options: CloudOptions
) -> np.ndarray | None:
    """(H, W) bool of the pixels the confidence gate and the edge filter drop; None when off."""
    drop: np.ndarray | None = None
    if options.max_depth_gradient > 0:
        drop = flying_pixels(depth, options.max_depth_gradient)
    if options.min_confidence > 0 and confidence is not None:
        with np.errstate(invalid='ignore'):
            low = ~(confidence >= options.min_confidence)
        drop = low if drop is None else drop | low
    return drop


def select_points(
    points: np.ndarray,
    options: CloudOptions,
    *,
    rgb: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> SelectedPoints:
    """Apply stride, range limits and voxel averaging to a point map.

    Args:
        points: (H, W, 3) float32 metres, NaN where invalid.
        options: the selection to apply.
        rgb: (H, W, 3) uint8 colours of the same pixels, or None.
        confidence: (H, W) float32, or None.
    """
    step = max(1, int(options.stride))
    if step > 1:
        points = points[::step, ::step]
        rgb = rgb[::step, ::step] if rgb is not None else None
        confidence = confidence[::step, ::step] if confidence is not None else None
    if options.min_range > 0 or options.max_range > 0:
        with np.errstate(invalid='ignore'):
            distance = np.sqrt(np.einsum('...i,...i->...', points, points))
            outside = np.zeros(distance.shape, dtype=bool)
            if options.min_range > 0:
                outside |= distance < options.min_range
            if options.max_range > 0:
                outside |= distance > options.max_range
        if outside.any():
            points = points.copy()
            points[outside] = np.nan
    if not (options.dense or options.voxel_size > 0):
        return SelectedPoints(points, rgb, confidence)
    valid = np.isfinite(points).all(axis=-1)
    flat_points = points[valid]
    flat_rgb = rgb[valid] if rgb is not None else None
    flat_confidence = confidence[valid] if confidence is not None else None
    if options.voxel_size > 0:
        flat_points, flat_rgb, flat_confidence = _voxel_average(
            flat_points, flat_rgb, flat_confidence, options.voxel_size
        )
    return SelectedPoints(
        flat_points[np.newaxis],
        flat_rgb[np.newaxis] if flat_rgb is not None else None,
        flat_confidence[np.newaxis] if flat_confidence is not None else None,
        dense=True,
    )
