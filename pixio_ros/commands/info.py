"""`pixio-ros info`: print an artifact's embedded metadata and its sha256."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = (
    "Show an artifact's metadata (size, head, input size, outputs, sources), sha256 and the "
    'backends that run it here.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the artifact argument."""
    parser.add_argument('artifact', type=Path, help='file written by `pixio-ros export`')
    parser.add_argument('--json', action='store_true', help='print one JSON object only')


def run(args: argparse.Namespace) -> int:
    """Read the metadata straight from the archive (nothing is loaded or executed)."""
    from pixio_ros.files import file_sha256
    from pixio_ros.model.artifact_format import (
        random_init_message,
        random_init_parts,
        read_metadata,
    )
    from pixio_ros.runtime.backends import backend_available, readers_of
    from pixio_ros.runtime.precision import cpu_precision

    metadata = read_metadata(args.artifact)
    document = {**metadata.as_dict(), 'sha256': file_sha256(args.artifact)}
    if args.json:
        print(json.dumps(document, sort_keys=True))
        return 0
    print(f'{args.artifact}')
    print(f'  sha256: {document.pop("sha256")}')
    for key in sorted(document):
        print(f'  {key}: {json.dumps(document[key])}')
    readers = readers_of(metadata.format)
    installed = [name for name in readers if backend_available(name)]
    print(
        f'  backends: {", ".join(readers)} read it; installed here: '
        f'{", ".join(installed) or "none"} (this CPU: {cpu_precision().describe()})'
    )
    if metadata.quantization is not None:
        record = metadata.quantization
        print(
            f'  int8: {record.calibration_frames} calibration frames from '
            f'{", ".join(record.calibration_source)}; gate vs fp32: {record.summary()}'
        )
    parts = random_init_parts(metadata)
    if parts:
        print(f'  note: {random_init_message(parts)}.')
    return 0
