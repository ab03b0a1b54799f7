"""The example policy head: attention pooling over the patch grid and the embedding -> an MLP.

Small on purpose (it trains in seconds on frozen features): a learned query attends over the
patch tokens (each projected and given a learned position on the grid, since where something is
in the image matters to a policy), the pooled vector and the projected global embedding are
concatenated, and an MLP maps them to the action. Actions are predicted in units normalised by
the training set's mean and spread, and returned in their own units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ['AttentionPool', 'PolicyHead', 'PolicySpec']


@dataclass(frozen=True)
class PolicySpec:
    """The shape of a policy head (stored in its checkpoint).

    Attributes:
        channels: C, the feature and embedding width of the artifact.
        grid: (h, w) patch grid the head was trained on.
        actions: the name of each action dimension (dataset columns).
        dim: width of the tokens and the pooled vector.
        heads: attention heads of the pooling.
        hidden: width of the MLP's hidden layer.
    """

    channels: int
    grid: tuple[int, int]
    actions: tuple[str, ...]
    dim: int = 32
    heads: int = 2
    hidden: int = 64

    def as_json(self) -> dict[str, object]:
        """JSON-ready fields (tuples as lists)."""
        return {**asdict(self), 'grid': list(self.grid), 'actions': list(self.actions)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicySpec:
        """The inverse of `as_json` (KeyError, TypeError or ValueError for a broken one)."""
        height, width = data['grid']
        return cls(
            channels=int(data['channels']),
            grid=(int(height), int(width)),
            actions=tuple(str(name) for name in data['actions']),
            dim=int(data['dim']),
            heads=int(data['heads']),
            hidden=int(data['hidden']),
        )


class AttentionPool(nn.Module):
    """One learned query attends over a set of tokens: (B, N, D) -> (B, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, D) pooled vector of (B, N, D) tokens."""
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention(query, tokens, tokens, need_weights=False)
        return self.norm(pooled[:, 0])


class PolicyHead(nn.Module):
    """Patch features + embedding of one frame -> the action, in the action's units.

    Args:
        spec: sizes and action names.
    """

    action_mean: Tensor
    action_std: Tensor

    def __init__(self, spec: PolicySpec):
        super().__init__()
        self.spec = spec
        height, width = spec.grid
        self.token = nn.Linear(spec.channels, spec.dim)
        self.position = nn.Parameter(torch.zeros(1, height * width, spec.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.pool = AttentionPool(spec.dim, spec.heads)
        self.embedding = nn.Linear(spec.channels, spec.dim)
        self.mlp = nn.Sequential(
            nn.Linear(2 * spec.dim, spec.hidden),
            nn.GELU(),
            nn.Linear(spec.hidden, len(spec.actions)),
        )
        # The training set's action statistics (set before training, saved with the weights).
        self.register_buffer('action_mean', torch.zeros(len(spec.actions)))
        self.register_buffer('action_std', torch.ones(len(spec.actions)))

    def set_action_statistics(self, actions: Tensor) -> None:
        """Normalise with the mean and spread of (N, A) training actions (a constant: std 1)."""
        std = actions.std(dim=0, unbiased=False) if actions.shape[0] > 1 else None
        self.action_mean.copy_(actions.mean(dim=0))
        if std is not None:
            self.action_std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def normalised(self, features: Tensor, embedding: Tensor) -> Tensor:
        """(B, A) actions in training-normalised units (what the loss compares).

        Args:
            features: (B, h, w, C) patch features (any float dtype), h x w = `spec.grid`.
            embedding: (B, C) global embedding.
        """
        batch = features.shape[0]
        tokens = self.token(features.float().reshape(batch, -1, self.spec.channels))
        pooled = self.pool(tokens + self.position)
        return self.mlp(torch.cat([pooled, self.embedding(embedding.float())], dim=-1))

    def forward(self, features: Tensor, embedding: Tensor) -> Tensor:
        """(B, A) actions in their own units (as recorded), from (B, h, w, C) and (B, C)."""
        return self.normalised(features, embedding) * self.action_std + self.action_mean
