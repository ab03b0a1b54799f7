"""Write an evaluation's files: metrics.json, per_frame.csv, report.md (plots in plots.py)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Final

from pixio_ros.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from pixio_ros.evaluation.replay import FrameResult

METRICS_FILE: Final = 'metrics.json'
PER_FRAME_FILE: Final = 'per_frame.csv'
REPORT_FILE: Final = 'report.md'
PLOT_FILES: Final = {
    'over_time': 'metrics_over_time.png',
    'histogram': 'error_histogram.png',
    'best': 'panel_best.png',
    'median': 'panel_median.png',
    'worst': 'panel_worst.png',
}
CSV_COLUMNS: Final = (
    'frame',
    'stamp_ns',
    'status',
    'valid_pixels',
    'coverage',
    'scale',
    'shift',
    *METRIC_NAMES,
    'chamfer_m',
    'fscore',
    'inference_ms',
    'frame_ms',
    'detail',
)
# The numeric per-frame columns: the time series of a Rerun recording (`rerun_recording.py`).
FRAME_SERIES: Final = CSV_COLUMNS[CSV_COLUMNS.index('valid_pixels') : CSV_COLUMNS.index('detail')]


def jsonable(value: Any) -> Any:
    """NaN/inf -> None recursively (JSON has no NaN), numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, 'item') and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics_json(document: dict[str, Any], path: Path) -> None:
    """The whole run as JSON: summary, config, model (sha256), bag info."""
    path.write_text(json.dumps(jsonable(document), indent=2, sort_keys=False) + '\n')


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return '' if math.isnan(value) else repr(value)
    return str(value)


def frame_row(f: FrameResult) -> dict[str, Any]:
    """One frame's values by CSV column (NaN where a value does not exist)."""
    metrics = [f.metrics.get(name, float('nan')) for name in METRIC_NAMES]
    values = [
        f.number,
        f.stamp_ns,
        f.status,
        f.valid_pixels,
        f.coverage,
        f.scale,
        f.shift,
        *metrics,
        f.chamfer,
        f.fscore,
        f.inference_ms,
        f.total_ms,
        f.detail,
    ]
    return dict(zip(CSV_COLUMNS, values, strict=True))


def write_per_frame_csv(frames: list[FrameResult], path: Path) -> None:
    """One row per planned frame, skipped ones included with their reason."""
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for f in frames:
            writer.writerow([_cell(v) for v in frame_row(f).values()])


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def _model_lines(model: dict[str, Any]) -> list[str]:
    if 'prediction_topic' in model:
        return [f'- prediction: recorded topic `{model["prediction_topic"]}`']
    lines = [
        f'- model: `{model["path"]}` (sha256 `{model["sha256"]}`)',
        f'- size {model.get("model_size", "?")}, head {model.get("head_kind", "?")}, '
        f'input {model.get("input_size", "?")}, device {model.get("device", "?")}',
    ]
    if model.get('random_weights'):
        metadata = model.get('metadata') or {}
        if metadata.get('head_trained') and not metadata.get('encoder_pretrained', True):
            lines.append(
                "- **WARNING: this artifact's encoder has random weights (its head was trained "
                'on them, e.g. by `pixio-ros demo` on synthetic scenes); these numbers say '
                'nothing about Pixio.**'
            )
        else:
            lines.append(
                '- **WARNING: this artifact has random weights; its depth is not meaningful '
                'and these numbers only exercise the pipeline.**'
            )
    return lines


def _source_lines(document: dict[str, Any]) -> list[str]:
    """Where the frames came from: the bag and its topics, or the dataset."""
    config = document['config']
    if 'dataset' in document:
        dataset = document['dataset']
        extras = ', '.join(
            f'{key.replace("_", " ")} {dataset[key]}'
            for key in ('split', 'file_list', 'listed_without_ground_truth', 'associated')
            if key in dataset
        )
        lines = [
            f'- dataset: {dataset["title"]} `{dataset["path"]}`'
            + (f' ({extras})' if extras else '')
        ]
        camera = dataset.get('camera')
        if camera:
            lines.append(
                f'- camera: {camera["width"]}x{camera["height"]}, fx {camera["fx"]:.2f}, fy '
                f'{camera["fy"]:.2f}, cx {camera["cx"]:.2f}, cy {camera["cy"]:.2f}'
                + (f', {camera["distortion_model"]} {camera["d"]}' if any(camera['d']) else '')
            )
        return lines
    return [
        f'- bag: `{document["bag"]["path"]}`',
        f'- image `{config["image_topic"]}`, ground truth `{config["depth_topic"]}`, '
        f'camera info `{config["camera_info_topic"]}`',
    ]


def _protocol_lines(document: dict[str, Any]) -> list[str]:
    """The protocol (name, crop and its pixel box per ground-truth size, range) or the range."""
    config = document['config']
    protocol = document.get('protocol')
    if not protocol:
        return [
            f'- depth range ({config["min_depth"]}, {config["max_depth"]}) m, stamp tolerance '
            f'{config["stamp_tolerance_ms"]} ms, alignment **{config["align"]}**'
        ]
    boxes = '; '.join(
        f'{size}: rows {box[0]}:{box[1]}, columns {box[2]}:{box[3]}'
        for size, box in protocol['crop_boxes'].items()
    )
    return [
        f'- protocol **{protocol["name"]}**: {protocol["crop"]} crop ({boxes or "no frame"}), '
        f'depth range ({protocol["min_depth"]}, {protocol["max_depth"]}) m, alignment '
        f'**{config["align"]}**',
        f'- {protocol["prediction"]}; {protocol["averaging"]} ({protocol["reference"]})',
    ]


def _frame_counts(frames: dict[str, Any]) -> str:
    """The Frames section's sentence (bag pairing counts, or the dataset's)."""
    evaluated = f'**{frames["evaluated"]} evaluated**, skipped: {frames["skipped"] or "none"}.'
    if 'paired' not in frames:
        return f'{frames["listed"]} frames listed, {frames["selected"]} selected, {evaluated}'
    return (
        f'{frames["paired"]} image/depth pairs ({frames["unmatched_images"]} images and '
        f'{frames["unmatched_depth"]} depth messages unmatched); {frames["selected"]} '
        f'selected, {evaluated}'
    )


def write_report_md(document: dict[str, Any], plots: dict[str, str], path: Path) -> None:
    """A human summary with the metric table, pairing counts, speed and the plots."""
    summary, config = document['summary'], document['config']
    frames = summary['frames']
    kind = summary['metrics_kind']
    lines = [
        '# Depth evaluation',
        '',
        *_source_lines(document),
        *_model_lines(document['model']),
        *_protocol_lines(document),
        '',
        '## Frames',
        '',
        _frame_counts(frames),
        '',
        f'## Depth metrics ({kind.replace("_", " ")}; mean over images)',
        '',
        f'| metric | {kind} | raw metric | better |',
        '|---|---|---|---|',
    ]
    raw = summary.get('depth_raw_metric') or {}
    for name in METRIC_NAMES:
        better = 'higher' if HIGHER_IS_BETTER[name] else 'lower'
        lines.append(
            f'| {name} | {_fmt(summary["depth"][name])} | '
            f'{_fmt(raw.get(name)) if raw else "(same)"} | {better} |'
        )
    points = summary['points_3d']
    if points:
        lines += [
            '',
            f'3D: Chamfer {_fmt(points["chamfer_m"])} m, F-score@'
            f'{config["fscore_threshold"]} m {_fmt(points["fscore"])}.',
        ]
    sparse = document.get('sparse_alignment')
    if sparse:
        lines += [
            '',
            f'## Online scale alignment to {sparse["topic"]} ({sparse["mode"]})',
            '',
            '| AbsRel before | AbsRel aligned | scale median (min..max) | frames kept last scale |',
            '|---|---|---|---|',
            f'| {_fmt(sparse["abs_rel_before"])} | {_fmt(sparse["abs_rel_after"])} | '
            f'{_fmt(sparse["scale_median"])} ({_fmt(sparse["scale_min"])}..'
            f'{_fmt(sparse["scale_max"])}) | {sparse["frames_kept_last_scale"]} of '
            f'{sparse["frames"]} |',
        ]
    speed = summary['speed']
    inference = speed['inference_ms']
    lines += ['', '## Speed', '']
    if inference:
        lines.append(
            f'- Engine inference: mean {_fmt(inference["mean"], 1)} ms, p50 '
            f'{_fmt(inference["p50"], 1)} ms, p95 {_fmt(inference["p95"], 1)} ms'
        )
    lines.append(
        f'- replay throughput: {_fmt(speed["frames_per_s"], 2)} frames/s '
        f'({_fmt(speed["wall_s"], 1)} s wall, decoding and metrics included)'
    )
    lines += ['', '## Plots', '']
    picks = summary['best_median_worst']
    for key, filename in plots.items():
        caption = f'{key} frame (#{picks[key]})' if key in picks else key.replace('_', ' ')
        lines.append(f'![{caption}]({filename})')
    path.write_text('\n'.join(lines) + '\n')


def read_metrics_json(path: Path) -> dict[str, Any]:
    """Load a metrics.json written by `write_metrics_json`."""
    return json.loads(Path(path).read_text())
