"""Head training (and eval) on 1 and 2 torch.distributed processes, side by side in one run.

Each configuration (processes x threads) is one real gloo process group, started the way
torchrun starts its workers, training the same head on the same frames with the same global
batch. Per round, every configuration times: an epoch without the feature cache (encoder +
head), building the cache in memory (the ranks exchange their shards), building it into an
empty --cache-dir, reading it back from that directory (a later run), and an epoch from the
cache (head only). Figures are medians over the rounds; samples/s counts the frames of an
epoch, all ranks together. With --eval, `pixio-ros eval` under torchrun on a bag of the same
frames, 1 and 2 processes in alternating rounds, on a random-init artifact (bench_rig). Run:

    make setup && . .venv/pixio_env.sh && python benchmarks/distributed.py [--size tiny] \
        [--head depth] [--input-size 64x96] [--frames 48] [--batch 8] [--rounds 5] [--eval]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before torch loads (the spawned ranks inherit it): idle OpenMP threads sleep instead of
# spinning, as `pixio-ros eval` sets it; on a shared machine spinning threads of one process
# steal the cores of the others.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch
import torch.multiprocessing as mp

from pixio_ros.commands.args import HXW_HELP, parse_hxw
from pixio_ros.data import SampleBagSpec, render_frame, write_sample_bag
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC
from pixio_ros.distributed import all_gather, joined, world_from_env
from pixio_ros.model import PixioEncoder, get_size
from pixio_ros.training import RGBDSample, TrainConfig
from pixio_ros.training.data_parallel import data_parallel
from pixio_ros.training.feature_cache import build_feature_cache
from pixio_ros.training.trainer import HeadTrainer

FRAME_SIZE = (96, 128)
CORES = os.cpu_count() or 1
MEASURES = ('uncached_epoch', 'cache_in_memory', 'cache_build', 'cache_reuse', 'cached_epoch')
CACHE_LIMIT_GB = 64.0


@dataclass(frozen=True)
class Setup:
    """One configuration: how many processes, each with how many torch threads."""

    processes: int
    threads: int

    @property
    def label(self) -> str:
        """'2 processes x 1 thread'."""
        noun = 'process' if self.processes == 1 else 'processes'
        thread = 'thread' if self.threads == 1 else 'threads'
        return f'{self.processes} {noun} x {self.threads} {thread}'


SETUPS = (Setup(1, 2), Setup(2, 1), Setup(1, 1))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def frames(count: int) -> list[RGBDSample]:
    """``count`` frames of the synthetic scene (rendered, not read: no bag I/O in the timing)."""
    spec = SampleBagSpec(frames=count, height=FRAME_SIZE[0], width=FRAME_SIZE[1])
    samples = []
    for index in range(count):
        rgb, depth, camera = render_frame(spec, index)
        samples.append(RGBDSample(rgb, depth.astype('float32'), camera, 'synthetic', index))
    return samples


def timed(world: Any, times: list[float], work: Any, *args: Any) -> Any:
    """``work(*args)``, its seconds on this rank appended to ``times`` (ranks start together)."""
    all_gather(None, world, 'starting together')
    start = time.perf_counter()
    result = work(*args)
    times.append(time.perf_counter() - start)
    return result


def epoch(trainer: HeadTrainer, count: int, batch: int) -> None:
    """One pass over the frames in a fixed order (the trainer's batches and steps)."""
    for start in range(0, count, batch):
        indices = [i % count for i in range(start, min(start + batch, count))]
        trainer.train_step(trainer.make_batch(indices))


def worker(rank: int, setup: Setup, port: int, options: dict[str, Any], result: str) -> None:
    """One rank: time every measure for ``options['rounds']`` rounds; rank 0 writes ``result``."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(setup.processes),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(setup.threads)
    scratch = Path(options['scratch'])
    samples = frames(options['frames'])
    config = TrainConfig(
        encoder=scratch / 'encoder.pth',
        head_kind=options['head'],
        out=scratch / 'unused',
        input_size=tuple(options['input_size']),
        batch=options['batch'],
        crop=False,
        device='cpu',
        progress=False,
    )
    times: dict[str, list[float]] = {name: [] for name in MEASURES}
    with joined(torch.device('cpu'), world_from_env()) as world:
        trainer = HeadTrainer(config, samples, [], world=world)
        trainer.head_step = data_parallel(trainer.net.head, world, trainer.device)
        count, batch = len(samples), config.batch

        def cache(directory: Path | None) -> Any:
            return build_feature_cache(
                trainer.net,
                samples,
                config.input_size,
                trainer.device,
                amp='none',
                limit_gb=CACHE_LIMIT_GB,
                world=world,
                cache_dir=directory,
                encoder_key='benchmark',
            )

        epoch(trainer, count, batch)  # warm-up: first calls allocate and specialise
        for round_index in range(options['rounds']):
            trainer.cache = None
            timed(world, times['uncached_epoch'], epoch, trainer, count, batch)
            timed(world, times['cache_in_memory'], cache, None)
            directory = scratch / f'cache-{setup.processes}x{setup.threads}-{round_index}'
            timed(world, times['cache_build'], cache, directory)
            trainer.cache = timed(world, times['cache_reuse'], cache, directory)
            timed(world, times['cached_epoch'], epoch, trainer, count, batch)
    if rank == 0:
        Path(result).write_text(json.dumps(times))


def run_setup(setup: Setup, options: dict[str, Any]) -> dict[str, list[float]]:
    """Start ``setup.processes`` ranks (spawned, as torchrun starts them); rank 0's timings."""
    result = Path(options['scratch']) / f'times-{setup.processes}x{setup.threads}.json'
    mp.start_processes(
        worker,
        args=(setup, free_port(), options, str(result)),
        nprocs=setup.processes,
        start_method='spawn',
    )
    return json.loads(result.read_text())


def eval_rounds(scratch: Path, options: dict[str, Any], rounds: int) -> dict[int, list[float]]:
    """`pixio-ros eval` frames/s under torchrun, 1 and 2 processes in alternating rounds."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_rig import random_init_artifact

    height, width = options['input_size']
    artifact = random_init_artifact(scratch, options['size'], options['head'], (height, width))
    spec = SampleBagSpec(frames=options['frames'], height=FRAME_SIZE[0], width=FRAME_SIZE[1])
    bag = write_sample_bag(scratch / 'bag', spec)
    speeds: dict[int, list[float]] = {1: [], 2: []}
    for round_index in range(rounds):
        for processes in speeds:
            out = scratch / f'eval-{processes}-{round_index}'
            command = [sys.executable, '-m', 'torch.distributed.run', '--standalone']
            command += [f'--nproc-per-node={processes}', '-m', 'pixio_ros.cli', 'eval', str(bag)]
            command += ['--model', str(artifact), '--device', 'cpu', '--out', str(out)]
            command += ['--image-topic', COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC]
            threads = str(max(1, CORES // processes))
            env = {**os.environ, 'OMP_NUM_THREADS': threads}
            subprocess.run(command, check=True, capture_output=True, env=env)
            summary = json.loads((out / 'metrics.json').read_text())['summary']
            speeds[processes].append(float(summary['speed']['frames_per_s']))
    return speeds


def print_training(results: dict[Setup, dict[str, list[float]]], options: dict[str, Any]) -> None:
    count = options['frames']
    median = {s: {k: statistics.median(v) for k, v in t.items()} for s, t in results.items()}
    base = median[SETUPS[0]]
    print(
        '| processes x threads | uncached samples/s | cached samples/s | cache speed-up '
        '| cache in memory s | cache build s | cache reuse s | uncached vs 1x2 |'
    )
    print('|---|---|---|---|---|---|---|---|')
    for setup, m in median.items():
        uncached, cached = count / m['uncached_epoch'], count / m['cached_epoch']
        print(
            f'| {setup.label} | {uncached:.1f} | {cached:.1f} | '
            f'{m["uncached_epoch"] / m["cached_epoch"]:.1f}x | {m["cache_in_memory"]:.2f} | '
            f'{m["cache_build"]:.2f} | {m["cache_reuse"]:.2f} | '
            f'{base["uncached_epoch"] / m["uncached_epoch"]:.2f}x |'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='tiny')
    parser.add_argument('--head', default='depth', choices=('depth', 'points'))
    parser.add_argument('--input-size', type=parse_hxw, default=(64, 96), help=HXW_HELP)
    parser.add_argument('--frames', type=int, default=48)
    parser.add_argument('--batch', type=int, default=8, help='global batch')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--eval', action='store_true', help='also time eval, 1 vs 2 processes')
    parser.add_argument('--eval-rounds', type=int, default=3)
    args = parser.parse_args()
    height, width = args.input_size
    with tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(0)
        torch.save(PixioEncoder(get_size(args.size)).state_dict(), Path(scratch) / 'encoder.pth')
        options = {
            'scratch': scratch,
            'size': args.size,
            'head': args.head,
            'input_size': [height, width],
            'frames': args.frames,
            'batch': args.batch,
            'rounds': args.rounds,
        }
        load_before = os.getloadavg()
        started = time.perf_counter()
        results = {setup: run_setup(setup, options) for setup in SETUPS}
        speeds = eval_rounds(Path(scratch), options, args.eval_rounds) if args.eval else {}
        load_after = os.getloadavg()
    print(
        f'{args.size} + {args.head} head, {height}x{width} input, {args.frames} frames, global '
        f'batch {args.batch}, gloo on {CORES} cores, median of {args.rounds} rounds; '
        f'{time.perf_counter() - started:.0f} s; load average before '
        f'{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)'
    )
    print_training(results, options)
    if speeds:
        one, two = (statistics.median(speeds[n]) for n in (1, 2))
        print(
            f'\neval (`pixio-ros eval` under torchrun, {CORES // 1} / {CORES // 2} threads per '
            f'process, median of {args.eval_rounds} rounds): 1 process {one:.1f} frames/s, '
            f'2 processes {two:.1f} frames/s, ratio {two / one:.2f}x'
        )


if __name__ == '__main__':
    main()
