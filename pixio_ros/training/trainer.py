"""Frozen-encoder head training: the paper's recipe, per-epoch validation, exact resume.

The encoder stays in eval mode without gradients; only the head learns (AdamW, warm-up +
polynomial decay, SiLog). All randomness (data order, crops, flips) comes from one
torch.Generator whose state is checkpointed with the optimizer and scheduler, so a resumed run
continues exactly where the interrupted one stopped.

Under torchrun the same run trains on N processes (`pixio_ros.training.data_parallel`): the
batch size is the global one, every rank keeps the one generator in step, and only rank 0
reads and writes the run directory. A stage that fails on one rank stops every rank with one
line naming it (`pixio_ros.distributed.agreed`); checkpoints are written only after a
complete epoch, so the last complete one survives.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pixio_ros.distributed import (
    World,
    agreed,
    broadcast_from_main,
    check_same_inputs,
    rank_device,
)
from pixio_ros.files import write_atomically
from pixio_ros.model import (
    HeadInfo,
    PixioNet,
    build_head,
    checkpoint_sha256,
    get_size,
    load_encoder_checkpoint,
    save_head_checkpoint,
)
from pixio_ros.training.augment import FLIP_PROBABILITY, Example, augment, draw, flip_targets
from pixio_ros.training.config import TrainConfig
from pixio_ros.training.data_parallel import (
    RANK_INVARIANTS,
    data_parallel,
    global_total,
    local_positions,
    synchronise_batch_norm,
)
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.feature_cache import FeatureCache, build_feature_cache
from pixio_ros.training.losses import point_map_loss, silog_loss, valid_depth
from pixio_ros.training.precision import amp_context
from pixio_ros.training.run_files import (
    BEST_HEAD,
    LAST_HEAD,
    LAST_STATE,
    check_run_dir,
    copy_atomically,
    plot_curves,
    start_run_dir,
    write_json,
    write_log,
)
from pixio_ros.training.samples import RGBDSample, check_ground_truth, frames_fingerprint
from pixio_ros.training.schedule import warmup_poly
from pixio_ros.training.validation import SELECTION_METRIC, nan_validation_warning, validate

LOGGER = logging.getLogger(__name__)
ADAM_BETAS = (0.9, 0.999)
WEIGHT_DECAY = 0.01


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: The run directory.
        history: One row per epoch (epoch, step, lr, train_loss, train_silog, val_*, seconds).
        step_silog: Training SiLog of every step of this invocation, in order.
        best: Validation metrics of the best epoch.
    """

    run_dir: Path
    history: list[dict[str, float]]
    step_silog: list[float] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)


@dataclass
class Batch:
    """One training batch on the training device.

    Attributes:
        maps: Head inputs, one (B, 2D, h, w) map per block the head reads.
        depth: (B, 1, H, W) ground truth, metres, NaN where invalid.
        rays: (B, 2, H, W) ground-truth (x/z, y/z), NaN without intrinsics.
    """

    maps: list[Tensor]
    depth: Tensor
    rays: Tensor


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _stack(
    examples: Sequence[Example], input_size: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor]:
    """(images, depth, rays) batched; empty (0, ...) tensors for a rank without examples."""
    if not examples:
        height, width = input_size
        return (
            torch.empty((0, height, width, 3), dtype=torch.uint8),
            torch.empty((0, 1, height, width)),
            torch.empty((0, 2, height, width)),
        )
    images = torch.stack([e.image for e in examples])
    return images, torch.stack([e.depth for e in examples]), torch.stack([e.rays for e in examples])


class HeadTrainer:
    """One training run over prepared samples; see `train_head`.

    Args:
        config: The run's options.
        train: Training frames (all of them, on every rank).
        val: Validation frames.
        world: This process's rank (default: one process).
    """

    def __init__(
        self,
        config: TrainConfig,
        train: Sequence[RGBDSample],
        val: Sequence[RGBDSample],
        *,
        world: World | None = None,
    ):
        config.check()
        self.world = World() if world is None else world
        if not train:
            raise TrainingError('no training frames left after the validation split.')
        check_ground_truth(train, min_depth=config.min_depth, max_depth=config.max_depth)
        if config.head_kind == 'points' and any(sample.camera is None for sample in train):
            raise TrainingError(
                'the point-map head learns rays from the intrinsics: pass --camera-info-topic '
                '(bags) or an intrinsics.yaml (folders).'
            )
        self.config = config
        self.train_samples = list(train)
        self.val_samples = list(val)
        self.device = torch.device(rank_device(config.device, self.world))
        encoder = load_encoder_checkpoint(config.encoder)
        self.encoder_sha256 = checkpoint_sha256(config.encoder)
        self.size = encoder.size_name
        torch.manual_seed(config.seed)
        head = build_head(get_size(self.size), config.head_kind, max_depth=config.max_depth)
        head = synchronise_batch_norm(head, self.world, self.device)
        self.net = PixioNet(encoder, head).to(self.device)
        # the head as a step calls it: DDP-wrapped on several processes (see `fit`)
        self.head_step: torch.nn.Module = self.net.head
        self.total = global_total(self.world)
        self.net.encoder.eval().requires_grad_(False)
        self.net.head.train()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_per_epoch = math.ceil(len(self.train_samples) / config.batch)
        total_steps = config.epochs * self.steps_per_epoch
        self.optimizer = torch.optim.AdamW(
            head.parameters(),
            lr=config.learning_rate,
            betas=ADAM_BETAS,
            weight_decay=WEIGHT_DECAY,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_poly(total_steps))
        self.scaler = torch.amp.GradScaler('cuda', enabled=config.amp == 'fp16')
        self.cache: FeatureCache | None = None
        self._warned_nan = False

    def run_config(self) -> dict[str, Any]:
        """The JSON written to run_config.json (and checked on resume)."""
        height, width = self.config.input_size
        return {
            **{k: v for k, v in asdict(self.config).items() if k != 'input_size'},
            'input_size': [height, width],
            'encoder_sha256': self.encoder_sha256,
            'size': self.size,
            'learning_rate': self.config.learning_rate,
            'processes': self.world.size,
            'train_frames': len(self.train_samples),
            'val_frames': len(self.val_samples),
            'train_data': frames_fingerprint(self.train_samples),
            'val_data': frames_fingerprint(self.val_samples),
        }

    def rank_inputs(self) -> dict[str, Any]:
        """What this rank was given that every rank must share (`RANK_INVARIANTS`)."""
        samples = [*self.train_samples, *self.val_samples]
        stamps = hashlib.sha256(' '.join(str(s.stamp_ns) for s in samples).encode())
        values = {
            **self.run_config(),
            'sources': list(dict.fromkeys(s.source for s in samples)),
            'frame_stamps': stamps.hexdigest(),
        }
        return {key: values.get(key) for key in RANK_INVARIANTS}

    def _head_info(self) -> HeadInfo:
        """What the saved head checkpoints record about themselves."""
        return HeadInfo(
            self.config.head_kind, self.size, self.config.max_depth, self.encoder_sha256
        )

    def make_batch(self, indices: list[int]) -> Batch:
        """This rank's part of the global batch ``indices``: augmented, encoded or cached.

        Every rank draws the random numbers of the whole global batch, so the generator stays
        the same on all ranks and each example gets the numbers one process would give it.
        """
        config = self.config
        cached = self.cache is not None
        draws = [draw(self.generator, crop=config.crop and not cached) for _ in indices]
        mine = [(indices[p], draws[p]) for p in local_positions(len(indices), self.world)]
        if self.cache is None:
            size = config.input_size
            examples = [
                augment(self.train_samples[i], size, d, crop=config.crop, flip=config.flip)
                for i, d in mine
            ]
            images, depth, rays = _stack(examples, config.input_size)
            with torch.no_grad(), amp_context(config.amp, self.device):
                maps = self.net.head_inputs(images.to(self.device))
            # float32 like the feature cache, so cached and uncached steps see the same inputs
            maps = [m.float() for m in maps]
            return Batch(maps, depth.to(self.device), rays.to(self.device))
        maps_per_example = []
        depths, rays_list = [], []
        for i, d in mine:
            maps, depth, rays = self.cache.maps[i], self.cache.depth[i], self.cache.rays[i]
            if config.flip and d.flip < FLIP_PROBABILITY:
                maps = [m.flip(-1) for m in maps]
                depth, rays = flip_targets(depth, rays)
            maps_per_example.append(maps)
            depths.append(depth)
            rays_list.append(rays)
        if not mine:
            return self._empty_cached_batch()
        stages = len(maps_per_example[0])
        maps = [
            torch.stack([example[s] for example in maps_per_example]).to(self.device)
            for s in range(stages)
        ]
        return Batch(
            maps, torch.stack(depths).to(self.device), torch.stack(rays_list).to(self.device)
        )

    def _empty_cached_batch(self) -> Batch:
        """A rank's batch when the global batch has fewer examples than ranks (zero rows)."""
        assert self.cache is not None
        maps = [m.new_empty((0, *m.shape)).to(self.device) for m in self.cache.maps[0]]
        _, depth, rays = _stack([], self.config.input_size)
        return Batch(maps, depth.to(self.device), rays.to(self.device))

    def train_step(self, batch: Batch) -> tuple[float, float] | None:
        """One optimisation step; None (and no update) when the batch has no valid pixel."""
        config = self.config
        valid = valid_depth(batch.depth, min_depth=config.min_depth, max_depth=config.max_depth)
        if not int(self.total(valid.sum())):  # no valid pixel in the whole global batch
            return None
        with amp_context(config.amp, self.device):
            outputs = self.head_step(batch.maps, *config.input_size)
        outputs = {key: value.float() for key, value in outputs.items()}
        if config.head_kind == 'points':
            loss, silog = point_map_loss(outputs, batch.depth, batch.rays, valid, total=self.total)
        else:
            loss = silog = silog_loss(outputs['depth'], batch.depth, valid, total=self.total)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.item()), float(silog.item())

    def _save_state(self, epoch: int, history: list[dict[str, float]], best: float) -> None:
        run_dir = self.config.out
        write_atomically(
            run_dir / LAST_HEAD,
            lambda temp: save_head_checkpoint(
                self.net.head, temp, self._head_info(), extra={'epoch': str(epoch)}
            ),
        )
        state = {
            'epoch': epoch,
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'scaler': self.scaler.state_dict(),
            'generator': self.generator.get_state(),
            'history': history,
            'best': best,
        }
        write_atomically(run_dir / LAST_STATE, lambda temp: torch.save(state, temp))

    def _load_state(self) -> tuple[int, list[dict[str, float]], float]:
        from safetensors.torch import load_file

        run_dir = self.config.out
        loaded: tuple[dict[str, Tensor], dict[str, Any]] | None = None
        with agreed(self.world, 'reading the checkpoint'):
            if self.world.is_main:
                state = torch.load(run_dir / LAST_STATE, map_location='cpu', weights_only=True)
                loaded = (load_file(str(run_dir / LAST_HEAD)), state)
        # only rank 0 reads the run directory (it need not be shared between nodes)
        shared = broadcast_from_main(loaded, self.world, 'sharing the checkpoint')
        assert shared is not None  # rank 0 raised (and every rank with it) otherwise
        head_state, state = shared
        self.net.head.load_state_dict({k: v.to(self.device) for k, v in head_state.items()})
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.scaler.load_state_dict(state['scaler'])
        self.generator.set_state(state['generator'])
        return int(state['epoch']), list(state['history']), float(state['best'])

    def fit(self) -> TrainResult:
        """Train, validate and checkpoint each epoch; returns the run's history."""
        start_epoch, history, best = self._start_run()
        self.head_step = data_parallel(self.net.head, self.world, self.device)
        result = TrainResult(self.config.out, history)
        for epoch in range(start_epoch, self._last_epoch(start_epoch)):
            started = time.perf_counter()
            losses = self._train_epoch(epoch, result)
            metrics = validate(self.net, self.val_samples, self.config, self.device, self.world)
            history.append(self._epoch_row(epoch, losses, metrics, started))
            improved, best = self._judge(epoch, metrics[SELECTION_METRIC], best)
            with agreed(self.world, f'writing the checkpoint of epoch {epoch + 1}'):
                if self.world.is_main:
                    self._write_epoch(epoch, history, best, improved=improved)
        result.best = self._best_row(history, best)
        return result

    def _start_run(self) -> tuple[int, list[dict[str, float]], float]:
        """(first epoch, history so far, best score): a fresh run directory or the resumed one.

        Nothing is written before every check has passed (and the cache is built), so a
        refused or failed start leaves the run directory as it was. The ranks first compare
        what they were given: ranks with other frames or options are refused with one line.
        """
        config, world = self.config, self.world
        check_same_inputs(self.rank_inputs(), world, sources=RANK_INVARIANTS)
        continuing = False
        with agreed(world, 'checking the run directory'):
            if world.is_main:
                continuing = check_run_dir(config.out, self.run_config(), resume=config.resume)
        continuing = broadcast_from_main(continuing, world, 'starting')
        if config.cache_features:
            self.build_cache()
        self._warned_nan = False
        if continuing:
            return self._load_state()
        with agreed(world, 'creating the run directory'):
            if world.is_main:
                start_run_dir(config.out, self.run_config())
        return 0, [], math.inf

    def _last_epoch(self, start_epoch: int) -> int:
        """End (exclusive) of this invocation's epochs: all of them, or --stop-after-epochs."""
        stop_after = self.config.stop_after_epochs
        if stop_after is None:
            return self.config.epochs
        return min(self.config.epochs, start_epoch + stop_after)

    def _train_epoch(self, epoch: int, result: TrainResult) -> list[tuple[float, float]]:
        """One pass over the training frames in a random order; (loss, silog) per step."""
        from tqdm import tqdm

        config = self.config
        count = len(self.train_samples)
        order = torch.randperm(count, generator=self.generator).tolist()
        losses: list[tuple[float, float]] = []
        bar = tqdm(
            range(0, count, config.batch),
            desc=f'epoch {epoch + 1}/{config.epochs}',
            unit='step',
            disable=not (config.progress and self.world.is_main),
            file=sys.stderr,
        )
        for start in bar:
            with agreed(self.world, f'preparing a batch of epoch {epoch + 1}'):
                batch = self.make_batch(order[start : start + config.batch])
            step = self.train_step(batch)
            if step is not None:
                losses.append(step)
                result.step_silog.append(step[1])
                bar.set_postfix(silog=f'{step[1]:.4f}')
        return losses

    def _epoch_row(
        self,
        epoch: int,
        losses: Sequence[tuple[float, float]],
        metrics: dict[str, float],
        started: float,
    ) -> dict[str, float]:
        """The epoch's line of train_log.csv."""
        return {
            'epoch': epoch + 1,
            'step': (epoch + 1) * self.steps_per_epoch,
            'lr': float(self.scheduler.get_last_lr()[0]),
            'train_loss': _mean([total for total, _ in losses]),
            'train_silog': _mean([silog for _, silog in losses]),
            **{f'val_{name}': value for name, value in metrics.items()},
            'seconds': time.perf_counter() - started,
        }

    def _judge(self, epoch: int, score: float, best: float) -> tuple[bool, float]:
        """(whether this epoch is the best so far, the best score).

        Without validation frames the last epoch is the best; a NaN score never is (warned
        once per run).
        """
        if not self.val_samples:
            return True, best
        if math.isnan(score):
            if not self._warned_nan:
                self._warned_nan = True
                if not self.world.is_main:
                    return False, best
                frames = len(self.val_samples)
                LOGGER.warning(nan_validation_warning(epoch + 1, frames, self.config))
            return False, best
        if score < best:
            return True, score
        return False, best

    def _write_epoch(
        self, epoch: int, history: list[dict[str, float]], best: float, *, improved: bool
    ) -> None:
        """Checkpoint the epoch (state, last and maybe best head), its JSON, log and plot."""
        run_dir = self.config.out
        row = history[-1]
        self._save_state(epoch + 1, history, best)
        if improved:
            copy_atomically(run_dir / LAST_HEAD, run_dir / BEST_HEAD)
            write_json(run_dir / 'best.json', {**self.run_config(), 'metrics': row})
        write_json(run_dir / 'last.json', {**self.run_config(), 'metrics': row})
        write_log(run_dir, history)
        plot_curves(run_dir, history)

    def _best_row(self, history: list[dict[str, float]], best: float) -> dict[str, float]:
        """The history row of the best epoch ({} when no epoch had a finite score)."""
        if not self.val_samples:
            return history[-1] if history else {}
        best_rows = [row for row in history if row[f'val_{SELECTION_METRIC}'] == best]
        return best_rows[-1] if best_rows else {}

    def build_cache(self) -> None:
        """Encode every training frame once, after the memory check; steps skip the encoder."""
        config = self.config
        self.cache = build_feature_cache(
            self.net,
            self.train_samples,
            config.input_size,
            self.device,
            amp=config.amp,
            limit_gb=config.cache_limit_gb,
            world=self.world,
            cache_dir=config.cache_dir,
            encoder_key=f'{self.encoder_sha256}\0{config.head_kind}\0{config.amp}',
        )


def train_head(
    config: TrainConfig,
    train: Sequence[RGBDSample],
    val: Sequence[RGBDSample],
    *,
    world: World | None = None,
) -> TrainResult:
    """Train a head on a frozen encoder; writes the run directory ``config.out``.

    Args:
        config: The run's options.
        train: Training frames.
        val: Validation frames (may be empty; then the last epoch counts as best).
        world: This process's rank under torchrun (default: one process).

    Returns:
        History and best metrics; checkpoints are in ``config.out``.
    """
    world = World() if world is None else world
    with agreed(world, 'setting up'):
        trainer = HeadTrainer(config, train, val, world=world)
    return trainer.fit()
