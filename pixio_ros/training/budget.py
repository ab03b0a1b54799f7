"""Head training bounded by wall-clock time: the demo's minute on a laptop's CPU.

The encoder is frozen, so every frame is encoded once (the feature cache) and only the head
trains. One head step is timed on the cached features; the run then plans as many epochs as
fit the remaining budget (so the learning-rate schedule completes) and stops at the budget in
any case, epoch by epoch (`--stop-after-epochs` / `--resume` through the library), should the
machine be slower than the estimate.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import torch

from pixio_ros.training.config import TrainConfig
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.losses import silog_loss, valid_depth
from pixio_ros.training.samples import RGBDSample
from pixio_ros.training.trainer import HeadTrainer, TrainResult

__all__ = ['EPOCH_OVERHEAD_S', 'BudgetedTraining', 'train_within_budget']

LOGGER = logging.getLogger(__name__)
EPOCH_OVERHEAD_S: Final = 0.8
"""Per-epoch cost besides the steps: checkpoints, JSON, the curve plot (0.75 s on 2 cores)."""
TIMED_STEPS: Final = 2


@dataclass(frozen=True)
class BudgetedTraining:
    """What a budgeted run did.

    Attributes:
        result: The run's history and best epoch (checkpoints are in ``result.run_dir``).
        epochs_planned: Epochs the schedule was planned for.
        epochs_done: Epochs trained (fewer than planned only when the budget ran out).
        cache_s: Seconds spent encoding the frames once.
        step_s: Measured seconds of one head step.
        seconds: Wall time of the whole run, cache included.
    """

    result: TrainResult
    epochs_planned: int
    epochs_done: int
    cache_s: float
    step_s: float
    seconds: float


class _CachedTrainer(HeadTrainer):
    """A trainer whose feature cache, once built (or handed over), survives `fit` calls."""

    def build_cache(self) -> None:
        """Encode the frames unless the cache exists already."""
        if self.cache is None:
            super().build_cache()


def _time_head_step(trainer: HeadTrainer) -> float:
    """Seconds of one optimisation step of a copy of the head on cached features."""
    cache = trainer.cache
    if cache is None:
        raise TrainingError('the feature cache must be built before timing a step.')
    config = trainer.config
    head = copy.deepcopy(trainer.net.head).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate)
    count = min(config.batch, len(cache.maps))
    stages = len(cache.maps[0])
    maps = [
        torch.stack([cache.maps[i][s] for i in range(count)]).to(trainer.device)
        for s in range(stages)
    ]
    depth = torch.stack(cache.depth[:count]).to(trainer.device)
    valid = valid_depth(depth, min_depth=config.min_depth, max_depth=config.max_depth)
    if not bool(valid.any()):
        depth, valid = torch.ones_like(depth), torch.ones_like(valid)
    times = []
    for _ in range(TIMED_STEPS):
        started = time.perf_counter()
        loss = silog_loss(head(maps, *config.input_size)['depth'], depth, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return min(times)


def train_within_budget(
    config: TrainConfig,
    train: Sequence[RGBDSample],
    val: Sequence[RGBDSample],
    *,
    budget_s: float,
    max_epochs: int,
    min_epochs: int = 1,
) -> BudgetedTraining:
    """Train ``config``'s head on cached features within ``budget_s`` seconds (cache included).

    Args:
        config: The run (``epochs``, ``cache_features``, ``resume`` and ``stop_after_epochs``
            are set here).
        train: Training frames.
        val: Validation frames (may be empty: the last epoch is then the best).
        budget_s: Wall-clock budget, seconds.
        max_epochs: Upper bound of the planned epochs.
        min_epochs: Epochs trained even when the estimate says none fits.

    Raises:
        TrainingError: Bad settings or data (as `train_head`).
    """
    if not 1 <= min_epochs <= max_epochs:
        raise TrainingError(f'epochs {min_epochs}..{max_epochs} must satisfy 1 <= min <= max.')
    started = time.perf_counter()
    base = replace(
        config, epochs=max_epochs, cache_features=True, resume=False, stop_after_epochs=1
    )
    probe = _CachedTrainer(base, train, val)
    probe.build_cache()
    cache_s = time.perf_counter() - started
    step_s = _time_head_step(probe)
    remaining = budget_s - (time.perf_counter() - started)
    per_epoch = step_s * probe.steps_per_epoch + EPOCH_OVERHEAD_S
    planned = max(min_epochs, min(max_epochs, math.floor(remaining / per_epoch)))
    LOGGER.info(
        'budget %.0f s: features cached in %.1f s, one step %.3f s, %d steps per epoch: '
        'planning %d epochs',
        budget_s,
        cache_s,
        step_s,
        probe.steps_per_epoch,
        planned,
    )
    trainer = _CachedTrainer(replace(base, epochs=planned), train, val)
    trainer.cache = probe.cache
    deadline = started + budget_s
    result = trainer.fit()
    done = 1
    while done < planned and (done < min_epochs or time.perf_counter() < deadline):
        trainer.config = replace(trainer.config, resume=True)
        result = trainer.fit()
        done += 1
    if done < planned:
        LOGGER.warning(
            'the %.0f s budget ran out after %d of %d epochs (this machine is slower than the '
            'estimate); the head is used as it is.',
            budget_s,
            done,
            planned,
        )
    return BudgetedTraining(result, planned, done, cache_s, step_s, time.perf_counter() - started)
