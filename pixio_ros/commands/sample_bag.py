"""`pixio-ros make-sample-bag`: write the synthetic RealSense-style RGB-D bag."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixio_ros.commands.args import HXW_HELP, parse_hxw

HELP = 'Write a synthetic RGB-D rosbag (RealSense topics, exact metric depth) for eval and demos.'
TASK_HELP = (
    'none (default): the walking camera; turn-to-target: a red target in the room and the camera '
    'turning in place towards it, with the commands that turned it on /cmd_vel (a demonstration '
    'for `pixio-ros train-policy`)'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options."""
    parser.add_argument('out', type=Path, help='output bag directory (rosbag2)')
    parser.add_argument('--frames', type=int, default=60, help='frames at 30 Hz (default 60)')
    parser.add_argument(
        '--size', type=parse_hxw, default=(480, 640), help=f'{HXW_HELP} (default 480x640)'
    )
    parser.add_argument('--storage', default='mcap', help='mcap (default) or sqlite3')
    parser.add_argument('--seed', type=int, default=0, help='scene layout seed (default 0)')
    parser.add_argument(
        '--noise',
        action='store_true',
        help='add stereo-like depth noise, dropouts and colour noise',
    )
    parser.add_argument('--task', default='none', help=TASK_HELP)
    parser.add_argument(
        '--episodes',
        type=int,
        default=1,
        help='N > 1: OUT becomes a folder of N bags, OUT/episode_<seed>, seeds SEED..SEED+N-1',
    )
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')


def run(args: argparse.Namespace) -> int:
    """Render and write the bag; prints where it went and its topics."""
    from pixio_ros.data.sample_bag import SampleBagSpec, write_episode_bags, write_sample_bag

    height, width = args.size
    spec = SampleBagSpec(
        frames=args.frames,
        height=height,
        width=width,
        seed=args.seed,
        noise=args.noise,
        task=args.task,
    )
    what = (
        f'{args.storage}, {spec.frames} frames, {height}x{width}'
        f'{", noisy" if spec.noise else ""}{"" if spec.task == "none" else ", task " + spec.task}'
    )
    if args.episodes == 1:
        path = write_sample_bag(
            args.out, spec, storage=args.storage, force=args.force, progress=True
        )
        print(f'wrote {path} ({what}, seed {spec.seed})')
        return 0
    bags = write_episode_bags(
        args.out, spec, args.episodes, storage=args.storage, force=args.force, progress=True
    )
    print(
        f'wrote {len(bags)} bags in {args.out} ({what}, seeds {spec.seed}..'
        f'{spec.seed + len(bags) - 1}): {bags[0].name} ... {bags[-1].name}'
    )
    return 0
