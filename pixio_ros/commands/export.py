"""`pixio-ros export`: encoder checkpoint (+ trained head) -> one node-ready artifact file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pixio_ros.commands.args import HXW_HELP, parse_hxw

if TYPE_CHECKING:
    from pixio_ros.model import HeadInfo, PixioNet

HELP = 'Compile a Pixio encoder and a depth / point-map head into one artifact for the node.'
DEFAULT_MAX_DEPTH_M = 10.0
DEFAULT_HEAD_KIND = 'points'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the export options."""
    encoder = parser.add_mutually_exclusive_group(required=True)
    encoder.add_argument(
        '--encoder', type=Path, help='official .pth / .safetensors, or a Hugging Face model folder'
    )
    encoder.add_argument(
        '--random-init',
        action='store_true',
        help='random encoder weights (tests and demos only; outputs carry no meaning)',
    )
    parser.add_argument(
        '--size',
        help='vitb16, vitl16, vith16, vit1b16, vit5b16 or tiny; required with '
        '--random-init, checked against the weights with --encoder',
    )
    parser.add_argument(
        '--head',
        type=Path,
        help='trained head: a .safetensors from `pixio-ros train-head`, or a .pth from the '
        "paper's evaluation code (then give --head-kind depth|linear and --max-depth)",
    )
    parser.add_argument(
        '--head-kind',
        choices=('depth', 'points', 'linear', 'none'),
        help='without --head: random-init head of this kind (default points), or none for '
        'features only; with a paper .pth: the kind of head it holds',
    )
    parser.add_argument(
        '--max-depth',
        type=float,
        default=None,  # None tells "not given" apart from the default value
        help='depth range of a random-init or paper head, metres (default '
        f'{DEFAULT_MAX_DEPTH_M:g}); with a train-head .safetensors it must match the head',
    )
    parser.add_argument(
        '--input-size',
        type=parse_hxw,
        default=(240, 320),
        help=f'size the node resizes images to: {HXW_HELP}; multiples of 16 (default 240x320)',
    )
    parser.add_argument(
        '--format',
        dest='fmt',
        choices=('torchscript', 'export', 'onnx'),
        default=None,
        help='torchscript (.ts; older torch and libtorch load it), export (.pt2, via '
        'torch.export) or onnx (.onnx, opset 18, for the onnxruntime, openvino and tensorrt '
        "backends; needs pip install 'pixio_ros[onnx]'); default: from the -o suffix, "
        'torchscript for any other. Loading reads the content, so any -o name works except '
        "another format's suffix, which is refused",
    )
    parser.add_argument(
        '--dtype',
        choices=('fp32', 'fp16', 'bf16'),
        default='fp32',
        help='weights precision (default fp32; onnx: fp32 only, the backend picks its '
        'precision at run time)',
    )
    parser.add_argument('--device', default='cpu', help='cpu (default) or cuda[:N]')
    parser.add_argument('-o', '--output', type=Path, required=True, help='artifact file to write')
    parser.add_argument('--force', action='store_true', help='replace an existing output')


def _build(args: argparse.Namespace) -> tuple[PixioNet, dict[str, Path], bool, bool]:
    """(network, sources, encoder_pretrained, head_trained) from the parsed options."""
    from pixio_ros.model import ModelError, PixioEncoder, PixioNet, build_head, get_size
    from pixio_ros.model.checkpoints import checkpoint_sha256, load_encoder_checkpoint
    from pixio_ros.model.head_checkpoints import HeadInfo, load_head_checkpoint, load_paper_head

    sources: dict[str, Path] = {}
    if args.random_init:
        if args.size is None:
            raise ModelError('--random-init needs --size (e.g. --size vitb16).')
        if args.head is not None:
            raise ModelError('--head needs the --encoder it was trained with, not --random-init.')
        encoder = PixioEncoder(get_size(args.size))
    else:
        encoder = load_encoder_checkpoint(args.encoder, size=args.size)
        sources['encoder'] = args.encoder
    max_depth = DEFAULT_MAX_DEPTH_M if args.max_depth is None else args.max_depth
    if args.head is not None and args.head.suffix != '.safetensors':
        if args.head_kind is None:
            raise ModelError(
                f"{args.head} is not a train-head .safetensors; for the paper's checkpoints "
                'pass --head-kind depth|linear and --max-depth.'
            )
        head = load_paper_head(
            args.head, size=encoder.size_name, head_kind=args.head_kind, max_depth=max_depth
        )
        info = HeadInfo(args.head_kind, encoder.size_name, max_depth)
    elif args.head is not None:
        head, info = load_head_checkpoint(args.head)
        _check_head_options(args, info)
    if args.head is not None:
        if info.size != encoder.size_name:
            raise ModelError(
                f'{args.head} was trained on a {info.size} encoder, but {args.encoder} is '
                f'{encoder.size_name}; pass the encoder the head was trained with.'
            )
        encoder_sha = checkpoint_sha256(sources['encoder'])
        if info.encoder_sha256 and info.encoder_sha256 != encoder_sha:
            raise ModelError(
                f'{args.head} was trained on encoder sha256 {info.encoder_sha256[:12]}..., but '
                f'{sources["encoder"]} has {encoder_sha[:12]}...; pass the same encoder file.'
            )
        sources['head'] = args.head
    else:
        head = build_head(
            get_size(encoder.size_name), args.head_kind or DEFAULT_HEAD_KIND, max_depth=max_depth
        )
    return PixioNet(encoder, head).eval(), sources, not args.random_init, args.head is not None


def _check_head_options(args: argparse.Namespace, info: HeadInfo) -> None:
    """Refuse an explicit --head-kind / --max-depth that contradicts a train-head checkpoint."""
    from pixio_ros.model import ModelError

    conflicts = []
    if args.head_kind is not None and args.head_kind != info.head_kind:
        conflicts.append(f'--head-kind {args.head_kind} but the head is {info.head_kind!r}')
    if args.max_depth is not None and args.max_depth != info.max_depth:
        conflicts.append(
            f'--max-depth {args.max_depth:g} but the head was trained with {info.max_depth:g} m'
        )
    if conflicts:
        raise ModelError(
            f'{args.head} records its own kind and depth range: {"; ".join(conflicts)}; drop '
            "--head-kind / --max-depth (the checkpoint's values are used) or pass the head "
            'trained for them.'
        )


def run(args: argparse.Namespace) -> int:
    """Build, export, verify and describe the artifact."""
    import torch

    from pixio_ros.model import ModelError, export_artifact
    from pixio_ros.model.artifact_format import (
        random_init_message,
        random_init_parts,
        suffix_conflict,
        suffix_format,
    )

    fmt = args.fmt or suffix_format(args.output) or 'torchscript'
    conflict = suffix_conflict(args.output, fmt)
    if conflict is not None:  # refused before minutes of building and compiling
        raise ModelError(f'{conflict}.')
    torch.manual_seed(0)
    net, sources, encoder_pretrained, head_trained = _build(args)
    metadata = export_artifact(
        net,
        args.output,
        input_size=args.input_size,
        fmt=fmt,
        dtype=args.dtype,
        device=args.device,
        sources=sources,
        encoder_pretrained=encoder_pretrained,
        head_trained=head_trained,
        force=args.force,
    )
    height, width = metadata.input_size
    print(
        f'wrote {args.output} ({metadata.format}, {metadata.size}, head '
        f'{metadata.head_kind}, {height}x{width}, {metadata.dtype}); outputs: '
        f'{", ".join(metadata.outputs)}'
    )
    print(
        f'reloaded and compared with the eager model: max abs diff '
        f'{metadata.parity_max_abs_diff:.3g}'
    )
    parts = random_init_parts(metadata)
    if parts:
        print(f'WARNING: {random_init_message(parts)}.', file=sys.stderr)
    return 0
