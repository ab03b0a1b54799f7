"""`pixio-ros bench`: Engine latency (p50/p95) and throughput of an artifact on this machine."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pixio_ros.commands.args import HXW_HELP, parse_hxw

HELP = 'Measure Engine.infer latency (p50/p95) and throughput of an artifact on this machine.'
DEFAULT_RUNS = 20
MEDIAN = 50
P95 = 95


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the artifact and measurement options."""
    parser.add_argument('artifact', type=Path, help='file written by `pixio-ros export`')
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda or cuda:N')
    parser.add_argument(
        '--precision',
        default='fp32',
        choices=('fp32', 'fp16', 'bf16', 'int8'),
        help='fp32 (default); bf16 on CPUs with native bf16, fp16 on NVIDIA; int8 for an INT8 '
        'artifact of `pixio-ros quantize`',
    )
    parser.add_argument(
        '--backend',
        default='auto',
        choices=('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt'),
        help='runtime of the forward pass (default auto: the fastest installed one that reads '
        'the artifact on the device)',
    )
    parser.add_argument(
        '--size',
        type=parse_hxw,
        default=None,
        help=f'camera image size fed to the engine: {HXW_HELP} (default: the '
        "artifact's input size); outputs are resized back to it",
    )
    parser.add_argument(
        '--runs',
        type=int,
        default=DEFAULT_RUNS,
        help=f'timed runs after warm-up (default {DEFAULT_RUNS})',
    )


def run(args: argparse.Namespace) -> int:
    """Load the artifact, warm up, time `runs` calls on a fixed random image and print."""
    import warnings

    import numpy as np

    from pixio_ros.runtime.engine import Engine, EngineError, RandomInitWarning

    if args.runs < 1:
        raise EngineError(f'--runs is {args.runs}; use 1 or more')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        engine = Engine(
            args.artifact, device=args.device, precision=args.precision, backend=args.backend
        )
    size = args.size or engine.input_size
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    latencies = []
    started = time.perf_counter()
    for _ in range(args.runs):
        prediction = engine.infer(image, output_size=size)
        latencies.append(prediction.inference_ms)
    elapsed = time.perf_counter() - started
    p50, p95 = np.percentile(latencies, [MEDIAN, P95])
    print(
        f'{args.artifact.name}: {engine.metadata.size} '
        f'{engine.metadata.head_kind} head, input '
        f'{engine.input_size[0]}x{engine.input_size[1]}, image {size[0]}x{size[1]}, '
        f'{engine.device} {engine.precision}'
    )
    print(f'  backend {engine.backend_info.summary()}')
    print(f'  parity {engine.backend_info.parity_summary()}')
    print(f'  latency p50 {p50:.1f} ms  p95 {p95:.1f} ms  ({args.runs} runs)')
    print(f'  throughput {args.runs / elapsed:.2f} frames/s')
    return 0
