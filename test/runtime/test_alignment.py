"""Scale alignment to sparse range data: robust fits, pairing, smoothing and reset (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixio_ros.runtime.alignment import (
    AlignmentError,
    AlignOptions,
    DepthPairs,
    ScaleTracker,
    aligned_depth,
    fit_alignment,
    stale_problem,
)
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.sparse_reference import (
    pairs_from_depth_image,
    pairs_from_points,
    transform_points,
)

TRUE_SCALE = 1.3


def noisy_pairs(
    rng: np.random.Generator, predicted_of_true, count: int = 2000, outliers: float = 0.3
) -> tuple[DepthPairs, np.ndarray]:
    """Reference = true depth with 1 % noise, `outliers` of it replaced by junk in 0.2..30 m."""
    true = rng.uniform(0.5, 9.0, count)
    reference = true * (1 + rng.normal(0, 0.01, count))
    junk = rng.random(count) < outliers
    reference[junk] = rng.uniform(0.2, 30.0, junk.sum())
    return DepthPairs(predicted_of_true(true), reference), junk


def test_scale_is_recovered_through_noise_and_30_percent_outliers():
    rng = np.random.default_rng(1)
    pairs, junk = noisy_pairs(rng, lambda true: true / TRUE_SCALE)
    fit = fit_alignment(pairs, 'scale')
    assert fit.scale == pytest.approx(TRUE_SCALE, rel=0.005)
    assert fit.shift == 0.0
    # Oracle: the median ratio over the clean pairs only, which the fit never sees as such.
    clean = np.median(pairs.reference[~junk] / pairs.predicted[~junk])
    assert fit.scale == pytest.approx(clean, rel=0.005)
    assert fit.pairs == 2000 and fit.inliers <= 2000 - 0.5 * junk.sum()
    assert fit.residual < 0.02


def test_scale_and_shift_in_inverse_depth_are_recovered():
    rng = np.random.default_rng(2)
    gain, offset = 0.6, 0.04  # 1/true = gain / predicted + offset

    def predicted(true):
        return gain / (1.0 / true - offset)

    pairs, _ = noisy_pairs(rng, predicted)
    fit = fit_alignment(pairs, 'scale_shift')
    assert fit.scale == pytest.approx(1 / gain, rel=0.01)
    assert fit.shift == pytest.approx(offset, abs=0.002)
    # Independent check of the model: the aligned depth of a predicted 2 m.
    expected = 1.0 / (gain / 2.0 + offset)
    assert float(aligned_depth(np.array([2.0]), fit.scale, fit.shift)[0]) == pytest.approx(
        expected, rel=0.01
    )


def test_aligned_depth_with_no_shift_is_a_product():
    depth = np.array([[1.0, 2.5], [np.nan, 4.0]], dtype=np.float32)
    np.testing.assert_array_equal(aligned_depth(depth, 2.0, 0.0), depth * 2)


def test_depth_image_pairs_at_an_integer_rescale():
    depth = np.arange(1, 1 + 4 * 6, dtype=np.float32).reshape(4, 6)
    # Twice the resolution: reference pixel (v, u) falls into depth pixel (v // 2, u // 2).
    reference = np.zeros((8, 12), dtype=np.float32)
    reference[5, 7] = 10.0
    reference[0, 0] = np.nan
    pairs = pairs_from_depth_image(depth, reference)
    assert pairs.count == 1
    assert pairs.predicted[0] == depth[2, 3] and pairs.reference[0] == 10.0
    # Half the resolution: reference cell (v, u) is sampled at depth pixel (2v + 1, 2u + 1).
    coarse = np.zeros((2, 3), dtype=np.float32)
    coarse[1, 2] = 7.0
    pairs = pairs_from_depth_image(depth, coarse)
    assert pairs.predicted.tolist() == [depth[3, 5]]


@pytest.mark.parametrize('shape', [(5, 6), (4, 9), (8, 6)])
def test_depth_image_of_another_size_is_refused(shape):
    with pytest.raises(AlignmentError, match='sparse_depth'):
        pairs_from_depth_image(np.ones((4, 6), np.float32), np.ones(shape, np.float32))


CAMERA = PinholeCamera(width=64, height=48, fx=50.0, fy=52.0, cx=31.5, cy=23.5)


def test_points_project_onto_the_pixel_that_saw_them():
    depth = np.full((48, 64), 2.0, dtype=np.float32)
    depth[10, 40] = 5.0
    # A point in the optical frame seen at pixel (u=40, v=10) at z = 6.5.
    z = 6.5
    point = np.array([[(40 - CAMERA.cx) * z / CAMERA.fx, (10 - CAMERA.cy) * z / CAMERA.fy, z]])
    behind = np.array([[0.0, 0.0, -1.0]])
    pairs = pairs_from_points(depth, np.vstack([point, behind]), CAMERA, ())
    assert pairs.predicted.tolist() == [5.0]
    assert pairs.reference.tolist() == pytest.approx([z])


def test_extrinsic_moves_the_cloud_into_the_optical_frame():
    # A LiDAR frame (x forward, y left, z up) 10 cm above the camera: optical = R p + t.
    # R maps lidar x -> optical z, lidar y -> optical -x, lidar z -> optical -y.
    rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    qw = 0.5 * math.sqrt(1 + np.trace(rotation))
    qx = (rotation[2, 1] - rotation[1, 2]) / (4 * qw)
    qy = (rotation[0, 2] - rotation[2, 0]) / (4 * qw)
    qz = (rotation[1, 0] - rotation[0, 1]) / (4 * qw)
    extrinsic = (0.0, -0.1, 0.0, qx, qy, qz, qw)
    lidar = np.array([[3.0, 0.5, 0.2]])
    expected = lidar @ rotation.T + np.array([0.0, -0.1, 0.0])
    np.testing.assert_allclose(transform_points(lidar, extrinsic), expected, atol=1e-12)


@pytest.mark.parametrize(
    ('extrinsic', 'message'),
    [((0.0, 0.0, 0.0), 'has 3 values'), ((0, 0, 0, 0, 0, 0, 2.0), 'norm 2.0000')],
)
def test_bad_extrinsic_is_refused(extrinsic, message):
    with pytest.raises(AlignmentError, match=message):
        transform_points(np.zeros((1, 3)), extrinsic)


def fit_of(scale: float, pairs: int = 500, residual: float = 0.01):
    from pixio_ros.runtime.alignment import AlignmentFit

    return AlignmentFit(scale, 0.0, pairs, pairs, residual)


def test_smoothing_is_exponential_in_log_scale_and_a_jump_resets():
    options = AlignOptions(mode='scale', smoothing=0.5, reset_factor=1.5, min_points=50)
    tracker = ScaleTracker()
    assert tracker.update(fit_of(1.2), options).scale == pytest.approx(1.2)  # first: taken
    state = tracker.update(fit_of(1.3), options)
    assert state.scale == pytest.approx(math.sqrt(1.2 * 1.3))  # geometric mean at weight 0.5
    state = tracker.update(fit_of(3.0), options)  # more than 1.5x off: reset
    assert state.scale == pytest.approx(3.0) and state.problem is None


def test_too_few_pairs_or_a_poor_residual_keep_the_last_good_scale():
    options = AlignOptions(mode='scale', smoothing=0.0, min_points=100, max_residual=0.1)
    tracker = ScaleTracker()
    tracker.update(fit_of(1.25), options)
    few = tracker.update(fit_of(2.0, pairs=20), options)
    assert few.scale == 1.25 and 'fewer than align.min_points=100' in few.problem
    poor = tracker.update(fit_of(2.0, residual=0.5), options)
    assert poor.scale == 1.25 and 'align.max_residual' in poor.problem
    assert poor.fitted


def test_stale_or_missing_reference():
    options = AlignOptions(max_gap_ms=50.0)
    assert 'no reference' in stale_problem(None, options)
    assert '80.0 ms' in stale_problem(-80_000_000, options)
    assert stale_problem(30_000_000, options) is None


class Field:
    """A PointField as any message library shows it (name, offset, datatype, count)."""

    def __init__(self, name: str, offset: int, datatype: int) -> None:
        self.name, self.offset, self.datatype, self.count = name, offset, datatype, 1


class Cloud:
    """A minimal PointCloud2 look-alike: the fields cloud_xyz reads, nothing of ours."""

    def __init__(self, fields, rows: list[bytes], width: int, point_step: int, row_step: int):
        self.fields, self.height, self.width = fields, len(rows), width
        self.point_step, self.row_step, self.is_bigendian = point_step, row_step, False
        self.data = b''.join(rows)


def test_cloud_xyz_reads_float64_fields_with_padding_and_row_padding():
    from pixio_ros.runtime.sparse_reference import cloud_xyz

    # Two rows of two points: x y z float64 at offsets 0, 8, 16, an intensity after, 4 pad bytes
    # at the end of each row.
    points = np.arange(12, dtype='<f8').reshape(2, 2, 3)
    rows = []
    for row in points:
        body = b''.join(p.tobytes() + b'\x00' * 8 for p in row)
        rows.append(body + b'\xff' * 4)
    fields = [Field('x', 0, 8), Field('y', 8, 8), Field('z', 16, 8), Field('intensity', 24, 7)]
    xyz = cloud_xyz(Cloud(fields, rows, width=2, point_step=32, row_step=68))
    np.testing.assert_array_equal(xyz, points.reshape(-1, 3))


@pytest.mark.parametrize(
    ('fields', 'size', 'message'),
    [
        ([Field('x', 0, 7), Field('y', 4, 7)], 12, r"no \['z'\]"),
        ([Field('x', 0, 7), Field('y', 4, 7), Field('z', 8, 2)], 12, 'datatype 2'),
        ([Field('x', 0, 7), Field('y', 4, 7), Field('z', 8, 7)], 8, 'truncated'),
    ],
)
def test_cloud_xyz_refuses_what_it_cannot_read(fields, size, message):
    from pixio_ros.runtime.sparse_reference import cloud_xyz

    with pytest.raises(AlignmentError, match=message):
        cloud_xyz(Cloud(fields, [b'\x00' * size], width=1, point_step=12, row_step=12))


def test_aligned_prediction_scales_depth_and_the_head_points_alike():
    from pixio_ros.runtime.alignment import AlignmentState, aligned_prediction
    from pixio_ros.runtime.engine import Prediction

    depth = np.full((2, 3), 2.0, dtype=np.float32)
    points = np.stack([np.ones((2, 3)), np.zeros((2, 3)), depth], axis=-1).astype(np.float32)
    prediction = Prediction(depth=depth, points=points)
    assert aligned_prediction(prediction, AlignmentState()) is prediction  # nothing fitted yet
    aligned = aligned_prediction(prediction, AlignmentState(scale=1.5, fitted=True))
    np.testing.assert_allclose(aligned.depth, 3.0)
    np.testing.assert_allclose(aligned.points[..., 0], 1.5)
    np.testing.assert_allclose(aligned.points[..., 2], 3.0)
