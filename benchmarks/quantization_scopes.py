"""Which layers to keep float in INT8: the gate's figures for each choice, side by side.

Run (after `make setup`, with .venv/pixio_env.sh sourced, from the repository root):

    python benchmarks/quantization_scopes.py [--size tiny] [--input 96x128] [--frames 32] \
        [--validate-frames 16] [--bag-frames 64]

A random-init network of ``--size`` with the DPT depth head is exported as ONNX once; a
synthetic sample bag (the scene `make demo` uses) is written; then the artifact is quantised
with NNCF exactly as `pixio-ros quantize` does (same frames, same settings) once per choice of
layer groups kept in floating point (`pixio_ros.quantization.scope.FLOAT_GROUPS`: none, each
one alone, all), and each INT8 model is scored against fp32 on the same held-out frames with the
gate (depth AbsRel and delta1 against fp32, patch-feature cosine min / p5, embedding cosine
min). Random weights have other activation ranges than the released ones: the figures choose the
default, and the user's own run of the gate decides for the real artifact.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from bench_rig import random_init_artifact

from pixio_ros.commands.args import parse_hxw
from pixio_ros.data import SampleBagSpec, write_sample_bag
from pixio_ros.model.artifact_format import RandomInitWarning, read_metadata
from pixio_ros.quantization import FLOAT_GROUPS, QuantizeRequest
from pixio_ros.quantization.gate import score_outputs
from pixio_ros.quantization.quantize import pick_frames, quantize_model, run_frames
from pixio_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='tiny')
    parser.add_argument('--input', type=parse_hxw, default=(96, 128))
    parser.add_argument('--frames', type=int, default=32)
    parser.add_argument('--validate-frames', type=int, default=16)
    parser.add_argument('--bag-frames', type=int, default=64)
    parser.add_argument('--artifacts', type=Path, help='folder to keep / reuse the export in')
    args = parser.parse_args()
    import onnx

    warnings.simplefilter('ignore', RandomInitWarning)
    choices = [(), *((group,) for group in FLOAT_GROUPS), tuple(FLOAT_GROUPS)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.artifacts or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        artifact = random_init_artifact(directory, args.size, 'depth', args.input, 'onnx')
        metadata = read_metadata(artifact)
        bag = directory / f'scene_{args.bag_frames}_{args.input[0]}x{args.input[1]}'
        if not bag.exists():
            spec = SampleBagSpec(frames=args.bag_frames, height=args.input[0], width=args.input[1])
            write_sample_bag(bag, spec)
        request = QuantizeRequest(
            artifact=artifact,
            output=directory / 'unused.onnx',
            calibrate=(bag,),
            frames=args.frames,
            validate_frames=args.validate_frames,
        )
        calibrated, held_out, _ = pick_frames(request, metadata.input_size)
        cpu = torch.device('cpu')
        source = OnnxRuntimeBackend(artifact, metadata, '', device=cpu, precision='fp32')
        reference = run_frames(source, held_out)
        print(
            f'{args.size} depth head at {args.input[0]}x{args.input[1]}, random-init weights; '
            f'{len(calibrated.inputs)} calibration / {len(held_out.inputs)} held-out frames of '
            'the synthetic scene'
        )
        print(
            '\n| kept float | depth AbsRel vs fp32 | delta1 | feature cos min | feature cos p5 '
            '| embedding cos min |'
        )
        print('|---|---|---|---|---|---|')
        for groups in choices:
            quantized, _ = quantize_model(onnx.load(str(artifact)), calibrated, groups)
            path = directory / 'scope.int8.onnx'
            onnx.save(quantized, str(path))
            candidate = OnnxRuntimeBackend(path, metadata, '', device=cpu, precision='int8')
            gate = score_outputs(
                reference, run_frames(candidate, held_out), max_abs_rel=0.01, min_feature_cos=0.99
            )
            f = gate.figures
            print(
                f'| {", ".join(groups) or "none"} | {f["depth_abs_rel"]:.5f} | '
                f'{f["depth_delta1"]:.4f} | {f["feature_cos_min"]:.5f} | '
                f'{f["feature_cos_p5"]:.5f} | {f["embedding_cos_min"]:.5f} |',
                flush=True,
            )
    return 0


if __name__ == '__main__':
    sys.exit(main())
