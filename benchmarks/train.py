"""Head-training step time with and without --cache-features, and examples per second.

Both variants run in one process on the same frames and weights (a random-init encoder: speed
does not depend on the values); figures are medians over the timed steps. Run:

    python benchmarks/train.py [--size vitb16] [--head depth] [--input-size 256x256]
                               [--batch 2] [--steps 4] [--frames 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pixio_ros.commands.args import HXW_HELP, parse_hxw
from pixio_ros.data import SampleBagSpec, render_frame
from pixio_ros.model import PixioEncoder, get_size
from pixio_ros.training import RGBDSample, TrainConfig
from pixio_ros.training.trainer import HeadTrainer

FRAME_SIZE = (240, 320)
WARMUP_STEPS = 1


def timed_steps(trainer: HeadTrainer, steps: int, batch: int, frames: int) -> list[float]:
    times = []
    for step in range(WARMUP_STEPS + steps):
        indices = [(step * batch + i) % frames for i in range(batch)]
        start = time.perf_counter()
        trainer.train_step(trainer.make_batch(indices))
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='vitb16')
    parser.add_argument('--head', default='depth', choices=('depth', 'points', 'linear'))
    parser.add_argument('--input-size', type=parse_hxw, default=(256, 256), help=HXW_HELP)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    height, width = args.input_size
    spec = SampleBagSpec(frames=args.frames, height=FRAME_SIZE[0], width=FRAME_SIZE[1])
    samples = []
    for index in range(args.frames):
        rgb, depth, camera = render_frame(spec, index)
        samples.append(RGBDSample(rgb, depth.astype('float32'), camera, 'synthetic', index))
    with tempfile.TemporaryDirectory() as scratch:
        encoder_path = Path(scratch) / 'encoder.pth'
        torch.manual_seed(0)
        torch.save(PixioEncoder(get_size(args.size)).state_dict(), encoder_path)
        config = TrainConfig(
            encoder=encoder_path,
            head_kind=args.head,
            out=Path(scratch) / 'run',
            input_size=(height, width),
            batch=args.batch,
            crop=False,
            progress=False,
        )
        trainer = HeadTrainer(config, samples, [])
        plain = timed_steps(trainer, args.steps, args.batch, args.frames)
        start = time.perf_counter()
        trainer.build_cache()
        cache_seconds = time.perf_counter() - start
        cached = timed_steps(trainer, args.steps, args.batch, args.frames)
    plain_s, cached_s = statistics.median(plain), statistics.median(cached)
    print(
        f'{args.size} + {args.head} head, {height}x{width}, batch {args.batch}, '
        f'{args.threads} threads, median of {args.steps} steps (shared machine: noisy)'
    )
    print(f'step without cache: {plain_s * 1e3:9.1f} ms  {args.batch / plain_s:7.2f} examples/s')
    print(f'step with cache:    {cached_s * 1e3:9.1f} ms  {args.batch / cached_s:7.2f} examples/s')
    print(
        f'speed-up from --cache-features: {plain_s / cached_s:.2f}x '
        f'(building the cache of {args.frames} frames took {cache_seconds:.1f} s)'
    )


if __name__ == '__main__':
    main()
