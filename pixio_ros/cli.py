"""The `pixio-ros` command: one subcommand per module in `pixio_ros.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pixio_ros import __version__
from pixio_ros.distributed import error_line
from pixio_ros.errors import PixioRosError

# Subcommand name -> module in pixio_ros.commands. Each module defines HELP (one line),
# add_arguments(parser) and run(args) -> int, and imports the library (torch; rclpy through
# pixio_ros.ros, never directly) inside run() only, so `pixio-ros --help` stays fast.
COMMANDS: dict[str, str] = {
    'demo': 'demo',
    'export': 'export',
    'quantize': 'quantize',
    'info': 'info',
    'train-head': 'train_head',
    'train-policy': 'train_policy',
    'eval': 'evaluate',
    'make-sample-bag': 'sample_bag',
    'play': 'play',
    'bench': 'bench',
    'features': 'features',
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog='pixio-ros',
        description='Pixio depth, point clouds and features for ROS 2.',
    )
    parser.add_argument('--version', action='version', version=f'pixio-ros {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f'pixio_ros.commands.{module_name}')
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pixio-ros`; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except PixioRosError as err:
        line = error_line(err)  # under torchrun: one line per failure, not one per rank
        if line is not None:
            print(f'pixio-ros {args.command}: error: {line}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
