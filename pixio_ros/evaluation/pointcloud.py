"""3D metrics between predicted and ground-truth point clouds: Chamfer distance and F-score.

Both depth maps are back-projected through the same camera rays (`pixio_ros.runtime.camera`, which
also undistorts), subsampled deterministically, and compared with open3d's KD-tree
nearest-neighbour distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

DEFAULT_FSCORE_THRESHOLD_M: Final = 0.05
# Both metrics depend on the sampling density, so runs compare only at the same count. On a
# 640x480 sample frame 10k points changed Chamfer by < 1 % and F-score by 2 % against 20k, at
# ~30 ms per frame for both KD-tree directions (20k: ~60 ms).
DEFAULT_MAX_POINTS: Final = 10_000


@dataclass(frozen=True)
class PointCloudScore:
    """Chamfer distance (metres, mean of both directions) and F-score at `threshold` metres."""

    chamfer: float
    precision: float
    recall: float
    fscore: float
    threshold: float


def subsample(points: np.ndarray, max_points: int) -> np.ndarray:
    """Every n-th point so at most `max_points` remain (deterministic, spatially even)."""
    if len(points) <= max_points:
        return points
    stride = int(np.ceil(len(points) / max_points))
    return points[::stride]


def _contiguous64(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(points, dtype=np.float64)


def nearest_distances(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each source point, the distance to its nearest target point (open3d KD-tree)."""
    import open3d as o3d

    # Vector3dVector copies fast only from C-contiguous float64; anything else goes element-wise.
    src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(_contiguous64(source)))
    tgt = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(_contiguous64(target)))
    return np.asarray(src.compute_point_cloud_distance(tgt))


def score_point_clouds(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    threshold: float = DEFAULT_FSCORE_THRESHOLD_M,
    max_points: int = DEFAULT_MAX_POINTS,
) -> PointCloudScore:
    """Chamfer distance and F-score between two (N, 3) clouds in metres.

    Chamfer = (mean pred->gt + mean gt->pred) / 2. Precision is the fraction of predicted points
    within `threshold` of the ground truth, recall the converse; F = 2PR / (P + R).
    """
    pred = subsample(pred, max_points)
    gt = subsample(gt, max_points)
    to_gt = nearest_distances(pred, gt)
    to_pred = nearest_distances(gt, pred)
    precision = float(np.mean(to_gt < threshold))
    recall = float(np.mean(to_pred < threshold))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    chamfer = float(0.5 * (to_gt.mean() + to_pred.mean()))
    return PointCloudScore(chamfer, precision, recall, float(fscore), threshold)
