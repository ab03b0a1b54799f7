"""`eval --align-to TOPIC`: the node's online scale alignment, replayed on a bag and scored.

The node aligns each frame's depth to the sparse reference nearest in stamp, smoothing the
scale over time and keeping the last good one when a frame cannot be fitted
(`pixio_ros.runtime.alignment`). This module runs the same steps over the bag's reference
topic, so a user measures on their own recordings what alignment does: AbsRel before and after,
and the scale over time (`alignment.csv`, `alignment_scale.png`, `sparse_alignment` in
metrics.json).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from pixio_ros.data.bag import BagReader
from pixio_ros.data.stamps import nearest_index
from pixio_ros.runtime.alignment import (
    AlignmentState,
    AlignMode,
    AlignOptions,
    ScaleTracker,
    aligned_depth,
)
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.sparse_reference import align_frame
from pixio_ros.units import NS_PER_S

__all__ = [
    'ALIGNMENT_CSV',
    'ALIGNMENT_PLOT',
    'REFERENCE_TYPES',
    'AlignedFrame',
    'SparseAligner',
    'plot_scale_over_time',
]

REFERENCE_TYPES: Final = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/PointCloud2')
ALIGNMENT_CSV: Final = 'alignment.csv'
ALIGNMENT_PLOT: Final = 'alignment_scale.png'
DPI: Final = 110


@dataclass(frozen=True)
class AlignedFrame:
    """One frame's alignment and its AbsRel without and with it."""

    number: int
    stamp_ns: int
    state: AlignmentState
    abs_rel_before: float = math.nan
    abs_rel_after: float = math.nan


class SparseAligner:
    """Aligns each frame's predicted depth to the reference topic, as the node would.

    Args:
        bag: the open bag.
        topic: the reference (sensor_msgs/Image registered depth, or PointCloud2).
        options: the node's `align.*` values (mode, min_points, max_gap_ms, ...).

    Raises:
        DataError: the topic is missing or of another type.
    """

    def __init__(self, bag: BagReader, topic: str, options: AlignOptions) -> None:
        bag.require_topic(topic, REFERENCE_TYPES, option='--align-to')
        self.topic = topic
        self.options = options
        self._references = bag.messages(topic)  # in stamp order
        self._stamps = [reference.stamp_ns for reference in self._references]
        self._tracker = ScaleTracker()
        self.frames: dict[int, AlignedFrame] = {}

    @property
    def mode(self) -> AlignMode:
        """The fit mode."""
        return self.options.mode

    def align(
        self, number: int, stamp_ns: int, depth: np.ndarray, camera: PinholeCamera | None
    ) -> tuple[np.ndarray, AlignmentState]:
        """The aligned depth of frame `number` and its state (re-runs reuse the first state)."""
        known = self.frames.get(number)
        if known is not None:
            state = known.state
        else:
            found = None
            if self._references:
                reference = self._references[nearest_index(self._stamps, stamp_ns)]
                found = (stamp_ns - reference.stamp_ns, reference.msg)
            state = align_frame(self._tracker, depth, found, camera, self.options)
            self.frames[number] = AlignedFrame(number, stamp_ns, state)
        if not state.fitted:
            return depth, state
        return aligned_depth(depth, state.scale, state.shift), state

    def scored(self, number: int, before: float, after: float) -> None:
        """Record frame `number`'s AbsRel without and with alignment."""
        frame = self.frames[number]
        self.frames[number] = AlignedFrame(frame.number, frame.stamp_ns, frame.state, before, after)

    def summary(self) -> dict[str, Any]:
        """The `sparse_alignment` section of metrics.json."""
        frames = sorted(self.frames.values(), key=lambda frame: frame.stamp_ns)
        scored = [f for f in frames if math.isfinite(f.abs_rel_after)]
        scales = [f.state.scale for f in frames if f.state.fitted]
        return {
            'topic': self.topic,
            'mode': self.mode,
            'frames': len(frames),
            'frames_kept_last_scale': sum(f.state.problem is not None for f in frames),
            'abs_rel_before': float(np.mean([f.abs_rel_before for f in scored]))
            if scored
            else None,
            'abs_rel_after': float(np.mean([f.abs_rel_after for f in scored])) if scored else None,
            'scale_median': float(np.median(scales)) if scales else None,
            'scale_min': float(np.min(scales)) if scales else None,
            'scale_max': float(np.max(scales)) if scales else None,
        }

    def write_csv(self, path: Path) -> None:
        """One row per frame: the scale in force, pairs, residual, why kept, AbsRel both ways."""
        with path.open('w', newline='') as handle:
            writer = csv.writer(handle)
            writer.writerow(
                (
                    'frame',
                    'stamp_ns',
                    'scale',
                    'shift',
                    'pairs',
                    'residual',
                    'kept_last_scale',
                    'abs_rel_before',
                    'abs_rel_after',
                    'problem',
                )
            )
            for f in sorted(self.frames.values(), key=lambda frame: frame.stamp_ns):
                state = f.state
                writer.writerow(
                    (
                        f.number,
                        f.stamp_ns,
                        f'{state.scale:.6g}',
                        f'{state.shift:.6g}',
                        state.pairs,
                        f'{state.residual:.6g}',
                        str(state.problem is not None).lower(),
                        f'{f.abs_rel_before:.6g}',
                        f'{f.abs_rel_after:.6g}',
                        state.problem or '',
                    )
                )


def plot_scale_over_time(aligner: SparseAligner, path: Path) -> None:
    """The scale in force and AbsRel before / after against time since the first frame."""
    from pixio_ros.evaluation.plots import _pyplot

    plt = _pyplot()
    frames = sorted(aligner.frames.values(), key=lambda frame: frame.stamp_ns)
    t0 = frames[0].stamp_ns if frames else 0
    times = [(f.stamp_ns - t0) / NS_PER_S for f in frames]
    fig, (scale_axis, error_axis) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    scale_axis.plot(times, [f.state.scale for f in frames], marker='.', linewidth=1)
    kept = [(t, f.state.scale) for t, f in zip(times, frames, strict=True) if f.state.problem]
    if kept:
        scale_axis.scatter(*zip(*kept, strict=True), color='tab:red', label='kept last scale')
        scale_axis.legend()
    scale_axis.set_ylabel(f'scale ({aligner.mode})')
    error_axis.plot(times, [f.abs_rel_before for f in frames], marker='.', label='before')
    error_axis.plot(times, [f.abs_rel_after for f in frames], marker='.', label='aligned')
    error_axis.set_ylabel('abs_rel')
    error_axis.legend()
    error_axis.set_xlabel('time since first frame [s]')
    for axis in (scale_axis, error_axis):
        axis.grid(alpha=0.3)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
