"""`pixio-ros info`: print an artifact's embedded metadata and its sha256."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Show an artifact's metadata (size, head, input size, outputs, sources) and sha256."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the artifact argument."""
    parser.add_argument('artifact', type=Path, help='file written by `pixio-ros export`')
    parser.add_argument('--json', action='store_true', help='print one JSON object only')


def run(args: argparse.Namespace) -> int:
    """Read the metadata straight from the archive (nothing is loaded or executed)."""
    from pixio_ros.model import file_sha256, read_artifact_metadata

    metadata = read_artifact_metadata(args.artifact)
    sha256 = file_sha256(args.artifact)
    if args.json:
        print(json.dumps({**metadata, 'sha256': sha256}, sort_keys=True))
        return 0
    print(f'{args.artifact}')
    print(f'  sha256: {sha256}')
    for key in sorted(metadata):
        print(f'  {key}: {json.dumps(metadata[key])}')
    if metadata.get('encoder_pretrained') is False or (
        metadata.get('head_trained') is False and metadata.get('head_kind') != 'none'
    ):
        print('  note: random-init weights; depth and points are not meaningful.')
    return 0
