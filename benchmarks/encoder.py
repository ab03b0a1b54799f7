"""Encoder speed: ours vs transformers.PixioModel, fraction of the fp32 matmul peak, TorchScript.

Everything is measured in one run on the same weights and input, interleaved so that load from
other processes hits both sides alike; figures are medians. Run:

    python benchmarks/encoder.py [--size vitb16] [--input-size 256x256] [--runs 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from pixio_ros.commands.args import HXW_HELP, parse_hxw
from pixio_ros.model import PixioEncoder, get_size, hf_to_pixio_state_dict
from pixio_ros.model.artifact_format import quiet_torchscript
from pixio_ros.model.sizes import MLP_RATIO, NUM_CLASS_TOKENS, PATCH_SIZE

MATMUL_SIDE = 2048
WARMUP_RUNS = 2


def best_seconds(function: Callable[[], object], runs: int) -> float:
    for _ in range(WARMUP_RUNS):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_times(
    functions: dict[str, Callable[[], object]], runs: int
) -> dict[str, list[float]]:
    """Run times of each function, alternating them run by run."""
    for function in functions.values():
        for _ in range(WARMUP_RUNS):
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def matmul_peak_gflops(runs: int) -> float:
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    seconds = best_seconds(lambda: torch.mm(a, b), runs)
    return 2 * MATMUL_SIDE**3 / seconds / 1e9


def encoder_gflop(dim: int, depth: int, height: int, width: int) -> float:
    """Multiply-add FLOPs (x2) of the matmuls and convolution of one forward, in GFLOP."""
    patches = (height // PATCH_SIZE) * (width // PATCH_SIZE)
    tokens = patches + NUM_CLASS_TOKENS
    patch_embed = 2 * patches * dim * 3 * PATCH_SIZE**2
    linear = 2 * tokens * dim * dim * (3 + 1 + 2 * MLP_RATIO)
    attention = 2 * 2 * tokens * tokens * dim
    return (patch_embed + depth * (linear + attention)) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='vitb16')
    parser.add_argument('--input-size', type=parse_hxw, default=(256, 256), help=HXW_HELP)
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    height, width = args.input_size
    size = get_size(args.size)

    from transformers import PixioConfig, PixioModel

    warnings.filterwarnings('ignore', category=UserWarning)
    torch.manual_seed(0)
    config = PixioConfig(
        hidden_size=size.embed_dim,
        num_hidden_layers=size.depth,
        num_attention_heads=size.num_heads,
    )
    reference = PixioModel(config).eval()
    ours = PixioEncoder(size).eval()
    ours.load_state_dict(hf_to_pixio_state_dict(reference.state_dict()))
    with quiet_torchscript():
        scripted = torch.jit.script(ours)
    pixels = torch.randn(1, 3, height, width)

    with torch.inference_mode():
        diff = (ours(pixels) - reference(pixels).last_hidden_state).abs().max().item()
        peak = matmul_peak_gflops(args.runs)
        times = interleaved_times(
            {
                'ours': lambda: ours(pixels),
                'transformers': lambda: reference(pixels),
                'torchscript': lambda: scripted(pixels),
            },
            args.runs,
        )
        peak_after = matmul_peak_gflops(args.runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    minima = {name: min(values) for name, values in times.items()}
    gflop = encoder_gflop(size.embed_dim, size.depth, height, width)
    peak = max(peak, peak_after)
    print(
        f'{args.size} at {height}x{width}, batch 1, fp32, {args.threads} threads, median of '
        f'{args.runs} interleaved runs (shared machine: figures are noisy)'
    )
    print(f'torch.mm {MATMUL_SIDE}^2 fp32 peak (best run): {peak:8.1f} GFLOP/s')
    print('              median ms  GFLOP/s  of peak   (best run: ms, of peak)')
    for name in ('ours', 'transformers', 'torchscript'):
        rate, best_rate = gflop / medians[name], gflop / minima[name]
        print(
            f'{name:13s} {medians[name] * 1e3:9.1f} {rate:8.1f} {rate / peak:8.2f}   '
            f'({minima[name] * 1e3:.1f} ms, {best_rate / peak:.2f})'
        )
    for label, figures in (('median', medians), ('best run', minima)):
        versus_reference = figures['transformers'] / figures['ours']
        versus_eager = figures['ours'] / figures['torchscript']
        print(
            f'{label:8s} speed ours / transformers: {versus_reference:5.2f}x   '
            f'torchscript / eager: {versus_eager:5.2f}x'
        )
    print(f'max |ours - transformers|:    {diff:.2e}  (last_hidden_state)')


if __name__ == '__main__':
    main()
