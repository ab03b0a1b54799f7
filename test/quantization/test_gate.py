"""The gate's figures: AbsRel as the evaluation protocol computes it, cosines, the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixio_ros.evaluation.metrics import depth_metrics
from pixio_ros.model.quantization_record import QuantizationRecord
from pixio_ros.quantization import evenly, score_outputs
from pixio_ros.runtime.backends.parity import abs_rel, compare_int8

RNG = np.random.default_rng(3)


def frame(depth: np.ndarray, features: np.ndarray, embedding: np.ndarray):
    return {
        'depth': torch.from_numpy(depth)[None, None],
        'features': torch.from_numpy(features)[None],
        'embedding': torch.from_numpy(embedding)[None],
    }


def pair(depth_noise: float, feature_noise: float):
    depth = RNG.uniform(0.5, 8.0, (12, 16))
    features = RNG.normal(size=(8, 3, 4))
    embedding = RNG.normal(size=8)
    noisy = depth * (1 + RNG.uniform(-depth_noise, depth_noise, depth.shape))
    shifted = features + RNG.normal(scale=feature_noise, size=features.shape)
    return frame(depth, features, embedding), frame(noisy, shifted, embedding * 1.5)


def test_the_runtime_abs_rel_is_the_evaluation_protocols():
    reference, candidate = pair(0.05, 0.0)
    ref, got = reference['depth'], candidate['depth']
    expected = depth_metrics(got.numpy().ravel(), ref.numpy().ravel())['abs_rel']
    assert abs_rel(ref, got) == pytest.approx(expected, rel=1e-12)
    got_nan = got.clone()
    got_nan[0, 0, 0, 0] = math.nan
    assert abs_rel(ref, got_nan) == math.inf


def test_figures_follow_the_errors_put_in():
    small = [pair(0.001, 0.001) for _ in range(3)]
    large = [pair(0.2, 2.0) for _ in range(3)]
    for frames, passes in ((small, True), (large, False)):
        result = score_outputs(
            [r for r, _ in frames], [c for _, c in frames], max_abs_rel=0.01, min_feature_cos=0.99
        )
        figures = result.figures
        assert set(figures) == {
            'depth_abs_rel',
            'depth_delta1',
            'feature_cos_min',
            'feature_cos_p5',
            'embedding_cos_min',
        }
        assert figures['embedding_cos_min'] == pytest.approx(1.0)  # a scale is no change
        assert figures['feature_cos_min'] <= figures['feature_cos_p5'] <= 1.0
        assert result.passed is passes
        if not passes:
            assert any(f.startswith('depth_abs_rel') for f in result.failures)
            assert any(f.startswith('feature_cos_min') for f in result.failures)
    # uniform noise of +-20 %: the mean relative error is about 10 %
    assert (
        0.07
        < score_outputs(
            [r for r, _ in large], [c for _, c in large], max_abs_rel=1, min_feature_cos=0
        ).figures['depth_abs_rel']
        < 0.13
    )


def test_the_start_up_check_uses_the_records_tolerances():
    record = QuantizationRecord(
        tool='nncf',
        scheme='test',
        source_sha256='0' * 64,
        calibration_source=('bag',),
        calibration_frames=4,
        calibration_sha256='1' * 64,
        validation_source='bag',
        validation_frames=2,
        kept_float=(),
        max_abs_rel=0.01,
        min_feature_cos=0.99,
    )
    reference, candidate = pair(0.2, 2.0)
    results = compare_int8(reference, candidate, record)
    assert results['depth'].measure == 'abs_rel' and results['depth'].tolerance == 0.01
    assert results['features'].measure == '1-cos' and results['features'].tolerance == (
        pytest.approx(0.01)
    )
    assert not results['depth'].ok and not results['features'].ok and results['embedding'].ok
    same = compare_int8(reference, reference, record)
    assert all(result.ok for result in same.values())


def test_frames_are_picked_evenly_first_to_last():
    assert evenly(range(10), 4) == [0, 3, 6, 9]
    assert evenly([5, 7], 4) == [5, 7]
    assert evenly(range(100), 1) == [0]
