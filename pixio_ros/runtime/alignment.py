"""Scale alignment of predicted depth to sparse metric range data (numpy only).

A monocular head's depth is metric only as far as its training scenes were like the robot's;
a cheap sparse range sensor (LiDAR, ToF, a depth camera with holes) fixes the scale. Per frame
the reference is brought onto the depth grid as pixel pairs, a robust fit gives the scale
(and the shift in inverse depth), and `ScaleTracker` smooths it over time so it does not
flicker, resets it when the scene jumps and keeps the last good estimate when a frame cannot
be fitted. The node (`align.*` parameters) and `pixio-ros eval --align-to` share this module.

The aligned depth is ``1 / (1 / (scale * depth) + shift)``: with shift 0 (mode `scale`) it is
``scale * depth``; `scale_shift` adds an offset in inverse depth (1/m), MiDaS style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import numpy as np

from pixio_ros.errors import PixioRosError
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.image_codec import decode_depth
from pixio_ros.wire import FLOAT32, FLOAT64, XYZ, field_dtype

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
    'align_frame',
    'aligned_depth',
    'aligned_prediction',
    'cloud_xyz',
    'fit_alignment',
    'fit_scale_shift',
    'pairs_from_depth_image',
    'pairs_from_points',
    'reference_pairs',
    'transform_points',
]

AlignMode: TypeAlias = Literal['off', 'scale', 'scale_shift']
# Outlier rejection: pairs farther than this many robust sigmas (1.4826 MAD) from the fit go.
OUTLIER_SIGMAS: Final = 3.0
MAD_TO_SIGMA: Final = 1.4826
REFIT_ROUNDS: Final = 3
# Floor of the rejection band, so exact data (MAD 0) keeps the pairs within rounding.
MIN_BAND: Final = 1e-6
QUATERNION_TOLERANCE: Final = 1e-3
EXTRINSIC_LENGTH: Final = 7
NS_PER_MS: Final = 1e6


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


def _valid_pairs(predicted: np.ndarray, reference: np.ndarray) -> DepthPairs:
    predicted = predicted.astype(np.float64)
    reference = reference.astype(np.float64)
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(predicted) & np.isfinite(reference) & (predicted > 0) & (reference > 0)
    return DepthPairs(predicted[valid], reference[valid])


def _grid_index(size: int, reference_size: int, what: str) -> np.ndarray:
    """Depth-grid index of each reference row (or column), for sizes an integer factor apart."""
    if reference_size >= size and reference_size % size == 0:
        return np.arange(reference_size) // (reference_size // size)
    if size % reference_size == 0:
        factor = size // reference_size
        return np.arange(reference_size) * factor + factor // 2
    raise AlignmentError(
        f'sparse_depth {what} {reference_size} is not an integer multiple or fraction of the '
        f'depth {what} {size}; register the reference to the camera image'
    )


def pairs_from_depth_image(depth: np.ndarray, reference: np.ndarray) -> DepthPairs:
    """Pairs from a registered reference depth image (0 / NaN = no data) of any integer rescale.

    Each reference pixel is paired with the depth pixel it falls in (a coarser reference is
    sampled at its cells' centres).

    Raises:
        AlignmentError: the sizes are not an integer factor apart, or the aspect differs.
    """
    height, width = depth.shape
    ref_h, ref_w = reference.shape
    rows = _grid_index(height, ref_h, 'height')
    cols = _grid_index(width, ref_w, 'width')
    if ref_h * width != ref_w * height:
        raise AlignmentError(
            f'sparse_depth is {ref_w}x{ref_h}, depth {width}x{height}: another aspect ratio; '
            'register the reference to the camera image'
        )
    with np.errstate(invalid='ignore'):
        v, u = np.nonzero(np.isfinite(reference) & (reference > 0))
    return _valid_pairs(depth[rows[v], cols[u]], reference[v, u])


def _quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    return np.array(
        [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ]
    )


def extrinsic_problem(extrinsic: tuple[float, ...]) -> str | None:
    """Why `extrinsic` is not a pose (x y z qx qy qz qw, unit quaternion), or None."""
    if not extrinsic:
        return None
    if len(extrinsic) != EXTRINSIC_LENGTH:
        return (
            f'align.extrinsic has {len(extrinsic)} values; give [x, y, z, qx, qy, qz, qw] '
            '(the cloud frame in the camera optical frame) or [] for clouds in the optical frame'
        )
    if not all(math.isfinite(value) for value in extrinsic):
        return 'align.extrinsic has a non-finite value; give finite numbers'
    norm = math.sqrt(sum(value * value for value in extrinsic[3:]))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        return (
            f'align.extrinsic quaternion has norm {norm:.4f}, not 1; give a unit quaternion '
            '(qx, qy, qz, qw)'
        )
    return None


def transform_points(points: np.ndarray, extrinsic: tuple[float, ...]) -> np.ndarray:
    """(N, 3) points of the reference frame in the camera optical frame (`extrinsic` pose).

    Raises:
        AlignmentError: `extrinsic` is not a pose.
    """
    problem = extrinsic_problem(extrinsic)
    if problem is not None:
        raise AlignmentError(problem)
    if not extrinsic:
        return points.astype(np.float64)
    x, y, z, qx, qy, qz, qw = extrinsic
    rotation = _quaternion_matrix(qx, qy, qz, qw)
    return points.astype(np.float64) @ rotation.T + np.array([x, y, z])


def pairs_from_points(
    depth: np.ndarray, points: np.ndarray, camera: PinholeCamera, extrinsic: tuple[float, ...]
) -> DepthPairs:
    """Pairs from a sparse cloud: each point in front of the camera projected onto the depth grid.

    The reference depth is the point's z in the optical frame (what the depth image holds);
    projection uses K and the camera's distortion, so the point lands on the pixel that saw it.

    Args:
        depth: (H, W) predicted depth, metres.
        points: (N, 3) reference points in the frame `extrinsic` describes.
        camera: the camera model at the depth resolution.
        extrinsic: see `AlignOptions.extrinsic`.

    Raises:
        AlignmentError: a bad extrinsic, or a camera of another size than the depth.
    """
    height, width = depth.shape
    if (camera.width, camera.height) != (width, height):
        raise AlignmentError(
            f'camera model is {camera.width}x{camera.height} but the depth {width}x{height}'
        )
    optical = transform_points(points, extrinsic)
    with np.errstate(invalid='ignore'):
        ahead = np.isfinite(optical).all(axis=1) & (optical[:, 2] > 0)
    optical = optical[ahead]
    z = optical[:, 2]
    rays = np.stack((optical[:, 0] / z, optical[:, 1] / z), axis=1)
    pixels = camera.project_rays(rays)
    u = np.rint(pixels[:, 0])
    v = np.rint(pixels[:, 1])
    with np.errstate(invalid='ignore'):
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return _valid_pairs(depth[v[inside].astype(int), u[inside].astype(int)], z[inside])


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


def with_mode(options: AlignOptions, mode: AlignMode) -> AlignOptions:
    """`options` with another mode (eval's --align-to picks it on the command line)."""
    return replace(options, mode=mode)


def cloud_xyz(msg: Any) -> np.ndarray:
    """(N, 3) float64 x y z of a sensor_msgs/PointCloud2 (rclpy or rosbags; FLOAT32 or FLOAT64).

    Raises:
        AlignmentError: no x/y/z fields, another datatype, or a payload shorter than declared.
    """
    fields = {field.name: field for field in msg.fields}
    missing = [name for name in XYZ if name not in fields]
    if missing:
        raise AlignmentError(
            f'sparse_points cloud has fields {sorted(fields)}, no {missing}; publish x, y, z'
        )
    height, width, step, row_step = msg.height, msg.width, msg.point_step, msg.row_step
    payload = np.frombuffer(msg.data, dtype=np.uint8)
    if row_step < width * step or payload.size < height * row_step:
        raise AlignmentError(
            f'sparse_points cloud {width}x{height} (point_step {step}, row_step {row_step}) '
            f'has {payload.size} bytes; the message is truncated'
        )
    if height * width == 0:
        return np.empty((0, 3))
    rows = payload[: height * row_step].reshape(height, row_step)
    points = rows[:, : width * step].reshape(height * width, step)
    columns = []
    for name in XYZ:
        field = fields[name]
        if field.datatype not in (FLOAT32, FLOAT64):
            raise AlignmentError(
                f'sparse_points field {name} has datatype {field.datatype}; expected FLOAT32 '
                f'({FLOAT32}) or FLOAT64 ({FLOAT64})'
            )
        dtype = field_dtype(field.datatype, big_endian=bool(msg.is_bigendian))
        if field.offset < 0 or field.offset + dtype.itemsize > step:
            raise AlignmentError(
                f'sparse_points field {name} at offset {field.offset} does not fit point_step '
                f'{step}'
            )
        raw = np.ascontiguousarray(points[:, field.offset : field.offset + dtype.itemsize])
        columns.append(raw.view(dtype)[:, 0].astype(np.float64))
    return np.stack(columns, axis=1)


def reference_pairs(
    depth: np.ndarray, msg: Any, camera: PinholeCamera | None, extrinsic: tuple[float, ...]
) -> DepthPairs:
    """Pairs of `depth` with a reference message (rclpy or rosbags messages alike).

    The reference is a registered depth Image (32FC1 metres or 16UC1 mm) or a PointCloud2.

    Raises:
        AlignmentError: a cloud without CameraInfo, bad sizes, fields or extrinsic.
        ImageCodecError: a depth image of another encoding or inconsistent size fields.
    """
    if hasattr(msg, 'fields'):
        if camera is None:
            raise AlignmentError(
                'sparse_points needs the CameraInfo to project the cloud; publish camera_info '
                'or use sparse_depth'
            )
        return pairs_from_points(depth, cloud_xyz(msg), camera, extrinsic)
    reference = decode_depth(
        msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
    )
    return pairs_from_depth_image(depth, reference)


def align_frame(
    tracker: ScaleTracker,
    depth: np.ndarray,
    found: tuple[int, Any] | None,
    camera: PinholeCamera | None,
    options: AlignOptions,
) -> AlignmentState:
    """One frame's alignment state: fit `depth` to the nearest reference and track the scale.

    Args:
        tracker: the camera's estimate over time (updated in place).
        depth: (H, W) predicted depth, metres.
        found: (frame stamp - reference stamp in ns, reference message), None without one.
        camera: the camera model at the depth resolution (needed for clouds).
        options: the alignment options.

    A problem (no, stale or unusable reference; too few pairs; a poor fit) never raises: the
    state then carries it and the last good scale.
    """
    problem = stale_problem(None if found is None else found[0], options)
    if problem is not None or found is None:
        return tracker.kept(problem or 'no reference')
    try:
        pairs = reference_pairs(depth, found[1], camera, options.extrinsic)
    except PixioRosError as err:
        return tracker.kept(f'reference refused: {err}')
    if pairs.count == 0:
        return tracker.kept('no valid pairs between the depth and the reference')
    return tracker.update(fit_alignment(pairs, options.mode), options)
