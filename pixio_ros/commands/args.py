"""Argument helpers shared by the `pixio-ros` commands, so every command reads a value alike."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    'DATASET_CHOICES',
    'HXW_HELP',
    'PROTOCOL_CHOICES',
    'add_dataset_options',
    'parse_hxw',
]

HXW_SEPARATOR = 'x'
HXW_HELP = 'HEIGHTxWIDTH in pixels, height first (e.g. 480x640); one number N means NxN'
"""Help text fragment for every HxW option (the same words in every command)."""
_SIDES = 2


def parse_hxw(text: str) -> tuple[int, int]:
    """'480x640' -> (480, 640); '256' -> (256, 256). The one HxW parser of the CLI.

    Height first, as everywhere in this package (numpy's and torch's order). A single number
    means a square, because crops and input sizes are often square and every command must
    accept the same spellings.

    Raises:
        argparse.ArgumentTypeError: Not one or two positive integers joined by 'x' (argparse
            turns this into a one-line usage error naming the option).
    """
    parts = text.strip().lower().split(HXW_SEPARATOR)
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) == 1:
        sides = sides * _SIDES
    if len(sides) != _SIDES or min(sides) <= 0:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not HEIGHTxWIDTH (e.g. 480x640) or N for NxN, in positive pixels'
        )
    return sides[0], sides[1]


DATASET_CHOICES = ('nyuv2', 'kitti', 'tum', 'folder')
"""`--dataset` names (`pixio_ros.data.datasets.DATASET_NAMES`; spelt here so --help stays fast)."""
PROTOCOL_CHOICES = ('nyuv2', 'kitti', 'none')
"""`--protocol` names (`pixio_ros.evaluation.protocol.PROTOCOL_NAMES`, and none)."""


def add_dataset_options(
    parser: argparse.ArgumentParser,
    *,
    split_default: str,
    sources: argparse._MutuallyExclusiveGroup | None = None,
) -> None:
    """The options that read a public dataset, the same in `train-head` and `eval`.

    Args:
        parser: the command's parser.
        split_default: the labeled NYUv2 .mat's split when --split is not given.
        sources: a mutually exclusive group of data sources that --dataset joins (train-head's
            --bag / --data).
    """
    group = parser.add_argument_group(
        'public datasets (--dataset NAME PATH)',
        'nyuv2: PATH is nyu_depth_v2_labeled.mat (splits.mat beside it) or a file list of '
        '"RGB DEPTH" lines (the sync / official_splits layout; 16-bit millimetre depth); '
        'kitti: PATH is an Eigen-split file list of "RGB DEPTH [FOCAL]" lines (raw images, '
        'annotated depth in 1/256 m, calib_cam_to_cam.txt in each day folder); tum: PATH is '
        'a sequence folder (rgbd_dataset_freiburgN_...); folder: rgb/, depth/, '
        'intrinsics.yaml. The dataset sets the depth range (nyuv2, tum, folder 10 m; kitti '
        '80 m). See docs/reproduce.md.',
    )
    (sources if sources is not None else group).add_argument(
        '--dataset',
        choices=DATASET_CHOICES,
        help='read PATH as this dataset instead of bags',
    )
    group.add_argument(
        '--split',
        choices=('train', 'test', 'all'),
        help=f'split of the labeled NYUv2 .mat (default {split_default}; splits.mat)',
    )
    group.add_argument(
        '--data-root',
        type=Path,
        help="folder a file list's colour paths are relative to (default: the list's folder)",
    )
    group.add_argument(
        '--depth-root',
        type=Path,
        help="folder a file list's depth paths are relative to (default: --data-root; "
        "KITTI's train/ and val/ inside it are searched too)",
    )
