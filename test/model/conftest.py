"""Shared reference models for the model tests: transformers' PixioModel saved by itself."""

from __future__ import annotations

import pytest
import torch

VITB16_HF = {'hidden_size': 768, 'num_hidden_layers': 12, 'num_attention_heads': 12}


def _image_batch(height: int, width: int, *, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, height, width, generator=generator)


@pytest.fixture(scope='session')
def image_batch():
    """Factory ``make(height, width, *, batch=2, seed=0)`` of normalised-looking (B, 3, H, W)."""
    return _image_batch


@pytest.fixture(scope='session')
def vitb16_dims() -> dict[str, int]:
    """The transformers config fields of the vitb16 size."""
    return dict(VITB16_HF)
