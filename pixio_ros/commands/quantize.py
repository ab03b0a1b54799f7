"""`pixio-ros quantize`: an INT8 ONNX artifact calibrated on your recordings, gated against fp32."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    'Quantise an ONNX artifact to INT8 (NNCF), calibrated on frames of your own recordings, and '
    'write it only if it stays within the accuracy gate (depth AbsRel, feature cosine) against '
    'the fp32 source on held-out frames.'
)
# Spelt here so that --help stays fast (pixio_ros.quantization imports torch); a test holds them
# equal to the library's defaults.
DEFAULT_FRAMES = 64
DEFAULT_VALIDATE_FRAMES = 16
DEFAULT_MAX_ABS_REL = 0.01
DEFAULT_MIN_FEATURE_COS = 0.99
DEFAULT_IMAGE_TOPIC = '/camera/color/image_raw'
FLOAT_GROUPS = ('patch_embed', 'head_output')
DEFAULT_KEEP_FLOAT = 'head_output'
NONE = 'none'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options (see README: INT8 quantisation)."""
    from pixio_ros.commands.args import add_dataset_options

    parser.add_argument('artifact', type=Path, help='fp32 ONNX artifact (`pixio-ros export`)')
    parser.add_argument(
        '--calibrate',
        type=Path,
        nargs='+',
        required=True,
        metavar='BAG',
        help='recordings to calibrate on (rosbag2 directories, .mcap or ROS 1 .bag); frames '
        'are picked evenly over all of them; with --dataset, the dataset PATH',
    )
    parser.add_argument('-o', '--output', type=Path, required=True, help='INT8 artifact to write')
    parser.add_argument(
        '--image-topic',
        default=DEFAULT_IMAGE_TOPIC,
        help=f'Image or CompressedImage topic of the bags (default {DEFAULT_IMAGE_TOPIC})',
    )
    parser.add_argument(
        '--validate',
        type=Path,
        nargs='+',
        metavar='BAG',
        help='bags the gate scores on (default: frames of the calibration bags that '
        'calibration did not use)',
    )
    parser.add_argument(
        '--frames',
        type=int,
        default=DEFAULT_FRAMES,
        help=f'calibration frames (default {DEFAULT_FRAMES})',
    )
    parser.add_argument(
        '--validate-frames',
        type=int,
        default=DEFAULT_VALIDATE_FRAMES,
        help=f'held-out frames the gate scores (default {DEFAULT_VALIDATE_FRAMES})',
    )
    parser.add_argument(
        '--max-absrel',
        type=float,
        default=DEFAULT_MAX_ABS_REL,
        help=f'largest depth AbsRel of INT8 vs fp32 (default {DEFAULT_MAX_ABS_REL:g})',
    )
    parser.add_argument(
        '--min-feature-cos',
        type=float,
        default=DEFAULT_MIN_FEATURE_COS,
        help='smallest cosine of INT8 vs fp32 patch features and embedding (default '
        f'{DEFAULT_MIN_FEATURE_COS:g})',
    )
    parser.add_argument(
        '--keep-float',
        default=DEFAULT_KEEP_FLOAT,
        help=f'comma-separated layer groups left in floating point: {", ".join(FLOAT_GROUPS)}, '
        f'or {NONE} (default {DEFAULT_KEEP_FLOAT}; README: INT8 quantisation)',
    )
    parser.add_argument('--force', action='store_true', help='replace an existing --output')
    add_dataset_options(parser, split_default='train')


def run(args: argparse.Namespace) -> int:
    """Quantise, gate, write; exit 1 with one line (the gate's figures) when refused."""
    from pixio_ros.quantization import QuantizationError, QuantizeRequest, quantize_artifact

    if args.data_root is not None or args.depth_root is not None:
        raise QuantizationError(
            'quantize reads only colour images: --data-root / --depth-root do not apply; '
            'give a labeled NYUv2 .mat, a TUM sequence or a folder to --calibrate'
        )
    groups = [g.strip() for g in args.keep_float.split(',') if g.strip() and g.strip() != NONE]
    request = QuantizeRequest(
        artifact=args.artifact,
        output=args.output,
        calibrate=tuple(args.calibrate),
        image_topic=args.image_topic,
        dataset=args.dataset,
        split=args.split,
        validate=tuple(args.validate or ()),
        frames=args.frames,
        validate_frames=args.validate_frames,
        max_abs_rel=args.max_absrel,
        min_feature_cos=args.min_feature_cos,
        keep_float=tuple(groups),
        force=args.force,
    )
    result = quantize_artifact(request)
    record = result.metadata.quantization
    if record is None:
        raise QuantizationError(f'{result.path} was written without its quantization record')
    print(f'wrote {result.path}: INT8, {record.calibration_frames} calibration frames')
    print(f'  gate passed: {record.summary()}')
    print(f'  kept float: {", ".join(record.kept_float) or "nothing"}')
    print(
        '  re-run the gate on the real artifact and your own recordings: figures of random '
        'weights or other scenes do not carry over'
        if not result.metadata.encoder_pretrained or not result.metadata.head_trained
        else '  run it on the robot with precision int8 (backend openvino, onnxruntime or tensorrt)'
    )
    return 0
