"""Sparse range references paired with predicted depth: registered depth images and clouds.

A reference is a registered depth image (any integer rescale of the depth grid, 0 / NaN = no
return) or a PointCloud2 (in the optical frame, or in another frame with a fixed extrinsic),
from rclpy or rosbags alike. Each becomes `DepthPairs` (predicted and reference depth at the
same pixels), which `align_frame` fits and tracks with `pixio_ros.runtime.alignment`. Numpy only.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from pixio_ros.errors import PixioRosError
from pixio_ros.runtime.alignment import (
    AlignmentError,
    AlignmentState,
    AlignOptions,
    DepthPairs,
    ScaleTracker,
    fit_alignment,
    stale_problem,
)
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.image_codec import decode_depth
from pixio_ros.wire import FLOAT32, FLOAT64, XYZ, field_dtype

__all__ = [
    'EXTRINSIC_LENGTH',
    'align_frame',
    'cloud_xyz',
    'extrinsic_problem',
    'pairs_from_depth_image',
    'pairs_from_points',
    'reference_pairs',
    'transform_points',
]

QUATERNION_TOLERANCE: Final = 1e-3
EXTRINSIC_LENGTH: Final = 7


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
