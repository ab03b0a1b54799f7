"""PixioEncoder against transformers.PixioModel (the reference) with the same weights."""

from __future__ import annotations

import pytest
import torch

from pixio_ros.model import PixioEncoder, get_size
from pixio_ros.model.checkpoints import load_encoder_checkpoint

TOLERANCE = 1e-5
NUM_CLASS_TOKENS = 8


def reference_blocks(hf_model, pixels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The reference's per-block outputs after its final LayerNorm, and its last_hidden_state."""
    with torch.no_grad():
        output = hf_model(pixels, output_hidden_states=True)
        blocks = [hf_model.layernorm(hidden) for hidden in output.hidden_states[1:]]
    return blocks, output.last_hidden_state


def assert_matches_reference(encoder: PixioEncoder, hf_model, pixels: torch.Tensor) -> None:
    expected_blocks, expected_last = reference_blocks(hf_model, pixels)
    indices = list(range(encoder.depth))
    with torch.no_grad():
        ours = encoder.forward_intermediates(pixels, indices)
        last = encoder(pixels)
    assert len(ours) == len(expected_blocks)
    for (patch, cls), expected in zip(ours, expected_blocks, strict=True):
        torch.testing.assert_close(cls, expected[:, :NUM_CLASS_TOKENS], rtol=0, atol=TOLERANCE)
        torch.testing.assert_close(patch, expected[:, NUM_CLASS_TOKENS:], rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(last, expected_last, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize('size', [(256, 256), (240, 320), (64, 96)])
def test_tiny_matches_transformers_every_block(hf_tiny, image_batch, size):
    # transformers 5.23 accepts non-256 inputs and resizes its position embedding with its own
    # interpolate_pos_encoding (bicubic, fp32), so no work-around for its size check is needed.
    hf_model, folder = hf_tiny
    encoder = load_encoder_checkpoint(folder, size='tiny')
    assert_matches_reference(encoder, hf_model, image_batch(*size))


def test_vitb16_matches_transformers_at_256(tmp_path, make_hf_model, vitb16_dims, image_batch):
    hf_model = make_hf_model(vitb16_dims, seed=2, scale=0.02)
    hf_model.save_pretrained(tmp_path)
    encoder = load_encoder_checkpoint(tmp_path, size='vitb16')
    assert_matches_reference(encoder, hf_model, image_batch(256, 256, batch=1))


def test_position_embedding_unchanged_at_the_trained_grid():
    torch.manual_seed(0)
    encoder = PixioEncoder(get_size('tiny'))
    resized = encoder._position_embedding(16, 16)
    torch.testing.assert_close(resized, encoder.pos_embed, rtol=0, atol=1e-6)


def test_intermediates_only_requested_blocks_in_order(hf_tiny, image_batch):
    hf_model, folder = hf_tiny
    encoder = load_encoder_checkpoint(folder)
    pixels = image_batch(64, 64)
    expected_blocks, _ = reference_blocks(hf_model, pixels)
    with torch.no_grad():
        ours = encoder.forward_intermediates(pixels, [1, 2])
    assert len(ours) == 2
    for (patch, _cls), expected in zip(ours, expected_blocks[1:3], strict=True):
        torch.testing.assert_close(patch, expected[:, NUM_CLASS_TOKENS:], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize('size', [(250, 256), (256, 100), (8, 16)])
def test_rejects_sizes_not_divisible_by_16(image_batch, size):
    encoder = PixioEncoder(get_size('tiny'))
    message = rf'{size[0]}x{size[1]} is not divisible by the patch size 16'
    with pytest.raises(ValueError, match=message):
        encoder(image_batch(*size, batch=1))
