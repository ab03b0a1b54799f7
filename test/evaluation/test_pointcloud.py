"""Back-projection and the 3D metrics (Chamfer, F-score) on hand-made clouds."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.evaluation.pointcloud import score_point_clouds, subsample


def _grid() -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(5.0), np.arange(4.0))
    return np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 3.0)], axis=1)


def test_identical_clouds_score_perfectly():
    score = score_point_clouds(_grid(), _grid())
    assert (score.chamfer, score.precision, score.recall, score.fscore) == (0.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(('threshold', 'fscore'), [(0.05, 1.0), (0.01, 0.0)])
def test_offset_cloud_distance_and_fscore(threshold, fscore):
    gt = _grid()
    pred = gt + np.array([0.0, 0.0, 0.02])  # every nearest neighbour is 2 cm away
    score = score_point_clouds(pred, gt, threshold=threshold)
    assert score.chamfer == pytest.approx(0.02)
    assert score.fscore == fscore


def test_missing_half_of_the_cloud_halves_recall():
    gt = _grid()
    pred = gt[:10]
    score = score_point_clouds(pred, gt, threshold=0.05)
    assert (score.precision, score.recall) == (1.0, 0.5)
    assert score.fscore == pytest.approx(2 * 0.5 / 1.5)


def test_subsample_keeps_at_most_max_points_evenly():
    points = np.arange(30.0).reshape(10, 3)
    np.testing.assert_array_equal(subsample(points, 4), points[::3])
    assert subsample(points, 20) is points
