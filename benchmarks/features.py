"""`pixio-ros features` speed and dataset size per frame, beside the bare engine, per model size.

For each size (random-init artifacts at the input size; speed does not depend on the weights) one
synthetic 240x320 bag is featurized in alternating rounds: the bare `Engine.infer` on the same
frames, then `extract_features` with float32 features, then float16. Printed: medians over the
rounds of frames/s, the ratio to the bare engine, and the dataset's bytes on disk per frame.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # as the command, before torch loads
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rig import random_init_artifact

from pixio_ros.commands.args import parse_hxw
from pixio_ros.data.decode import decode_color
from pixio_ros.data.sample_bag import COLOR_TOPIC, SampleBagSpec, write_sample_bag


def _bare_fps(artifact: Path, bag: Path) -> float:
    """Engine.infer back to back over the bag's frames (decoded beforehand), outputs as the rows."""
    from pixio_ros.data.bag import BagReader
    from pixio_ros.runtime.engine import Engine

    with BagReader(bag) as reader:
        frames = [decode_color(m.msg) for m in reader.messages(COLOR_TOPIC)]
    engine = Engine(artifact, device='cpu', warmup_runs=3)
    outputs = ['depth', 'features', 'embedding']
    start = time.perf_counter()
    for rgb in frames:
        engine.infer(rgb, outputs=outputs, output_size=rgb.shape[:2])
    return len(frames) / (time.perf_counter() - start)


def _features(artifact: Path, bag: Path, out: Path, dtype: str) -> tuple[float, int]:
    """(frames/s, bytes on disk per frame) of one `pixio-ros features` run."""
    from pixio_ros.evaluation.featurize import FeaturesConfig, extract_features

    summary = extract_features(
        FeaturesConfig(
            bags=(bag,),
            model=artifact,
            out=out,
            image_topic=COLOR_TOPIC,
            features_dtype=dtype,  # type: ignore[arg-type]
            device='cpu',
            force=True,
        )
    )
    size = sum(p.stat().st_size for p in out.glob('data-*.arrow'))
    return summary.frames_per_s, size // summary.frames


def main() -> None:
    """Run the rounds and print one table row per model size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', default='tiny,vitb16')
    parser.add_argument('--input', type=parse_hxw, default=(240, 320))
    parser.add_argument('--frames', default='tiny:24,vitb16:6', help='frames per bag per size')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--head', default='points', choices=('points', 'depth'))
    args = parser.parse_args()
    frames_of = dict(item.split(':') for item in args.frames.split(','))
    warnings.simplefilter('ignore')
    work = Path(tempfile.mkdtemp(prefix='pixio_features_bench_'))
    height, width = args.input
    try:
        print('| size | bare Engine.infer fps | features fps f32 / f16 | ratio f32 | ', end='')
        print('bytes/frame f32 / f16 |')
        print('|---|---|---|---|---|')
        for size in args.sizes.split(','):
            artifact = random_init_artifact(work, size, args.head, args.input)
            spec = SampleBagSpec(frames=int(frames_of.get(size, 6)), height=height, width=width)
            bag = write_sample_bag(work / f'{size}_bag', spec)
            bare, f32, f16, bytes32, bytes16 = [], [], [], 0, 0
            for _ in range(args.rounds):
                bare.append(_bare_fps(artifact, bag))
                fps, bytes32 = _features(artifact, bag, work / 'f32', 'float32')
                f32.append(fps)
                fps, bytes16 = _features(artifact, bag, work / 'f16', 'float16')
                f16.append(fps)
            b, a, h = (statistics.median(x) for x in (bare, f32, f16))
            print(
                f'| {size} | {b:.2f} | {a:.2f} / {h:.2f} | {a / b:.2f} | {bytes32} / {bytes16} |',
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
