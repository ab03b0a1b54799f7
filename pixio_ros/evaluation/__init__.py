"""Offline depth evaluation on rosbags: metrics, alignment, 3D metrics, replay and reports."""

from pixio_ros.evaluation.alignment import ALIGN_MODES, align_depth, fit_scale_shift
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import (
    METRIC_NAMES,
    FrameDepthScore,
    depth_metrics,
    mean_metrics,
    score_frame,
)
from pixio_ros.evaluation.pointcloud import PointCloudScore, score_point_clouds
from pixio_ros.evaluation.report import read_metrics_json
from pixio_ros.evaluation.run import run_evaluation

__all__ = [
    'ALIGN_MODES',
    'METRIC_NAMES',
    'EvalConfig',
    'EvaluationError',
    'FrameDepthScore',
    'PointCloudScore',
    'align_depth',
    'depth_metrics',
    'fit_scale_shift',
    'mean_metrics',
    'read_metrics_json',
    'run_evaluation',
    'score_frame',
    'score_point_clouds',
]
