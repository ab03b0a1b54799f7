"""`pixio-ros demo`: the README's first command: a head that learns, then the node runs it.

Writes a training bag and a held-out bag of synthetic rooms (different seeds), trains a depth
head on a frozen RANDOM encoder for about a minute (`pixio_ros.demo.learning`), exports it,
runs pixio_node on the held-out bag over DDS (`pixio_ros.demo.live`) and prints the trained
head's scores beside the untrained one's. With --model it runs that artifact instead (no
training). This module only parses options and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

HELP = 'Train a depth head on synthetic scenes, run the node with it, and show what it learned.'
DEFAULT_RATE: Final = 0.5
POLICY_NOTE: Final = (
    'the encoder is RANDOM (no Pixio weights are downloaded): the policy learns the synthetic '
    'turn-to-target task from random features, so the scores show that recording, features, '
    'training and the policy node work, not how Pixio features serve a real policy.'
)
RANDOM_ENCODER_NOTE: Final = (
    'the encoder is RANDOM (no Pixio weights are downloaded): the depth head is trained on '
    'synthetic scenes only, so these numbers show that the training loop and the node work, '
    'not how Pixio does on real images (docs/reproduce.md trains real heads).'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the demo's options."""
    parser.add_argument(
        '--model', type=Path, help='run this artifact instead of training a head (no comparison)'
    )
    parser.add_argument(
        '--tiny', action='store_true', help='a small bag and input: seconds instead of a minute'
    )
    parser.add_argument(
        '--cache-dir',
        type=Path,
        default=Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'pixio_ros',
        help='where the sample bags and the random encoder are kept',
    )
    parser.add_argument(
        '--out', type=Path, help='result directory (default: CACHE/demo/run-<time>; never reused)'
    )
    parser.add_argument(
        '--rate',
        type=float,
        default=DEFAULT_RATE,
        help=f'playback speed factor (default {DEFAULT_RATE}: a 15 Hz camera)',
    )
    parser.add_argument('--device', default='cpu', help='node and training device (cpu, cuda)')
    parser.add_argument(
        '--rerun',
        type=Path,
        metavar='RUN.rrd',
        help="also write a Rerun recording of the live run's evaluation (as eval --rerun)",
    )
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--policy',
        action='store_true',
        help='the policy demo instead: record turn-to-target demonstrations, featurize, train '
        'a policy, run pixio_node + pixio_policy_node on a held-out bag and score the live '
        'actions beside the mean-action baseline (needs --out, a folder that does not exist)',
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 only if every output of the node arrived."""
    if args.policy:
        return _policy_demo(args)
    from pixio_ros.data.errors import DataError
    from pixio_ros.demo.learning import HELD_OUT_SEED, PRESETS, compare_heads, learn_head
    from pixio_ros.demo.learning import sample_bag as demo_bag
    from pixio_ros.demo.live import LiveRun, evaluate_recording, prepare_environment
    from pixio_ros.files import atomic_output, check_writable, write_atomically
    from pixio_ros.model.artifact_format import random_init_parts, read_metadata

    if args.model is not None and not args.model.is_file():
        raise DataError(
            f'--model {args.model} does not exist; make one with `pixio-ros export '
            '...` or omit --model to train a head on synthetic scenes.'
        )
    started = time.monotonic()
    prepare_environment()
    preset = PRESETS['tiny' if args.tiny else 'default']
    cache = args.cache_dir.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    out = Path(args.out or cache / 'demo' / time.strftime('run-%Y%m%d-%H%M%S'))
    check_writable(out, force=args.force)
    if args.rerun is not None:  # refused before anything runs, as eval would refuse it
        from pixio_ros.evaluation.config import check_rerun_path
        from pixio_ros.evaluation.rerun_recording import import_rerun

        import_rerun()
        check_rerun_path(args.rerun, out=out)
        check_writable(args.rerun, force=args.force)
    held_out = demo_bag(cache, preset, seed=HELD_OUT_SEED, frames=preset.frames)
    if args.model is None:
        print(f'pixio-ros demo: {RANDOM_ENCODER_NOTE}')
    stats: dict[str, Any] = {}
    with atomic_output(out, force=args.force) as stage:
        stage.mkdir()
        learned = None
        if args.model is None:
            learned = learn_head(preset, cache, stage, device=args.device)
            model = learned.trained
        else:
            model = args.model
        stats = LiveRun(held_out, model, stage, rate=args.rate, device=args.device).run()
        stats['model'] = str(out / model.name) if learned else str(model)
        if learned is not None:
            stats['training'] = _training_summary(learned, preset)
        dump_json(stage / 'summary.json', stats)
    parts = random_init_parts(read_metadata(out / model.name if learned else model))
    if stats['frames_out'] > 0:
        # In place (each its own atomic output) so the reports name the final paths.
        stats['eval'] = evaluate_recording(
            out, align='scale_shift' if 'head' in parts else 'none', rerun=args.rerun
        )
    if learned is not None:
        print('scoring the untrained and the trained head on every frame of the held-out bag ...')
        stats['comparison'] = {
            'held_out_bag': str(held_out),
            'metrics_kind': 'raw_metric (no alignment)',
            **compare_heads(
                held_out,
                {'untrained': out / 'untrained.ts', 'trained': out / 'trained.ts'},
                out / 'compare',
                device=args.device,
            ),
        }
    stats['seconds'] = round(time.monotonic() - started, 1)
    write_atomically(out / 'summary.json', lambda temp: dump_json(temp, stats))
    _print_results(stats, parts, out, learned is not None)
    return _exit_code(stats, out)


def _training_summary(learned: Any, preset: Any) -> dict[str, Any]:
    training = learned.training
    return {
        'encoder': f'{preset.model_size} (random weights)',
        'head': preset.head_kind,
        'input_size': list(preset.input_size),
        'train_bag': str(learned.train_bag),
        'train_frames': learned.train_frames,
        'epochs': training.epochs_done,
        'epochs_planned': training.epochs_planned,
        'budget_s': preset.budget_s,
        'seconds': round(training.seconds, 1),
        'cache_seconds': round(training.cache_s, 1),
        'lr': preset.lr,
        'final_train_silog': training.result.history[-1]['train_silog'],
    }


def _print_results(stats: dict[str, Any], parts: tuple[str, ...], out: Path, learned: bool) -> None:
    from pixio_ros.evaluation.live import summary_lines

    for line in summary_lines(stats):
        print(line)
    comparison = stats.get('comparison')
    if comparison:
        frames = comparison['trained']['frames']
        print(
            f'held-out bag (another synthetic room), {frames} frames, metric depth, no alignment:'
        )
        print(f'  {"head":<10} {"AbsRel":>8} {"delta1":>8} {"RMSE m":>8}')
        for name in ('untrained', 'trained'):
            row = comparison[name]
            print(f'  {name:<10} {row["abs_rel"]:8.3f} {row["delta1"]:8.3f} {row["rmse"]:8.3f}')
    if learned:
        training = stats['training']
        print(
            f'NOTE: {RANDOM_ENCODER_NOTE} Trained {training["epochs"]} epochs in '
            f'{training["seconds"]:.0f} s on {training["train_frames"]} frames of another '
            'synthetic room.'
        )
    elif 'encoder' in parts:
        print(
            'NOTE: the model has RANDOM weights; its depth is noise-like and the metrics '
            'only show that the pipeline works. Pass --model for a trained artifact.'
        )
    elif parts:
        print('NOTE: the model has a RANDOM head; its depth is not meaningful.')
    print(f'demo took {stats["seconds"]:.0f} s')
    print(
        f'results in {out}: recording/ (mcap), depth_colormap.png, points.ply, eval/report.md, '
        + ('compare/, training/, trained.ts, ' if learned else '')
        + 'node.log, summary.json'
    )


def _exit_code(stats: dict[str, Any], out: Path) -> int:
    from pixio_ros.demo.live import NODE_NAMESPACE

    missing = stats['missing_outputs']
    if not missing:
        return 0
    hint = (
        ' (an artifact without a depth head publishes no depth or points; use one '
        'exported with --head-kind depth or points)'
        if 'depth' in missing
        else ''
    )
    print(
        f'pixio-ros demo: error: the node never published {", ".join(missing)} under '
        f'{NODE_NAMESPACE}{hint}; see {out / "node.log"}',
        file=sys.stderr,
    )
    return 1


def dump_json(path: Path, document: dict[str, Any]) -> None:
    """Write JSON with stable key order."""
    path.write_text(json.dumps(document, indent=2) + '\n')


def _policy_demo(args: argparse.Namespace) -> int:
    """`demo --policy`: the four commands of the README's Policies section, then both scores."""
    from pixio_ros.data.errors import DataError
    from pixio_ros.demo.policy import PolicyDemo
    from pixio_ros.files import check_writable

    if args.out is None:
        raise DataError('demo --policy needs --out DIR (a folder that does not exist yet).')
    check_writable(args.out, force=False)
    print(f'pixio-ros demo --policy: {POLICY_NOTE}')
    result = PolicyDemo(args.out, rate=args.rate, device=args.device).run()
    print('turn-to-target, action MSE (rad/s)^2 of cmd_vel angular.z beside the mean action:')
    print(f'  {"":<28} {"policy":>9} {"mean action":>12} {"margin":>7}')
    for name, score in (
        ('validation (offline)', result.validation),
        ('held-out episodes (offline)', result.offline),
        ('held-out episodes (live)', result.live),
    ):
        print(
            f'  {name:<28} {score["mse"]:9.5f} {score["baseline_mse"]:12.5f} '
            f'{score["margin"]:6.1f}x'
        )
    print(
        f'live: {result.live_actions} actions for {result.frames} frames; step times: '
        + ', '.join(f'{step} {seconds:.1f} s' for step, seconds in result.seconds.items())
    )
    dump_json(
        args.out / 'summary.json',
        {
            'seconds': result.seconds,
            'validation': result.validation,
            'offline': result.offline,
            'live': result.live,
            'live_actions': result.live_actions,
            'frames': result.frames,
        },
    )
    return 0 if result.live['margin'] > 1.0 else 1
