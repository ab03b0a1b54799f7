"""`pixio-ros train-head`: train a depth or point-map head on a frozen Pixio encoder."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pixio_ros.commands.args import HXW_HELP, add_dataset_options, parse_hxw

if TYPE_CHECKING:
    from pixio_ros.training import RGBDSample
    from pixio_ros.training.config import AmpMode, HeadKind

TRAINING_LOGGER = 'pixio_ros.training'

HELP = (
    'Train a depth / point-map head on a frozen Pixio encoder from RGB-D bags, a folder or a '
    'public dataset (NYUv2, KITTI, TUM RGB-D).'
)
DESCRIPTION = f"""{HELP}

Data: one or more rosbags (--bag, with --image-topic, --depth-topic and, for the point-map head,
--camera-info-topic; depth aligned to colour, 16UC1 mm or 32FC1 m), or a folder (--data) with
rgb/NAME.png|jpg, depth/NAME.png (16-bit millimetres, 0 = invalid) and intrinsics.yaml
(fx, fy, cx, cy in pixels, or K as a 3x3 list; optionally D and distortion_model, plumb_bob
by default), or a public dataset (--dataset nyuv2|kitti|tum|folder PATH, see below; the
labeled NYUv2 .mat trains on its official train split, NYUv2 frames are cut to the Eigen
crop as the Pixio paper does, and --max-depth defaults to the dataset's range: 10 m, KITTI
80 m). Point-map targets are the camera's undistorted rays, as the node uses them. The last
--val-fraction of each source's frames validate. RUN_DIR receives best/last .safetensors
heads, their JSON, last_state.pt (for --resume), train_log.csv and curves.png. Then:
pixio-ros export --encoder CKPT --head RUN_DIR/best.safetensors -o model.ts

Several GPUs or nodes: torchrun --nproc-per-node N $(which pixio-ros) train-head ... trains
the same run on N processes (docs/distributed.md). --batch is the global batch (split over
the processes), the result does not depend on N beyond floating-point reduction order, and
only rank 0 writes RUN_DIR; --resume needs the same number of processes.
"""
TUM_ASSOCIATION_MS = 20.0
BAG_STAMP_TOLERANCE_MS = 5.0
DEFAULT_MAX_DEPTH_M = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the training options (defaults: the paper's recipe)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        '--encoder',
        type=Path,
        required=True,
        help='official .pth / .safetensors or a Hugging Face model folder',
    )
    parser.add_argument(
        '--head',
        choices=('depth', 'points', 'linear'),
        default='depth',
        help='head to train (default depth)',
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument('--bag', type=Path, nargs='+', help='rosbag2 directories or ROS 1 bags')
    data.add_argument('--data', type=Path, help='folder dataset (see above)')
    add_dataset_options(parser, split_default='train', sources=data)
    # --dataset belongs to the exclusive data sources; its PATH is the positional argument.
    parser.add_argument(
        'path', type=Path, nargs='?', metavar='PATH', help='the dataset, with --dataset NAME'
    )
    parser.add_argument('--image-topic', help='Image or CompressedImage topic (with --bag)')
    parser.add_argument('--depth-topic', help='depth Image topic aligned to colour (with --bag)')
    parser.add_argument('--camera-info-topic', help='colour CameraInfo (needed for --head points)')
    parser.add_argument(
        '--stamp-tolerance-ms',
        type=float,
        help='colour/depth header stamp pairing tolerance (default 5); TUM: the association '
        f'window (default {TUM_ASSOCIATION_MS:g})',
    )
    parser.add_argument('--out', type=Path, required=True, help='run directory (RUN_DIR)')
    parser.add_argument(
        '--input-size',
        type=parse_hxw,
        default=(256, 256),
        help=f'crop size: {HXW_HELP}; multiples of 16 (default 256)',
    )
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument(
        '--batch', type=int, default=4, help='global batch: all processes together (default 4)'
    )
    parser.add_argument('--lr', type=float, help='default 1e-4 (DPT heads) / 2e-4 (linear)')
    parser.add_argument(
        '--max-depth',
        type=float,
        help="the head's depth range, metres (default: the dataset's, nyuv2 10, kitti 80; else 10)",
    )
    parser.add_argument('--min-depth', type=float, default=1e-3, help='metres (default 1e-3)')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument(
        '--device', default='auto', help='auto (default: cuda when available), cpu or cuda[:N]'
    )
    parser.add_argument('--amp', choices=('none', 'bf16', 'fp16'), default='none')
    parser.add_argument('--resume', action='store_true', help='continue RUN_DIR bit-for-bit')
    parser.add_argument(
        '--stop-after-epochs',
        type=int,
        help='stop after this many epochs (>= 1) of this invocation (resume later)',
    )
    parser.add_argument(
        '--cache-features',
        action='store_true',
        help='encode every frame once (no crops, flips on features): much faster',
    )
    parser.add_argument(
        '--cache-limit-gb',
        type=float,
        default=8.0,
        help='refuse a feature cache larger than this (default 8)',
    )
    parser.add_argument(
        '--cache-dir',
        type=Path,
        help='with --cache-features: also keep the features here; later runs (any number of '
        'processes) reuse them (shared between nodes under torchrun)',
    )
    parser.add_argument(
        '--no-crop',
        dest='crop',
        action='store_false',
        help='resize whole frames instead of random crops',
    )
    parser.add_argument('--no-flip', dest='flip', action='store_false', help='no horizontal flips')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quiet', action='store_true', help='no progress bars')


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (the CLI's, or a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = f'{record.levelname.lower()}: ' if record.levelno >= logging.WARNING else ''
        print(prefix + self.format(record), file=sys.stderr)


@contextlib.contextmanager
def training_log_on_stderr(name: str = TRAINING_LOGGER) -> Iterator[None]:
    """Show the training library's log (cache size, NaN validation, resume notes) on stderr.

    Only while the command runs: the handler and level are put back afterwards, so a library
    caller in the same process (a test, a notebook) keeps its own logging configuration.
    """
    logger = logging.getLogger(name)
    handler = _StderrHandler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _check_sources(args: argparse.Namespace) -> None:
    """Refuse a PATH without --dataset (and --dataset without PATH) before anything loads."""
    from pixio_ros.training import TrainingError

    dataset_options = [
        option
        for option, value in (
            ('--split', args.split),
            ('--data-root', args.data_root),
            ('--depth-root', args.depth_root),
        )
        if value is not None
    ]
    if args.dataset is None and args.path is not None:
        raise TrainingError(
            f'{args.path}: a PATH is read with --dataset NAME (nyuv2, kitti, tum, folder).'
        )
    if args.dataset is None and dataset_options:
        raise TrainingError(f'{", ".join(dataset_options)} read datasets; pass --dataset NAME.')
    if args.dataset is not None and args.path is None:
        raise TrainingError(f'--dataset {args.dataset} needs the dataset PATH.')
    if args.dataset is not None and (args.bag or args.data):
        raise TrainingError('give one data source: --bag, --data or --dataset NAME PATH.')


def _max_depth(args: argparse.Namespace) -> float:
    """--max-depth, else the dataset's range (the head's range follows the data)."""
    if args.max_depth is not None:
        return float(args.max_depth)
    if args.dataset is not None:
        from pixio_ros.data.datasets import get_dataset_info

        return get_dataset_info(args.dataset).max_depth
    return DEFAULT_MAX_DEPTH_M


def _load_samples(
    args: argparse.Namespace,
) -> tuple[list[RGBDSample], list[RGBDSample]]:
    from pixio_ros.training import (
        TrainingError,
        load_bag_samples,
        load_folder_samples,
        split_by_time,
    )
    from pixio_ros.training.samples import load_dataset_samples

    if args.data is not None:
        return split_by_time([load_folder_samples(args.data)], args.val_fraction)
    tolerance = args.stamp_tolerance_ms
    if args.dataset is not None:
        data = load_dataset_samples(
            args.dataset,
            args.path,
            split=args.split,
            data_root=args.data_root,
            depth_root=args.depth_root,
            max_difference_s=None if tolerance is None else tolerance / 1000.0,
        )
        print(f'{data.description}: {len(data.samples)} frames', file=sys.stderr)
        return split_by_time([data.samples], args.val_fraction)
    if not args.image_topic or not args.depth_topic:
        raise TrainingError('--bag needs --image-topic and --depth-topic.')
    sources = [
        load_bag_samples(
            bag,
            image_topic=args.image_topic,
            depth_topic=args.depth_topic,
            camera_info_topic=args.camera_info_topic,
            stamp_tolerance_ms=BAG_STAMP_TOLERANCE_MS if tolerance is None else tolerance,
        )
        for bag in args.bag
    ]
    return split_by_time(sources, args.val_fraction)


def run(args: argparse.Namespace) -> int:
    """Load the frames, train, and print the best epoch and the export command.

    Under torchrun every rank runs this; only rank 0 logs and prints.
    """
    from pixio_ros.distributed import world_from_env

    world = world_from_env()
    if not world.is_main:
        return _train(args)
    with training_log_on_stderr():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    import torch

    from pixio_ros.distributed import agreed, joined, rank_device, world_from_env
    from pixio_ros.training import TrainConfig, train_head

    world = world_from_env()
    _check_sources(args)
    config = TrainConfig(
        encoder=args.encoder,
        head_kind=cast('HeadKind', args.head),
        out=args.out,
        input_size=args.input_size,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        max_depth=_max_depth(args),
        min_depth=args.min_depth,
        device=training_device(args.device),
        amp=cast('AmpMode', args.amp),
        cache_features=args.cache_features,
        cache_limit_gb=args.cache_limit_gb,
        cache_dir=args.cache_dir,
        crop=args.crop,
        flip=args.flip,
        seed=args.seed,
        resume=args.resume,
        stop_after_epochs=args.stop_after_epochs,
        progress=not args.quiet,
    )
    config.check()
    with joined(torch.device(rank_device(config.device, world)), world):
        with agreed(world, 'loading the frames'):
            train, val = _load_samples(args)
        if world.is_main:
            print(f'{len(train)} training / {len(val)} validation frames', file=sys.stderr)
        result = train_head(config, train, val, world=world)
    if not world.is_main:
        return 0
    best = result.best
    if best:
        print(
            f'best epoch {best["epoch"]}: val AbsRel {best["val_abs_rel"]:.4f}, '
            f'delta1 {best["val_delta1"]:.4f}, train SiLog {best["train_silog"]:.4f}'
        )
    head = result.run_dir / 'best.safetensors'
    if not head.is_file():  # no epoch had a finite validation score
        head = result.run_dir / 'last.safetensors'
    print(f'export: pixio-ros export --encoder {args.encoder} --head {head} -o model.ts')
    return 0


def training_device(requested: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; other values pass through unchanged."""
    import torch

    if requested != 'auto':
        return requested
    return 'cuda' if torch.cuda.is_available() else 'cpu'
