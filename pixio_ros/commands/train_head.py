"""`pixio-ros train-head`: train a depth or point-map head on a frozen Pixio encoder."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pixio_ros.commands.args import HXW_HELP, parse_hxw

if TYPE_CHECKING:
    from pixio_ros.training import RGBDSample
    from pixio_ros.training.config import AmpMode, HeadKind

TRAINING_LOGGER = 'pixio_ros.training'

HELP = 'Train a depth / point-map head on a frozen Pixio encoder from RGB-D bags or a folder.'
DESCRIPTION = f"""{HELP}

Data: one or more rosbags (--bag, with --image-topic, --depth-topic and, for the point-map head,
--camera-info-topic; depth aligned to colour, 16UC1 mm or 32FC1 m), or a folder (--data) with
rgb/NAME.png|jpg, depth/NAME.png (16-bit millimetres, 0 = invalid) and intrinsics.yaml
(fx, fy, cx, cy in pixels, or K as a 3x3 list; optionally D and distortion_model, plumb_bob
by default). Point-map targets are the camera's undistorted rays, as the node uses them. The
last --val-fraction of each bag's frames validate. RUN_DIR receives best/last .safetensors
heads, their JSON, last_state.pt (for --resume), train_log.csv and curves.png. Then:
pixio-ros export --encoder CKPT --head RUN_DIR/best.safetensors -o model.ts
"""


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
    parser.add_argument('--image-topic', help='Image or CompressedImage topic (with --bag)')
    parser.add_argument('--depth-topic', help='depth Image topic aligned to colour (with --bag)')
    parser.add_argument('--camera-info-topic', help='colour CameraInfo (needed for --head points)')
    parser.add_argument(
        '--stamp-tolerance-ms',
        type=float,
        default=5.0,
        help='colour/depth header stamp pairing tolerance (default 5)',
    )
    parser.add_argument('--out', type=Path, required=True, help='run directory (RUN_DIR)')
    parser.add_argument(
        '--input-size',
        type=parse_hxw,
        default=(256, 256),
        help=f'crop size: {HXW_HELP}; multiples of 16 (default 256)',
    )
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--lr', type=float, help='default 1e-4 (DPT heads) / 2e-4 (linear)')
    parser.add_argument('--max-depth', type=float, default=10.0, help='metres (default 10)')
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
def _training_log_on_stderr() -> Iterator[None]:
    """Show the training library's log (cache size, NaN validation, resume notes) on stderr.

    Only while the command runs: the handler and level are put back afterwards, so a library
    caller in the same process (a test, a notebook) keeps its own logging configuration.
    """
    logger = logging.getLogger(TRAINING_LOGGER)
    handler = _StderrHandler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _load_samples(
    args: argparse.Namespace,
) -> tuple[list[RGBDSample], list[RGBDSample]]:
    from pixio_ros.training import (
        TrainingError,
        load_bag_samples,
        load_folder_samples,
        split_by_time,
    )

    if args.data is not None:
        return split_by_time([load_folder_samples(args.data)], args.val_fraction)
    if not args.image_topic or not args.depth_topic:
        raise TrainingError('--bag needs --image-topic and --depth-topic.')
    sources = [
        load_bag_samples(
            bag,
            image_topic=args.image_topic,
            depth_topic=args.depth_topic,
            camera_info_topic=args.camera_info_topic,
            stamp_tolerance_ms=args.stamp_tolerance_ms,
        )
        for bag in args.bag
    ]
    return split_by_time(sources, args.val_fraction)


def run(args: argparse.Namespace) -> int:
    """Load the frames, train, and print the best epoch and the export command."""
    with _training_log_on_stderr():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from pixio_ros.training import TrainConfig, train_head

    config = TrainConfig(
        encoder=args.encoder,
        head_kind=cast('HeadKind', args.head),
        out=args.out,
        input_size=args.input_size,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        max_depth=args.max_depth,
        min_depth=args.min_depth,
        device=_training_device(args.device),
        amp=cast('AmpMode', args.amp),
        cache_features=args.cache_features,
        cache_limit_gb=args.cache_limit_gb,
        crop=args.crop,
        flip=args.flip,
        seed=args.seed,
        resume=args.resume,
        stop_after_epochs=args.stop_after_epochs,
        progress=not args.quiet,
    )
    config.check()
    train, val = _load_samples(args)
    print(f'{len(train)} training / {len(val)} validation frames', file=sys.stderr)
    result = train_head(config, train, val)
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


def _training_device(requested: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; other values pass through unchanged."""
    import torch

    if requested != 'auto':
        return requested
    return 'cuda' if torch.cuda.is_available() else 'cpu'
