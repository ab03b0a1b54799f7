"""`pixio-ros eval`: score a model (or recorded predictions) against ground-truth depth in a bag."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pixio_ros.commands.args import PROTOCOL_CHOICES, add_dataset_options

HELP = (
    'Evaluate depth offline on a rosbag or a public dataset (NYUv2, KITTI, TUM RGB-D): '
    'accuracy metrics, 3D metrics, speed, plots, report. Under torchrun the frames are '
    'shared between the processes and rank 0 writes the one-process result.'
)
TUM_ASSOCIATION_MS = 20.0
"""--stamp-tolerance-ms default for TUM RGB-D: the 0.02 s window of the benchmark's associate.py."""
BAG_STAMP_TOLERANCE_MS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options (see README: Evaluating on your recordings)."""
    parser.add_argument(
        'bag',
        type=Path,
        metavar='PATH',
        help='rosbag2 directory (sqlite3 / mcap) or ROS 1 .bag; with --dataset, the dataset',
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--model', type=Path, help='artifact from `pixio-ros export` to run')
    source.add_argument(
        '--prediction-topic',
        help='depth already in the bag to score (e.g. a recording of the node)',
    )
    parser.add_argument('--image-topic', help='Image or CompressedImage topic (bags)')
    parser.add_argument('--camera-info-topic', help='CameraInfo topic; enables 3D metrics')
    parser.add_argument(
        '--depth-topic',
        help='ground-truth depth (16UC1 millimetres or 32FC1 metres) (bags)',
    )
    parser.add_argument(
        '--align',
        default='none',
        help='per-image alignment before scoring: none (default, metric), median,'
        ' scale_shift, scale_shift_inverse',
    )
    parser.add_argument(
        '--align-to',
        metavar='TOPIC',
        help="replay the node's online scale alignment against this sparse reference "
        '(registered depth Image or PointCloud2 in the optical frame) and report AbsRel '
        'before / after and the scale over time',
    )
    parser.add_argument(
        '--align-to-mode',
        default='scale',
        choices=('scale', 'scale_shift'),
        help="the fit --align-to uses (the node's align.mode; default scale)",
    )
    parser.add_argument(
        '--min-depth', type=float, help="metres (default: the protocol's / dataset's, else 1e-3)"
    )
    parser.add_argument(
        '--max-depth',
        type=float,
        help="metres (default: the protocol's / dataset's: nyuv2 10, kitti 80; else 10)",
    )
    parser.add_argument(
        '--protocol',
        choices=PROTOCOL_CHOICES,
        help="the paper's evaluation protocol: nyuv2 (Eigen crop, 1e-3..10 m) or kitti (Garg "
        "crop, 1e-3..80 m); default: the --dataset's (none for tum, folder and bags)",
    )
    parser.add_argument(
        '--stamp-tolerance-ms',
        type=float,
        help='max header-stamp difference when pairing (default 5; 0 = exact); TUM: colour/depth '
        f'association window (default {TUM_ASSOCIATION_MS:g})',
    )
    parser.add_argument('--max-frames', type=int, help='evaluate only the first N pairs')
    parser.add_argument(
        '--fscore-threshold',
        type=float,
        default=0.05,
        help='F-score distance in metres (default 0.05)',
    )
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda, cuda:N')
    parser.add_argument(
        '--backend',
        default='auto',
        choices=('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt'),
        help='Engine backend (default auto: the fastest installed one that reads the artifact)',
    )
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
    parser.add_argument(
        '--rerun',
        type=Path,
        metavar='RUN.rrd',
        help='also write a Rerun recording of the scored frames (RGB, depths under the '
        "camera's pinhole, both clouds, error image, per-frame metrics on the bag's timeline); "
        'needs pixio_ros[viz]; open it with `rerun RUN.rrd`',
    )
    parser.add_argument('--force', action='store_true', help='replace existing outputs')
    add_dataset_options(parser, split_default='test')


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the summary table."""
    # Idle OpenMP workers sleep instead of spinning: on a busy 2-core machine spinning made a
    # tiny model's inference 50x slower between numpy-heavy metric steps. Set before torch loads.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    from pixio_ros.evaluation.config import EvalConfig, resolve_protocol_and_range
    from pixio_ros.evaluation.run import run_evaluation_on_ranks

    protocol, min_depth, max_depth = resolve_protocol_and_range(
        dataset=args.dataset,
        protocol=args.protocol,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
    )
    tolerance = args.stamp_tolerance_ms
    if tolerance is None:
        tolerance = TUM_ASSOCIATION_MS if args.dataset == 'tum' else BAG_STAMP_TOLERANCE_MS
    config = EvalConfig(
        bag=args.bag,
        image_topic=args.image_topic or '',
        depth_topic=args.depth_topic or '',
        out=args.out,
        model=args.model,
        prediction_topic=args.prediction_topic,
        camera_info_topic=args.camera_info_topic,
        align=args.align,
        min_depth=min_depth,
        max_depth=max_depth,
        stamp_tolerance_ms=tolerance,
        max_frames=args.max_frames,
        write_bag=args.write_bag,
        rerun=args.rerun,
        force=args.force,
        device=args.device,
        backend=args.backend,
        fscore_threshold=args.fscore_threshold,
        dataset=args.dataset,
        split=args.split,
        data_root=args.data_root,
        depth_root=args.depth_root,
        protocol=protocol,
        align_to=args.align_to,
        align_to_mode=args.align_to_mode,
    )
    document = run_evaluation_on_ranks(config, progress=True)
    if document is not None:  # None on the ranks other than 0 under torchrun
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
    found = f'{frames["paired"]} paired' if 'paired' in frames else f'{frames["listed"]} listed'
    print(
        f'frames: {frames["evaluated"]} evaluated of {frames["selected"]} selected '
        f'({found}, skipped {frames["skipped"] or "none"})'
    )
    protocol = document.get('protocol')
    if protocol:
        print(
            f'protocol {protocol["name"]}: {protocol["crop"]} crop, depth '
            f'{protocol["min_depth"]:g}..{protocol["max_depth"]:g} m, per-image metrics averaged'
        )
    print(
        f'{summary["metrics_kind"]}: AbsRel {depth["abs_rel"]:.4f}  RMSE {depth["rmse"]:.4f} m'
        f'  delta1 {depth["delta1"]:.4f}  SILog {depth["silog"]:.4f}'
    )
    if summary['points_3d']:
        points = summary['points_3d']
        print(f'3D: Chamfer {points["chamfer_m"]:.4f} m  F-score {points["fscore"]:.4f}')
    sparse = document.get('sparse_alignment')
    if sparse and sparse['abs_rel_after'] is not None:
        print(
            f'--align-to {sparse["topic"]} ({sparse["mode"]}): AbsRel '
            f'{sparse["abs_rel_before"]:.4f} -> {sparse["abs_rel_after"]:.4f}, scale median '
            f'{sparse["scale_median"]:.4f}, '
            f'{sparse["frames_kept_last_scale"]} frame(s) kept the last scale'
        )
    inference = summary['speed']['inference_ms']
    if inference:
        print(
            f'Engine inference: p50 {inference["p50"]:.1f} ms  p95 {inference["p95"]:.1f} ms;'
            f' replay {summary["speed"]["frames_per_s"]:.2f} frames/s'
        )
    print(f'results in {document["config"]["out"]}')
