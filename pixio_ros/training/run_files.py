"""The run directory: config, checkpoints, resumable state, CSV log and curve plot.

Every file is written under a temporary name and renamed into place, so an interrupted run
leaves the previous epoch's files intact and `--resume` can always continue.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixio_ros.files import write_atomically
from pixio_ros.training.errors import TrainingError

LOGGER = logging.getLogger(__name__)
RUN_CONFIG = 'run_config.json'
LAST_HEAD = 'last.safetensors'
BEST_HEAD = 'best.safetensors'
LAST_STATE = 'last_state.pt'
TRAIN_LOG = 'train_log.csv'
CURVES = 'curves.png'
# Settings that must not change between a run and its resumption (a change would break the
# bit-for-bit continuation), each with the option or input that sets it.
RESUME_INVARIANTS = {
    'encoder_sha256': '--encoder',
    'size': '--encoder',
    'head_kind': '--head',
    'input_size': '--input-size',
    'max_depth': '--max-depth',
    'min_depth': '--min-depth',
    'epochs': '--epochs',
    'batch': '--batch',
    'learning_rate': '--lr',
    'seed': '--seed',
    'crop': '--no-crop',
    'flip': '--no-flip',
    'cache_features': '--cache-features',
    'amp': '--amp',
    'processes': 'the number of processes (torchrun --nproc-per-node x --nnodes); another '
    'number would change the floating-point reduction order',
    'train_frames': 'the training data (--bag/--data, --val-fraction)',
    'val_frames': 'the validation data (--bag/--data, --val-fraction)',
    'train_data': 'the training data (--bag/--data, --val-fraction)',
    'val_data': 'the validation data (--bag/--data, --val-fraction)',
}
# The value of an invariant a run recorded before it existed.
RESUME_DEFAULTS: dict[str, Any] = {'processes': 1}
# What a run that stopped before finishing its first epoch can leave behind; such a directory
# holds nothing to continue and is started again from scratch.
UNFINISHED_RUN_FILES = frozenset({RUN_CONFIG, LAST_HEAD})


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + '\n'

    def write(temp: Path) -> None:
        temp.write_text(text, encoding='utf-8')

    write_atomically(path, write)


def copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` onto ``target`` without a moment where ``target`` is half written."""

    def copy(temp: Path) -> None:
        shutil.copyfile(source, temp)

    write_atomically(target, copy)


def _unfinished_run(run_dir: Path) -> bool:
    """True for a run directory whose run never finished an epoch (config, maybe a head)."""
    if not (run_dir / RUN_CONFIG).is_file() or (run_dir / LAST_STATE).exists():
        return False
    for entry in run_dir.iterdir():
        temp_of = [name for name in UNFINISHED_RUN_FILES if entry.name.startswith(f'.{name}.')]
        if entry.name not in UNFINISHED_RUN_FILES and not temp_of:
            return False
    return True


def check_run_dir(
    run_dir: Path,
    run_config: Mapping[str, Any],
    *,
    resume: bool,
    invariants: Mapping[str, str] = RESUME_INVARIANTS,
) -> bool:
    """Check, without writing anything, that ``run_dir`` may hold this run.

    A directory left by a run that stopped before its first epoch finished (only
    ``run_config.json``, no ``last_state.pt``) counts as fresh, with or without ``resume``.
    ``invariants`` maps each run-config key that must not change on resume to the option that
    sets it (default: head training's).

    Returns:
        True when ``resume`` continues a run with saved state; False for a fresh start.

    Raises:
        TrainingError: A non-empty directory without ``resume``; with ``resume`` a directory
            without an earlier run or a run trained with other settings (named with the old
            and new value).
    """
    if run_dir.is_dir() and _unfinished_run(run_dir):
        if resume:
            LOGGER.warning(
                '--resume: %s holds no finished epoch (%s is missing); starting the run from '
                'the beginning.',
                run_dir,
                LAST_STATE,
            )
        return False
    if resume:
        config_path = run_dir / RUN_CONFIG
        if not config_path.is_file() or not (run_dir / LAST_STATE).is_file():
            raise TrainingError(
                f'--resume: {run_dir} has no {RUN_CONFIG} / {LAST_STATE} from an earlier run; '
                'drop --resume to start a new one.'
            )
        try:
            stored = json.loads(config_path.read_text(encoding='utf-8'))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TrainingError(
                f'--resume: {config_path} is not valid JSON ({err}); use a new --out.'
            ) from err
        recorded = {key: stored.get(key, RESUME_DEFAULTS.get(key)) for key in invariants}
        changed = [
            f'{key}: was {recorded[key]!r}, now {run_config.get(key)!r} (set by {option})'
            for key, option in invariants.items()
            if recorded[key] != run_config.get(key)
        ]
        if changed:
            raise TrainingError(
                f'--resume: {run_dir} was trained with other settings ({"; ".join(changed)}); '
                f'resume with the same encoder checkpoint, data and options as recorded in '
                f'{config_path}, or use a new --out to start another run.'
            )
        return True
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise TrainingError(
            f'{run_dir} exists and is not empty; pass --resume to continue that run or choose '
            'another --out. Nothing was overwritten.'
        )
    return False


def start_run_dir(run_dir: Path, run_config: Mapping[str, Any]) -> None:
    """Create the directory of a fresh run (clearing an unfinished one) and write its config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LAST_HEAD).unlink(missing_ok=True)
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


@dataclass(frozen=True)
class Curve:
    """One panel of ``curves.png``: a history column over the epochs."""

    column: str
    label: str
    title: str


HEAD_CURVES = (
    Curve('train_silog', 'train SiLog', 'training loss'),
    Curve('val_abs_rel', 'val AbsRel', 'validation'),
)


def plot_curves(
    run_dir: Path, history: Sequence[Mapping[str, float]], curves: Sequence[Curve] = HEAD_CURVES
) -> None:
    """Each of ``curves`` per epoch side by side, as ``curves.png`` (default: head training's)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [row['epoch'] for row in history]
    figure, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
    for index, (axis, curve) in enumerate(zip(axes[0], curves, strict=True)):
        axis.plot(epochs, [row[curve.column] for row in history], marker='o', color=f'C{index}')
        axis.set(xlabel='epoch', ylabel=curve.label, title=curve.title)
    figure.tight_layout()
    write_atomically(run_dir / CURVES, lambda temp: figure.savefig(temp, format='png', dpi=100))
    plt.close(figure)
