"""Per-epoch validation with the evaluation module's metrics (metric depth, no alignment).

On N processes each rank scores every N-th frame and the per-frame metrics are merged back
into frame order before averaging, so the result is the one-process result bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pixio_ros.distributed import World, agreed, all_gather, shard, unshard
from pixio_ros.model import PixioNet
from pixio_ros.training.augment import make_example
from pixio_ros.training.config import TrainConfig
from pixio_ros.training.precision import amp_context
from pixio_ros.training.samples import RGBDSample

SELECTION_METRIC = 'abs_rel'
"""Validation metric that picks the best epoch (lower is better)."""


def validate(
    net: PixioNet,
    samples: Sequence[RGBDSample],
    config: TrainConfig,
    device: torch.device,
    world: World | None = None,
) -> dict[str, float]:
    """Mean metrics (evaluation module, metric depth, no alignment) on the validation frames.

    Encoder and head run under ``config.amp`` as in training. Frames without a valid
    ground-truth pixel are skipped, so all-invalid validation frames give NaN metrics. Every
    rank of ``world`` gets the same result.
    """
    from pixio_ros.evaluation.metrics import mean_metrics

    world = World() if world is None else world
    with agreed(world, 'validating'):
        mine = frame_scores(net, shard(samples, world), config, device)
    scores = unshard(all_gather(mine, world, 'validating'))
    return mean_metrics([score for score in scores if score is not None])


def frame_scores(
    net: PixioNet, samples: Sequence[RGBDSample], config: TrainConfig, device: torch.device
) -> list[dict[str, float] | None]:
    """Each frame's metrics, None for a frame without a valid ground-truth pixel."""
    from pixio_ros.evaluation.metrics import score_frame

    scores: list[dict[str, float] | None] = []
    unused = torch.Generator()
    net.head.eval()
    with torch.no_grad():
        for sample in samples:
            example = make_example(
                sample, config.input_size, crop=False, flip=False, generator=unused
            )
            with amp_context(config.amp, device):
                maps = net.head_inputs(example.image[None].to(device))
                outputs = net.head(maps, *config.input_size)
            pred = outputs['depth'][0, 0].float().cpu().numpy()
            score = score_frame(
                pred,
                example.depth[0].numpy(),
                align='none',
                min_depth=config.min_depth,
                max_depth=config.max_depth,
            )
            scores.append(None if score is None else score.metrics)
    net.head.train()
    return scores


def nan_validation_warning(epoch: int, frames: int, config: TrainConfig) -> str:
    """The warning logged (once per run) when an epoch's validation score is NaN."""
    return (
        f'validation {SELECTION_METRIC} is NaN at epoch {epoch}: none of the {frames} '
        f'validation frames has ground truth within {config.min_depth:g}..{config.max_depth:g} m '
        '(or the head output is not finite). Such epochs never count as best, so '
        'best.safetensors is written only after a finite validation score; check the '
        'validation depth and --max-depth, or use last.safetensors.'
    )
