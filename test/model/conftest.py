"""Shared reference models for the model tests: transformers' PixioModel saved by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

TINY_HF = {'hidden_size': 64, 'num_hidden_layers': 4, 'num_attention_heads': 4}
VITB16_HF = {'hidden_size': 768, 'num_hidden_layers': 12, 'num_attention_heads': 12}


def _make_hf_model(dims: dict[str, int], seed: int, *, scale: float):
    """A transformers PixioModel with every parameter random (biases and LayerNorms too)."""
    from transformers import PixioConfig, PixioModel

    torch.manual_seed(seed)
    model = PixioModel(PixioConfig(**dims)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'layernorm' in name and name.endswith('weight'):
                param.uniform_(0.5, 1.5)
            elif name.endswith('bias') or 'layernorm' in name:
                param.normal_(0.0, scale)
    return model


@pytest.fixture(scope='session')
def hf_tiny(tmp_path_factory) -> tuple[object, Path]:
    """(transformers PixioModel of the `tiny` dimensions, folder it saved itself to)."""
    model = _make_hf_model(TINY_HF, seed=1, scale=0.1)
    folder = tmp_path_factory.mktemp('hf_tiny')
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope='session')
def make_hf_model():
    """Factory ``make(dims, seed, *, scale)`` for randomised transformers PixioModels."""
    return _make_hf_model


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
