"""Behaviour cloning of the policy head on frozen features, with train-head's run conventions.

The run directory is the one `pixio_ros.training.run_files` defines (run_config.json checked on
resume, last/best checkpoints in safetensors, last_state.pt, train_log.csv each epoch, curves.png
at the end of each invocation, writes that are atomic), the learning rate follows
`pixio_ros.training.schedule`, and all randomness (initial weights, batch order) comes from the
seed and one torch.Generator whose state is saved each epoch, so `--resume` continues bit for
bit. Validation uses whole held-out episodes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import torch
from torch import Tensor

from pixio_ros.files import write_atomically
from pixio_ros.policy.checkpoint import load_policy, save_policy
from pixio_ros.policy.config import PolicyConfig
from pixio_ros.policy.dataset import FeatureDataset, FeatureTensors, split_episodes
from pixio_ros.policy.errors import PolicyError
from pixio_ros.policy.head import PolicyHead, PolicySpec
from pixio_ros.policy.scoring import PolicyScore, score_policy
from pixio_ros.training.run_files import (
    BEST_HEAD,
    LAST_HEAD,
    LAST_STATE,
    Curve,
    check_run_dir,
    copy_atomically,
    plot_curves,
    start_run_dir,
    write_json,
    write_log,
)
from pixio_ros.training.schedule import warmup_poly

__all__ = ['PolicyResult', 'PolicyTrainer', 'train_policy']

LOGGER = logging.getLogger(__name__)
ADAM_BETAS: Final = (0.9, 0.999)
# Settings that must not change between a run and its resumption, with the option setting each.
RESUME_INVARIANTS: Final = {
    'actions': '--action',
    'epochs': '--epochs',
    'batch': '--batch',
    'lr': '--lr',
    'weight_decay': '--weight-decay',
    'dim': '--dim',
    'heads': '--heads',
    'hidden': '--hidden',
    'seed': '--seed',
    'train_episodes': 'the dataset and --val-fraction',
    'val_episodes': 'the dataset and --val-fraction',
    'train_data': 'the dataset (DATASET)',
}
CURVES: Final = (
    Curve('train_loss', 'train MSE (normalised)', 'training loss'),
    Curve('val_mse', 'val action MSE', 'validation (held-out episodes)'),
    Curve('val_margin', 'baseline MSE / policy MSE', 'vs. the mean action'),
)


@dataclass
class PolicyResult:
    """What a run produced.

    Attributes:
        run_dir: the run directory.
        history: one row per epoch (epoch, step, lr, train_loss, val_mse, val_baseline_mse,
            val_margin, seconds).
        step_loss: the training loss of every step of this invocation, in order.
        best: the history row of the best epoch.
    """

    run_dir: Path
    history: list[dict[str, float]]
    step_loss: list[float] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)


def _fingerprint(data: FeatureTensors) -> str:
    """sha256 of what the training rows hold (episodes, frames, actions, a feature checksum)."""
    digest = hashlib.sha256()
    for tensor in (data.episode, data.frame, data.action, data.features.double().sum((1, 2, 3))):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


class PolicyTrainer:
    """One policy training run; see `train_policy`.

    Raises:
        PolicyError: bad options, a dataset that cannot be read or has no training rows.
    """

    def __init__(self, config: PolicyConfig):
        config.check()
        self.config = config
        self.device = torch.device(config.device)
        episodes = FeatureDataset(config.dataset, config.actions).all_episodes
        train_episodes, val_episodes = split_episodes(episodes, config.val_fraction)
        train_set = FeatureDataset(config.dataset, config.actions, episodes=train_episodes)
        self.train_episodes, self.val_episodes = train_episodes, val_episodes
        self.train = train_set.tensors()
        self.val = (
            FeatureDataset(config.dataset, config.actions, episodes=val_episodes).tensors()
            if val_episodes
            else None
        )
        self.unmatched = train_set.unmatched
        _, height, width, channels = self.train.features.shape
        torch.manual_seed(config.seed)
        self.spec = PolicySpec(
            channels=int(channels),
            grid=(int(height), int(width)),
            actions=train_set.action_names,
            dim=config.dim,
            heads=config.heads,
            hidden=config.hidden,
        )
        self.head = PolicyHead(self.spec)
        self.head.set_action_statistics(self.train.action)
        self.head.to(self.device).train()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_per_epoch = math.ceil(len(self.train) / config.batch)
        self.optimizer = torch.optim.AdamW(
            self.head.parameters(), lr=config.lr, betas=ADAM_BETAS, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_poly(config.epochs * self.steps_per_epoch)
        )

    def run_config(self) -> dict[str, Any]:
        """The JSON written to run_config.json (and checked on resume)."""
        return {
            **asdict(self.config),
            'actions': list(self.config.actions),
            'policy_spec': self.spec.as_json(),
            'train_episodes': self.train_episodes,
            'val_episodes': self.val_episodes,
            'train_frames': len(self.train),
            'val_frames': len(self.val) if self.val is not None else 0,
            'train_data': _fingerprint(self.train),
        }

    def fit(self) -> PolicyResult:
        """Train, validate and checkpoint each epoch; returns the run's history."""
        config = self.config
        continuing = check_run_dir(
            config.out, self.run_config(), resume=config.resume, invariants=RESUME_INVARIANTS
        )
        if continuing:
            start, history, best = self._load_state()
        else:
            start_run_dir(config.out, self.run_config())
            start, history, best = 0, [], math.inf
        result = PolicyResult(config.out, history)
        stop = config.epochs
        if config.stop_after_epochs is not None:
            stop = min(stop, start + config.stop_after_epochs)
        for epoch in range(start, stop):
            started = time.perf_counter()
            losses = self._train_epoch(epoch, result)
            score = score_policy(self.head, self.val, self.device) if self.val else None
            history.append(self._epoch_row(epoch, losses, score, started))
            improved = score is None or score.mse < best
            if score is not None and improved:
                best = score.mse
            self._write_epoch(epoch, history, best, improved=improved)
        if history:
            # Once per invocation: a policy epoch takes well under a second, a plot does not.
            plot_curves(config.out, history, CURVES)
        result.best = self._best_row(history, best)
        return result

    def _train_epoch(self, epoch: int, result: PolicyResult) -> list[float]:
        """One pass over the training rows in a random order; the loss of each step."""
        from tqdm import tqdm

        config, data = self.config, self.train
        order = torch.randperm(len(data), generator=self.generator)
        losses = []
        for start in tqdm(
            range(0, len(data), config.batch),
            desc=f'epoch {epoch + 1}/{config.epochs}',
            unit='step',
            disable=not config.progress,
            file=sys.stderr,
        ):
            rows = order[start : start + config.batch]
            loss = self._step(
                data.features[rows].to(self.device),
                data.embedding[rows].to(self.device),
                data.action[rows].to(self.device),
            )
            losses.append(loss)
            result.step_loss.append(loss)
        return losses

    def _step(self, features: Tensor, embedding: Tensor, action: Tensor) -> float:
        """One AdamW step on the MSE of normalised actions."""
        target = (action - self.head.action_mean) / self.head.action_std
        loss = torch.nn.functional.mse_loss(self.head.normalised(features, embedding), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.item())

    def _epoch_row(
        self, epoch: int, losses: list[float], score: PolicyScore | None, started: float
    ) -> dict[str, float]:
        nan = math.nan
        return {
            'epoch': epoch + 1,
            'step': (epoch + 1) * self.steps_per_epoch,
            'lr': float(self.scheduler.get_last_lr()[0]),
            'train_loss': sum(losses) / len(losses),
            'val_mse': score.mse if score else nan,
            'val_baseline_mse': score.baseline_mse if score else nan,
            'val_margin': score.margin if score else nan,
            'seconds': time.perf_counter() - started,
        }

    def _write_epoch(
        self, epoch: int, history: list[dict[str, float]], best: float, *, improved: bool
    ) -> None:
        """Checkpoint the epoch (state, last and maybe best policy), its JSON, log and plot."""
        run_dir = self.config.out
        write_atomically(
            run_dir / LAST_HEAD,
            lambda temp: save_policy(self.head, temp, extra={'epoch': str(epoch + 1)}),
        )
        state = {
            'epoch': epoch + 1,
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'generator': self.generator.get_state(),
            'history': history,
            'best': best,
        }
        write_atomically(run_dir / LAST_STATE, lambda temp: torch.save(state, temp))
        row = history[-1]
        if improved:
            copy_atomically(run_dir / LAST_HEAD, run_dir / BEST_HEAD)
            write_json(run_dir / 'best.json', {**self.run_config(), 'metrics': row})
        write_json(run_dir / 'last.json', {**self.run_config(), 'metrics': row})
        write_log(run_dir, history)

    def _load_state(self) -> tuple[int, list[dict[str, float]], float]:
        run_dir = self.config.out
        state = torch.load(run_dir / LAST_STATE, map_location='cpu', weights_only=True)
        saved = load_policy(run_dir / LAST_HEAD, device=str(self.device))
        self.head.load_state_dict(saved.state_dict())
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.generator.set_state(state['generator'])
        return int(state['epoch']), list(state['history']), float(state['best'])

    def _best_row(self, history: list[dict[str, float]], best: float) -> dict[str, float]:
        if self.val is None:
            return history[-1] if history else {}
        rows = [row for row in history if row['val_mse'] == best]
        return rows[-1] if rows else {}


def train_policy(config: PolicyConfig) -> PolicyResult:
    """Train the example policy head on a feature dataset; writes the run directory `config.out`.

    Raises:
        PolicyError: bad options or data; TrainingError (`pixio_ros.training`) for a run
            directory that is not empty (without `resume`) or was trained with other settings.
    """
    trainer = PolicyTrainer(config)
    if trainer.unmatched:
        LOGGER.info('%d unmatched frames (no signal within the gap) skipped', trainer.unmatched)
    if not len(trainer.train):
        raise PolicyError(f'{config.dataset}: no training rows.')
    return trainer.fit()
