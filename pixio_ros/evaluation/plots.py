"""PNG plots for the report: metrics over time, error histogram, best/median/worst panels."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Final

import cv2
import numpy as np

from pixio_ros.evaluation.replay import HISTOGRAM_EDGES, FrameResult, FrameView
from pixio_ros.evaluation.summary import scored
from pixio_ros.runtime.products import colorize
from pixio_ros.units import NS_PER_S

DPI: Final = 100
ERROR_CLIP: Final = 0.5  # relative error shown at full intensity in the error maps
PANEL_MIN_WIDTH_PX: Final = 320  # small test images are upscaled so the captions fit
PANEL_CAPTION_PX: Final = 22
PANEL_FONT_SCALE: Final = 0.45


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_metrics_over_time(frames: list[FrameResult], path: Path) -> None:
    """AbsRel, RMSE and delta1 per frame against time since the first frame."""
    plt = _pyplot()
    ok = scored(frames)
    t0 = frames[0].stamp_ns if frames else 0
    times = [(f.stamp_ns - t0) / NS_PER_S for f in ok]
    fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    for axis, name in zip(axes, ('abs_rel', 'rmse', 'delta1'), strict=True):
        axis.plot(times, [f.metrics[name] for f in ok], marker='.', linewidth=1)
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel('time since first frame [s]')
    fig.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.1, hspace=0.15)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_error_histogram(histogram: np.ndarray, path: Path) -> None:
    """Distribution of per-pixel relative error |pred - gt| / gt over all frames."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    total = max(int(histogram.sum()), 1)
    axis.bar(HISTOGRAM_EDGES[:-1], histogram / total, width=np.diff(HISTOGRAM_EDGES), align='edge')
    axis.set_xlabel(f'relative depth error (last bin includes >= {HISTOGRAM_EDGES[-1]:g})')
    axis.set_ylabel('fraction of valid pixels')
    fig.subplots_adjust(left=0.12, right=0.97, top=0.95, bottom=0.15)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _labelled(image: np.ndarray, label: str) -> np.ndarray:
    """The image with a white caption strip on top (BGR, as OpenCV writes it)."""
    strip = np.full((PANEL_CAPTION_PX, image.shape[1], 3), 255, np.uint8)
    cv2.putText(
        strip,
        label,
        (4, PANEL_CAPTION_PX - 7),
        cv2.FONT_HERSHEY_SIMPLEX,
        PANEL_FONT_SCALE,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.concatenate([strip, image], axis=0)


def plot_panel(view: FrameView, title: str, max_depth: float, path: Path) -> None:
    """RGB | ground truth | prediction | relative error map of one frame, as one PNG.

    Drawn with OpenCV colour maps (turbo for depth on a shared scale, hot for the error) rather
    than matplotlib: a panel costs milliseconds, not a second, on a two-core machine.
    """
    height, width = view.gt.shape
    scale = max(1.0, PANEL_MIN_WIDTH_PX / width)
    size = (round(width * scale), round(height * scale))
    finite_gt = view.gt[np.isfinite(view.gt)]
    high = float(np.percentile(finite_gt, 99)) if finite_gt.size else max_depth
    error = view.relative_error()
    bgr = cv2.resize(
        np.ascontiguousarray(view.rgb[:, :, ::-1]), (width, height), interpolation=cv2.INTER_AREA
    )
    tiles = [
        (bgr, 'RGB'),
        (colorize(view.gt, 0.0, high), f'ground truth 0-{high:.1f} m'),
        (colorize(view.aligned, 0.0, high), f'prediction 0-{high:.1f} m'),
        (colorize(error, 0.0, ERROR_CLIP, cv2.COLORMAP_HOT), f'|err|/gt 0-{ERROR_CLIP:g}'),
    ]
    row = np.concatenate(
        [
            _labelled(cv2.resize(tile, size, interpolation=cv2.INTER_NEAREST), label)
            for tile, label in tiles
        ],
        axis=1,
    )
    panel = _labelled(row, title)
    cv2.imwrite(str(path), panel)
