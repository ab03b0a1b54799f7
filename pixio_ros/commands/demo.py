"""`pixio-ros demo`: the README's first command (sample bag -> node -> outputs -> report)."""

from __future__ import annotations

import argparse
import sys

HELP = 'Run the whole pipeline on a synthetic RGB-D bag and summarise what came out.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the demo's options."""
    parser.add_argument('--model', help='artifact to run instead of a random-init one')


def run(args: argparse.Namespace) -> int:
    """Explain the plan; the pipeline pieces land with the evaluation issue."""
    print(
        'pixio-ros demo will: write a synthetic RGB-D sample bag, export a random-init vitb16\n'
        'artifact, start pixio_node, play the bag into it over DDS, record the outputs and print\n'
        'a summary with an eval report. It is not implemented yet.',
        file=sys.stderr,
    )
    return 2
