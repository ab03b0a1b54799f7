"""Per-epoch validation with the evaluation module's metrics (metric depth, no alignment)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from pixio_ros.model import PixioNet
from pixio_ros.training.augment import make_example
from pixio_ros.training.samples import RGBDSample

if TYPE_CHECKING:
    from pixio_ros.training.trainer import TrainConfig


def validate(
    net: PixioNet, samples: Sequence[RGBDSample], config: TrainConfig, device: torch.device
) -> dict[str, float]:
    """Mean metrics (evaluation module, metric depth, no alignment) on the validation frames."""
    from pixio_ros.evaluation.metrics import mean_metrics, score_frame

    scores: list[dict[str, float]] = []
    unused = torch.Generator()
    net.head.eval()
    with torch.no_grad():
        for sample in samples:
            example = make_example(
                sample, config.input_size, crop=False, flip=False, generator=unused
            )
            outputs = net.head(net.head_inputs(example.image[None].to(device)), *config.input_size)
            pred = outputs['depth'][0, 0].float().cpu().numpy()
            score = score_frame(
                pred,
                example.depth[0].numpy(),
                align='none',
                min_depth=config.min_depth,
                max_depth=config.max_depth,
            )
            if score is not None:
                scores.append(score.metrics)
    net.head.train()
    return mean_metrics(scores)
