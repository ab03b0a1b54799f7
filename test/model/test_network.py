"""PixioNet: the artifact contract in eager mode (normalisation, output keys, dtypes, errors)."""

from __future__ import annotations

import pytest
import torch

from pixio_ros.model import ModelError, build_network

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
NUM_CLASS_TOKENS = 8


def rgb(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, generator=generator)


def test_features_and_embedding_come_from_the_normalised_image():
    torch.manual_seed(0)
    net = build_network('tiny', 'none')
    image = rgb(2, 48, 80)
    pixels = (image.permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
    with torch.no_grad():
        out = net(image)
        tokens = net.encoder(pixels)
    patches = tokens[:, NUM_CLASS_TOKENS:].reshape(2, 3, 5, 64).permute(0, 3, 1, 2)
    torch.testing.assert_close(out['features'], patches, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        out['embedding'], tokens[:, :NUM_CLASS_TOKENS].mean(dim=1), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ('kind', 'keys'),
    [
        ('depth', ['depth', 'features', 'embedding']),
        ('points', ['depth', 'points', 'confidence', 'features', 'embedding']),
        ('linear', ['depth', 'features', 'embedding']),
        ('none', ['features', 'embedding']),
    ],
)
def test_output_keys(kind, keys):
    torch.manual_seed(0)
    net = build_network('tiny', kind, max_depth=4.0)
    with torch.no_grad():
        out = net(rgb(1, 32, 48))
    assert list(out) == keys
    assert net.output_keys == keys
    assert net.max_depth == (None if kind == 'none' else 4.0)


def test_outputs_are_float32_for_a_bf16_network():
    torch.manual_seed(0)
    net = build_network('tiny', 'points').to(torch.bfloat16)
    with torch.no_grad():
        out = net(rgb(1, 32, 32))
    assert {value.dtype for value in out.values()} == {torch.float32}


@pytest.mark.parametrize('shape', [(32, 32, 3), (1, 32, 32, 4), (1, 3, 32, 32)])
def test_rejects_non_nhwc_rgb(shape):
    net = build_network('tiny', 'depth')
    with pytest.raises(ValueError, match=r'expected a uint8 RGB batch \[B, H, W, 3\]'):
        net(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize(
    ('args', 'kwargs', 'message'),
    [
        (('tiny', 'segmentation'), {}, r"unknown head kind 'segmentation'; expected one of depth"),
        (('tiny', 'depth'), {'max_depth': 0.0}, r'max_depth must be a positive number.*got 0\.0'),
        (('vit7b', 'depth'), {}, r"unknown model size 'vit7b'"),
    ],
)
def test_build_network_errors(args, kwargs, message):
    with pytest.raises(ModelError, match=message):
        build_network(*args, **kwargs)


def test_head_of_another_size_is_refused():
    from pixio_ros.model import LinearDepthHead, PixioEncoder, PixioNet, get_size

    head = LinearDepthHead(1536, block_index=3)
    with pytest.raises(ModelError, match=r'takes 1536 channels, but a tiny encoder gives 128'):
        PixioNet(PixioEncoder(get_size('tiny')), head)


def test_head_reading_missing_blocks_is_refused():
    from pixio_ros.model import PixioEncoder, PixioNet, build_head, get_size

    head = build_head(get_size('vitb16'), 'linear')
    with pytest.raises(ModelError, match=r'reads block 11, but the encoder has only 4 blocks'):
        PixioNet(PixioEncoder(get_size('tiny')), head)
