"""`pixio-ros eval`: score a model (or recorded predictions) against ground-truth depth in a bag."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = 'Evaluate depth offline on a rosbag: accuracy metrics, 3D metrics, speed, plots, report.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options (see README: Evaluating on your recordings)."""
    parser.add_argument('bag', type=Path, help='rosbag2 directory (sqlite3 / mcap) or ROS 1 .bag')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--model', type=Path, help='artifact from `pixio-ros export` to run')
    source.add_argument(
        '--prediction-topic',
        help='depth already in the bag to score (e.g. a recording of the node)',
    )
    parser.add_argument('--image-topic', required=True, help='Image or CompressedImage topic')
    parser.add_argument('--camera-info-topic', help='CameraInfo topic; enables 3D metrics')
    parser.add_argument(
        '--depth-topic',
        required=True,
        help='ground-truth depth (16UC1 millimetres or 32FC1 metres)',
    )
    parser.add_argument(
        '--align',
        default='none',
        help='per-image alignment before scoring: none (default, metric), median,'
        ' scale_shift, scale_shift_inverse',
    )
    parser.add_argument('--min-depth', type=float, default=1e-3, help='metres (default 1e-3)')
    parser.add_argument('--max-depth', type=float, default=10.0, help='metres (default 10)')
    parser.add_argument(
        '--stamp-tolerance-ms',
        type=float,
        default=5.0,
        help='max header-stamp difference when pairing (default 5; 0 = exact)',
    )
    parser.add_argument('--max-frames', type=int, help='evaluate only the first N pairs')
    parser.add_argument(
        '--fscore-threshold',
        type=float,
        default=0.05,
        help='F-score distance in metres (default 0.05)',
    )
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda, cuda:N')
    parser.add_argument('--out', type=Path, required=True, help='result directory')
    parser.add_argument(
        '--write-bag',
        type=Path,
        metavar='BAG',
        help='also write the /pixio/* prediction topics: BAG ending in .mcap is '
        'written as that one mcap file; any other BAG as a rosbag2 directory '
        '(metadata.yaml + BAG/<name>.mcap). Both open in Foxglove, ros2 bag and '
        'pixio-ros eval',
    )
    parser.add_argument('--force', action='store_true', help='replace existing outputs')


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the summary table."""
    # Idle OpenMP workers sleep instead of spinning: on a busy 2-core machine spinning made a
    # tiny model's inference 50x slower between numpy-heavy metric steps. Set before torch loads.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    from pixio_ros.evaluation.config import EvalConfig
    from pixio_ros.evaluation.run import run_evaluation

    config = EvalConfig(
        bag=args.bag,
        image_topic=args.image_topic,
        depth_topic=args.depth_topic,
        out=args.out,
        model=args.model,
        prediction_topic=args.prediction_topic,
        camera_info_topic=args.camera_info_topic,
        align=args.align,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        stamp_tolerance_ms=args.stamp_tolerance_ms,
        max_frames=args.max_frames,
        write_bag=args.write_bag,
        force=args.force,
        device=args.device,
        fscore_threshold=args.fscore_threshold,
    )
    document = run_evaluation(config, progress=True)
    print_summary(document)
    return 0


def print_summary(document: dict) -> None:
    """A few lines for the terminal; the full story is in report.md."""
    summary = document['summary']
    frames, depth = summary['frames'], summary['depth']
    if document['model'].get('random_weights'):
        print(
            'WARNING: random-init artifact: depth is NOT meaningful; numbers only exercise '
            'the pipeline.',
            file=sys.stderr,
        )
    print(
        f'frames: {frames["evaluated"]} evaluated of {frames["selected"]} selected '
        f'({frames["paired"]} paired, skipped {frames["skipped"] or "none"})'
    )
    print(
        f'{summary["metrics_kind"]}: AbsRel {depth["abs_rel"]:.4f}  RMSE {depth["rmse"]:.4f} m'
        f'  delta1 {depth["delta1"]:.4f}  SILog {depth["silog"]:.4f}'
    )
    if summary['points_3d']:
        points = summary['points_3d']
        print(f'3D: Chamfer {points["chamfer_m"]:.4f} m  F-score {points["fscore"]:.4f}')
    inference = summary['speed']['inference_ms']
    if inference:
        print(
            f'Engine inference: p50 {inference["p50"]:.1f} ms  p95 {inference["p95"]:.1f} ms;'
            f' replay {summary["speed"]["frames_per_s"]:.2f} frames/s'
        )
    print(f'results in {document["config"]["out"]}')
