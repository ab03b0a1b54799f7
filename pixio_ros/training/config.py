"""What `pixio-ros train-head` was asked to do, validated before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from pixio_ros.model.sizes import PATCH_SIZE
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.precision import AMP_DTYPES

HeadKind = Literal['depth', 'points', 'linear']
AmpMode = Literal['none', 'bf16', 'fp16']

DEFAULT_LR: dict[str, float] = {'depth': 1e-4, 'points': 1e-4, 'linear': 2e-4}
"""The paper's learning rates: DPT heads 1e-4, the linear probe 2e-4."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (`pixio-ros train-head` options).

    Attributes:
        encoder: official .pth / .safetensors or a Hugging Face folder of the frozen encoder.
        head_kind: head to train.
        out: run directory.
        input_size: (H, W) crop the head trains at, multiples of the patch size.
        epochs: epochs of the whole run (also with `stop_after_epochs`).
        batch: examples per step.
        lr: peak learning rate; None = the paper's value for `head_kind`.
        max_depth: depth range upper bound (head output and valid ground truth), metres.
        min_depth: valid ground-truth lower bound, metres.
        device: torch device of encoder and head.
        amp: autocast precision of encoder and head.
        cache_features: encode every frame once (no crops; flips applied to the features).
        cache_limit_gb: refuse a feature cache larger than this.
        cache_dir: also keep the feature cache here, for later runs (any process count).
        crop: random crops (else whole frames resized).
        flip: random horizontal flips.
        seed: seed of the run's one random generator.
        resume: continue `out` bit for bit.
        stop_after_epochs: stop after this many epochs of this invocation; None = all.
        progress: show progress bars.
    """

    encoder: Path
    head_kind: HeadKind
    out: Path
    input_size: tuple[int, int] = (256, 256)
    epochs: int = 10
    batch: int = 4
    lr: float | None = None
    max_depth: float = 10.0
    min_depth: float = 1e-3
    device: str = 'cpu'
    amp: AmpMode = 'none'
    cache_features: bool = False
    cache_limit_gb: float = 8.0
    cache_dir: Path | None = None
    crop: bool = True
    flip: bool = True
    seed: int = 0
    resume: bool = False
    stop_after_epochs: int | None = None
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        """The explicit --lr, else the paper's value for the head kind."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.head_kind]

    def check(self) -> None:
        """Raise TrainingError for options that cannot work, before anything is loaded."""
        height, width = self.input_size
        problems = []
        if self.head_kind not in DEFAULT_LR:
            problems.append(f'--head {self.head_kind!r} must be one of {", ".join(DEFAULT_LR)}')
            raise TrainingError('; '.join(problems) + '.')
        if height <= 0 or width <= 0 or height % PATCH_SIZE or width % PATCH_SIZE:
            problems.append(f'--input-size {height}x{width} must be multiples of {PATCH_SIZE}')
        if self.epochs < 1 or self.batch < 1:
            problems.append(f'--epochs {self.epochs} and --batch {self.batch} must be >= 1')
        if self.stop_after_epochs is not None and self.stop_after_epochs < 1:
            problems.append(
                f'--stop-after-epochs {self.stop_after_epochs} must be >= 1 (omit it to train '
                'all --epochs)'
            )
        if not self.learning_rate > 0:
            problems.append(f'--lr {self.lr} must be positive')
        if not 0 < self.min_depth < self.max_depth:
            problems.append(f'depth range {self.min_depth}..{self.max_depth} m is empty')
        if self.amp not in ('none', *AMP_DTYPES):
            problems.append(f'--amp {self.amp!r} must be none, bf16 or fp16')
        if self.device.startswith('cuda') and not torch.cuda.is_available():
            problems.append(f'--device {self.device} requested but CUDA is not available')
        if self.amp == 'fp16' and not self.device.startswith('cuda'):
            problems.append('--amp fp16 needs a CUDA device; use bf16 or none on the CPU')
        if problems:
            raise TrainingError('; '.join(problems) + '.')
