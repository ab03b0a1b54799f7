"""How well a policy imitates: mean squared action error beside the mean-action baseline.

The baseline predicts the training set's mean action for every frame, the best constant; a
policy that has learned something from the features must do much better than it on episodes it
has not seen. Offline (train-policy's validation) and live (the demo's recorded actions) scores
are computed here, the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pixio_ros.policy.dataset import FeatureTensors
from pixio_ros.policy.head import PolicyHead

__all__ = ['PolicyScore', 'predict', 'score_actions', 'score_policy']

PREDICT_BATCH = 256


@dataclass(frozen=True)
class PolicyScore:
    """Mean squared error (over frames and action dimensions, in the actions' units).

    Attributes:
        mse: the policy's.
        baseline_mse: predicting the training mean action for every frame.
        frames: frames scored.
    """

    mse: float
    baseline_mse: float
    frames: int

    @property
    def margin(self) -> float:
        """baseline_mse / mse: how many times smaller the policy's error is (inf when 0)."""
        return self.baseline_mse / self.mse if self.mse > 0 else math.inf

    def as_dict(self) -> dict[str, float]:
        """JSON-ready, with the margin."""
        return {
            'mse': self.mse,
            'baseline_mse': self.baseline_mse,
            'margin': self.margin,
            'frames': self.frames,
        }


def score_actions(predicted: Tensor, target: Tensor, mean_action: Tensor) -> PolicyScore:
    """Score (N, A) predicted actions against (N, A) ground truth; baseline = `mean_action`."""
    predicted, target = predicted.double(), target.double()
    baseline = mean_action.double().expand_as(target)
    return PolicyScore(
        mse=float(((predicted - target) ** 2).mean()),
        baseline_mse=float(((baseline - target) ** 2).mean()),
        frames=int(target.shape[0]),
    )


@torch.no_grad()
def predict(head: PolicyHead, data: FeatureTensors, device: torch.device | str = 'cpu') -> Tensor:
    """(N, A) actions of `head` for every row of `data`, in batches, on the CPU."""
    was_training = head.training
    head.eval()
    outputs = [
        head(
            data.features[start : start + PREDICT_BATCH].to(device),
            data.embedding[start : start + PREDICT_BATCH].to(device),
        ).cpu()
        for start in range(0, len(data), PREDICT_BATCH)
    ]
    head.train(was_training)
    return torch.cat(outputs)


def score_policy(
    head: PolicyHead, data: FeatureTensors, device: torch.device | str = 'cpu'
) -> PolicyScore:
    """The policy's and the mean-action baseline's error on `data` (the head's training mean)."""
    mean = head.action_mean.detach().cpu()
    return score_actions(predict(head, data, device), data.action, mean)
