"""What `pixio-ros train-policy` was asked to do, validated before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pixio_ros.policy.errors import PolicyError

__all__ = ['PolicyConfig']


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that defines a policy training run (`pixio-ros train-policy` options).

    Attributes:
        dataset: the feature dataset folder (`pixio-ros features -o`).
        actions: signal columns that form the action, in order.
        out: run directory.
        epochs: epochs of the whole run (also with `stop_after_epochs`).
        batch: examples per step.
        lr: peak learning rate (AdamW, warm-up + polynomial decay as train-head).
        weight_decay: AdamW weight decay.
        dim: token / pooled width of the head.
        heads: attention heads of the pooling.
        hidden: hidden width of the MLP.
        val_fraction: share of the episodes (the last ones) that validate.
        device: torch device.
        seed: seed of the initial weights and of the run's one random generator.
        resume: continue `out` bit for bit.
        stop_after_epochs: stop after this many epochs of this invocation; None = all.
        progress: show progress bars.
    """

    dataset: Path
    actions: tuple[str, ...]
    out: Path
    epochs: int = 40
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    dim: int = 32
    heads: int = 2
    hidden: int = 64
    val_fraction: float = 0.2
    device: str = 'cpu'
    seed: int = 0
    resume: bool = False
    stop_after_epochs: int | None = None
    progress: bool = True

    def check(self) -> None:
        """Raise PolicyError for options that cannot work, before anything is loaded."""
        problems = []
        if not self.actions or any(not name for name in self.actions):
            problems.append('--action needs one or more signal columns, e.g. cmd_vel:angular.z')
        if len(set(self.actions)) != len(self.actions):
            problems.append(f'--action {",".join(self.actions)} names a column twice')
        if self.epochs < 1 or self.batch < 1:
            problems.append(f'--epochs {self.epochs} and --batch {self.batch} must be >= 1')
        if self.stop_after_epochs is not None and self.stop_after_epochs < 1:
            problems.append(f'--stop-after-epochs {self.stop_after_epochs} must be >= 1')
        if not self.lr > 0 or self.weight_decay < 0:
            problems.append(f'--lr {self.lr} must be > 0 and --weight-decay >= 0')
        if min(self.dim, self.heads, self.hidden) < 1 or self.dim % self.heads:
            problems.append(
                f'--dim {self.dim} must be a positive multiple of --heads {self.heads} '
                f'(and --hidden {self.hidden} >= 1)'
            )
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append(f'--val-fraction {self.val_fraction} must be in [0, 1)')
        if self.device.startswith('cuda') and not torch.cuda.is_available():
            problems.append(f'--device {self.device} requested but CUDA is not available')
        if problems:
            raise PolicyError('; '.join(problems) + '.')
