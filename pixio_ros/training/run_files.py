"""The run directory: config, head checkpoints, resumable state, CSV log and curve plot.

Every file is written under a temporary name and renamed into place, so an interrupted run
leaves the previous epoch's files intact and `--resume` can always continue.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixio_ros.files import write_atomically
from pixio_ros.training.errors import TrainingError

RUN_CONFIG = 'run_config.json'
LAST_HEAD = 'last.safetensors'
BEST_HEAD = 'best.safetensors'
LAST_STATE = 'last_state.pt'
TRAIN_LOG = 'train_log.csv'
CURVES = 'curves.png'
# Settings that must not change between a run and its resumption.
RESUME_INVARIANTS = ('encoder_sha256', 'size', 'head_kind', 'input_size', 'max_depth', 'epochs')


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + '\n'
    write_atomically(path, lambda temp: temp.write_text(text, encoding='utf-8'))


def copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` onto ``target`` without a moment where ``target`` is half written."""
    write_atomically(target, lambda temp: shutil.copyfile(source, temp))


def prepare_run_dir(run_dir: Path, run_config: Mapping[str, Any], *, resume: bool) -> None:
    """Create a fresh run directory, or check that ``--resume`` continues the same run.

    Raises:
        TrainingError: A non-empty directory without ``resume``; with ``resume`` a missing
            state or a run trained with a different encoder, head, size or schedule.
    """
    if resume:
        config_path = run_dir / RUN_CONFIG
        if not config_path.is_file() or not (run_dir / LAST_STATE).is_file():
            raise TrainingError(
                f'--resume: {run_dir} has no {RUN_CONFIG} / {LAST_STATE} from an earlier run; '
                'drop --resume to start a new one.'
            )
        stored = json.loads(config_path.read_text(encoding='utf-8'))
        changed = [
            f'{key} {stored.get(key)!r} -> {run_config.get(key)!r}'
            for key in RESUME_INVARIANTS
            if stored.get(key) != run_config.get(key)
        ]
        if changed:
            raise TrainingError(
                f'--resume: {run_dir} was trained with other settings ({"; ".join(changed)}); '
                'resume with the same encoder checkpoint and options, or use a new --out.'
            )
        return
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise TrainingError(
            f'{run_dir} exists and is not empty; pass --resume to continue that run or choose '
            'another --out. Nothing was overwritten.'
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RUN_CONFIG, run_config)


def write_log(run_dir: Path, history: Sequence[Mapping[str, float]]) -> None:
    """Rewrite ``train_log.csv`` with one row per finished epoch."""
    if not history:
        return
    fields = list(history[0])

    def write(temp: Path) -> None:
        with temp.open('w', newline='', encoding='utf-8') as stream:
            writer = csv.DictWriter(stream, fieldnames=fields)
            writer.writeheader()
            writer.writerows(history)

    write_atomically(run_dir / TRAIN_LOG, write)


def plot_curves(run_dir: Path, history: Sequence[Mapping[str, float]]) -> None:
    """Training SiLog and validation AbsRel per epoch, as ``curves.png``."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [row['epoch'] for row in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axis.plot(epochs, [row['train_silog'] for row in history], marker='o')
    loss_axis.set(xlabel='epoch', ylabel='train SiLog', title='training loss')
    metric_axis.plot(epochs, [row['val_abs_rel'] for row in history], marker='o', color='C1')
    metric_axis.set(xlabel='epoch', ylabel='val AbsRel', title='validation')
    figure.tight_layout()
    write_atomically(run_dir / CURVES, lambda temp: figure.savefig(temp, format='png', dpi=100))
    plt.close(figure)
