"""Depth metrics against hand-computed values, and perfect scores on ground truth itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import (
    METRIC_NAMES,
    check_depth_range,
    depth_metrics,
    mean_metrics,
    score_frame,
)

PERFECT = {
    'abs_rel': 0.0,
    'sq_rel': 0.0,
    'rmse': 0.0,
    'rmse_log': 0.0,
    'log10': 0.0,
    'silog': 0.0,
    'delta1': 1.0,
    'delta2': 1.0,
    'delta3': 1.0,
}


def test_depth_metrics_match_hand_computed_values():
    # pred [1, 2, 4] vs gt [1, 1, 2]: differences [0, 1, 2], log ratios [0, ln2, ln2].
    got = depth_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0]))
    ln2 = math.log(2.0)
    expected = {
        'abs_rel': 2 / 3,
        'sq_rel': 1.0,  # (0 + 1/1 + 4/2) / 3
        'rmse': math.sqrt(5 / 3),
        'rmse_log': ln2 * math.sqrt(2 / 3),
        'log10': 2 * math.log10(2.0) / 3,
        'silog': ln2 * 2 / 3,  # sqrt(2/3 ln2^2 - 0.5 (2/3 ln2)^2)
        'delta1': 1 / 3,
        'delta2': 1 / 3,
        'delta3': 1 / 3,
    }
    assert got == pytest.approx(expected, rel=1e-12)


def test_delta_thresholds_are_powers_of_1_25():
    gt = np.ones(4)
    pred = np.array([1.2, 1 / 1.5, 1.9, 3.0])  # ratios 1.2, 1.5, 1.9, 3 (both directions)
    got = depth_metrics(pred, gt)
    assert (got['delta1'], got['delta2'], got['delta3']) == (0.25, 0.5, 0.75)


def _ramp(shape=(6, 8)) -> np.ndarray:
    return np.linspace(0.5, 6.0, shape[0] * shape[1]).reshape(shape)


@pytest.mark.parametrize('align', ['none', 'median', 'scale_shift', 'scale_shift_inverse'])
def test_ground_truth_against_itself_is_perfect(align):
    gt = _ramp()
    score = score_frame(gt.copy(), gt, align=align, min_depth=1e-3, max_depth=10.0)
    assert score.metrics == pytest.approx(PERFECT, abs=1e-9)
    assert score.valid_pixels == gt.size


@pytest.mark.parametrize(
    ('align', 'make_pred', 'scale', 'shift'),
    [
        ('median', lambda gt: gt / 3.0, 3.0, 0.0),
        ('scale_shift', lambda gt: (gt - 0.3) / 2.5, 2.5, 0.3),
        # inverse depth: 1/gt = 0.5 / pred + 0.1  ->  pred = 0.5 / (1/gt - 0.1)
        ('scale_shift_inverse', lambda gt: 0.5 / (1.0 / gt - 0.1), 0.5, 0.1),
    ],
)
def test_alignment_recovers_known_scale_and_shift(align, make_pred, scale, shift):
    gt = _ramp()
    pred = make_pred(gt)
    raw = score_frame(pred, gt, align='none', min_depth=1e-3, max_depth=10.0)
    aligned = score_frame(pred, gt, align=align, min_depth=1e-3, max_depth=10.0)
    assert raw.metrics['abs_rel'] > 0.05  # the raw prediction really is off
    assert (aligned.scale, aligned.shift) == pytest.approx((scale, shift), abs=1e-9)
    assert aligned.metrics == pytest.approx(PERFECT, abs=1e-9)
    np.testing.assert_allclose(aligned.aligned, gt, rtol=1e-9)


def test_alignment_result_is_clipped_to_depth_range():
    gt = _ramp()
    score = score_frame(gt * 100.0, gt, align='none', min_depth=1e-3, max_depth=10.0)
    assert np.nanmax(score.aligned) == 10.0


def test_invalid_pixels_are_excluded():
    gt = _ramp()
    pred = gt.copy()
    gt[0, :] = 0.0  # RealSense "no return"
    gt[1, :] = 20.0  # beyond max_depth
    pred[2, :3] = np.nan  # the node's "no depth"
    pred[2, 3:] = pred[2, 3:] * 2.0  # wrong but valid
    score = score_frame(pred, gt, align='none', min_depth=1e-3, max_depth=10.0)
    assert score.gt_pixels == 6 * 8 - 16
    assert score.valid_pixels == 6 * 8 - 16 - 3
    assert score.coverage == pytest.approx(29 / 32)
    assert score.metrics['abs_rel'] == pytest.approx(5 / 29)  # 5 pixels at AbsRel 1


def test_too_few_valid_pixels_skips_the_frame():
    gt = np.full((3, 3), 2.0)
    assert score_frame(gt, gt, align='none', min_depth=1e-3, max_depth=10.0) is None


def test_shape_mismatch_is_refused():
    with pytest.raises(EvaluationError, match=r'shape \(2, 2\) differs .* \(3, 3\)'):
        score_frame(np.ones((2, 2)), np.ones((3, 3)), align='none', min_depth=0.1, max_depth=5)


def test_unknown_alignment_is_refused():
    gt = _ramp()
    with pytest.raises(EvaluationError, match="'affine' is unknown; choose one of none"):
        score_frame(gt, gt, align='affine', min_depth=1e-3, max_depth=10.0)


@pytest.mark.parametrize(('low', 'high'), [(0.0, 10.0), (5.0, 1.0), (1.0, float('inf'))])
def test_bad_depth_range_is_refused(low, high):
    with pytest.raises(EvaluationError, match='need 0 < min < max'):
        check_depth_range(low, high)


def test_mean_metrics_averages_over_images():
    a = dict.fromkeys(METRIC_NAMES, 1.0)
    b = dict.fromkeys(METRIC_NAMES, 3.0)
    assert mean_metrics([a, b]) == dict.fromkeys(METRIC_NAMES, 2.0)
    assert all(math.isnan(v) for v in mean_metrics([]).values())
