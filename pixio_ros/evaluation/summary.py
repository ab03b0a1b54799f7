"""Aggregate per-frame results into the run's summary: counts, mean metrics, 3D, speed."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import numpy as np

from pixio_ros.evaluation.alignment import ALIGN_NONE
from pixio_ros.evaluation.metrics import HIGHER_IS_BETTER, mean_metrics
from pixio_ros.evaluation.replay import STATUS_OK, FrameResult

RANKING_METRIC: Final = 'abs_rel'
PERCENTILES: Final = (50, 95)


def scored(frames: list[FrameResult]) -> list[FrameResult]:
    """Frames that were scored (status ok), in stamp order."""
    return [frame for frame in frames if frame.status == STATUS_OK]


def best_median_worst(frames: list[FrameResult]) -> dict[str, int]:
    """Frame numbers of the best, median and worst scored frame by AbsRel (ties: earlier)."""
    ok = scored(frames)
    if not ok:
        return {}
    sign = -1.0 if HIGHER_IS_BETTER[RANKING_METRIC] else 1.0
    ranked = sorted(ok, key=lambda f: (sign * f.metrics[RANKING_METRIC], f.number))
    return {
        'best': ranked[0].number,
        'median': ranked[(len(ranked) - 1) // 2].number,
        'worst': ranked[-1].number,
    }


def _stats(values: list[float]) -> dict[str, float] | None:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return None
    result = {'mean': float(np.mean(finite))}
    for q in PERCENTILES:
        result[f'p{q}'] = float(np.percentile(finite, q))
    return result


def summarise(
    frames: list[FrameResult], counts: dict[str, int], *, align: str, wall_s: float
) -> dict[str, Any]:
    """The `summary` section of metrics.json.

    Metrics are labelled `aligned_<mode>` or `raw_metric` so nobody mistakes one for the other.
    Timings live apart from metrics: they vary between runs, the metrics do not.
    """
    ok = scored(frames)
    skipped = Counter(frame.status for frame in frames if frame.status != STATUS_OK)
    label = 'raw_metric' if align == ALIGN_NONE else f'aligned_{align}'
    depth = mean_metrics([frame.metrics for frame in ok])
    chamfer = [f.chamfer for f in ok if np.isfinite(f.chamfer)]
    summary: dict[str, Any] = {
        'frames': {**counts, 'evaluated': len(ok), 'skipped': dict(sorted(skipped.items()))},
        'metrics_kind': label,
        'depth': depth,
        'depth_raw_metric': None
        if align == ALIGN_NONE
        else mean_metrics([frame.raw_metrics for frame in ok if frame.raw_metrics]),
        'points_3d': None
        if not chamfer
        else {
            'chamfer_m': float(np.mean(chamfer)),
            'fscore': float(np.mean([f.fscore for f in ok if np.isfinite(f.fscore)])),
        },
        'best_median_worst': best_median_worst(frames),
    }
    inference = _stats([f.inference_ms for f in ok])
    summary['speed'] = {
        'inference_ms': inference,
        'frame_ms': _stats([f.total_ms for f in ok]),
        'frames_per_s': len(frames) / wall_s if wall_s > 0 else None,
        'wall_s': wall_s,
    }
    return summary
