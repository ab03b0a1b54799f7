"""`pixio-ros features`: recordings -> a feature dataset (one row per camera frame) for policies."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = (
    'Extract Pixio features, embedding and patch xyz of every frame of rosbags, with signals '
    '(joint states, commands) aligned to each frame, into a Hugging Face datasets dataset. '
    'Under torchrun the bags are shared between the processes and rank 0 writes the '
    'one-process dataset.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options (see README: Offline features)."""
    parser.add_argument(
        'bags',
        type=Path,
        nargs='+',
        metavar='BAG',
        help='rosbag2 directories (sqlite3 / mcap) or ROS 1 .bag files; one bag = one episode',
    )
    parser.add_argument(
        '--model', type=Path, required=True, help='artifact from `pixio-ros export`'
    )
    parser.add_argument('-o', '--out', type=Path, required=True, help='dataset directory to write')
    parser.add_argument(
        '--image-topic',
        help="Image or CompressedImage topic (default: the bag's one colour image topic)",
    )
    parser.add_argument(
        '--camera-info-topic',
        help='CameraInfo for xyz (default: camera_info beside the image topic, if recorded; '
        "'none': xyz from the point-map head, or NaN, as the node without CameraInfo)",
    )
    parser.add_argument(
        '--with',
        dest='signals',
        action='append',
        default=[],
        metavar='TOPIC:FIELD[,FIELD...]',
        help='add aligned columns, e.g. /joint_states:position,velocity or '
        '/cmd_vel:linear.x,angular.z (repeatable)',
    )
    parser.add_argument(
        '--max-gap-ms',
        type=float,
        default=50.0,
        help='a frame whose nearest signal message is further away is unmatched (default 50)',
    )
    parser.add_argument(
        '--episode-gap-s',
        type=float,
        help='also start a new episode where the images pause longer than this',
    )
    parser.add_argument(
        '--features-dtype',
        choices=('float32', 'float16'),
        default='float32',
        help="the features column's type (float16: the node's features.dtype float16, half size)",
    )
    parser.add_argument(
        '--with-depth', action='store_true', help='add the depth (H, W) of every frame'
    )
    parser.add_argument(
        '--depth-resolution',
        choices=('camera', 'input'),
        default='camera',
        help="depth (and the xyz from it) at the image's or the artifact's input size, as the "
        "node's depth_resolution (default camera)",
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='frames per forward pass (default 1: the bits the node publishes; larger is faster '
        'and may change the last bits of depth and xyz)',
    )
    parser.add_argument(
        '--backend',
        default='auto',
        choices=('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt'),
        help='Engine backend, as the node (default auto)',
    )
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda, cuda:N')
    parser.add_argument(
        '--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'), help='default fp32'
    )
    parser.add_argument(
        '--format',
        dest='output_format',
        default='datasets',
        choices=('datasets', 'lerobot'),
        help='datasets (default: Hugging Face datasets, load_from_disk); lerobot is not '
        'available in this environment',
    )
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')


def run(args: argparse.Namespace) -> int:
    """Extract, write and print the one-line summary."""
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # as eval: before torch loads
    from pixio_ros.data.signals import parse_signal_request
    from pixio_ros.evaluation.featurize import FeaturesConfig, extract_features_on_ranks

    config = FeaturesConfig(
        bags=tuple(args.bags),
        model=args.model,
        out=args.out,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        signals=tuple(parse_signal_request(text) for text in args.signals),
        max_gap_ms=args.max_gap_ms,
        episode_gap_s=args.episode_gap_s,
        features_dtype=args.features_dtype,
        with_depth=args.with_depth,
        depth_resolution=args.depth_resolution,
        batch_size=args.batch_size,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        output_format=args.output_format,
        force=args.force,
    )
    summary = extract_features_on_ranks(config, progress=True)
    if summary is not None:  # None on the ranks other than 0 under torchrun
        print(f'features: {summary.line()}')
    return 0
