"""Depth, point-map and linear heads: shapes, ranges, the paper's layout and block choice."""

from __future__ import annotations

import pytest
import torch

from pixio_ros.model import build_head, get_size
from pixio_ros.model.heads import MIN_DEPTH_M

MAX_DEPTH = 7.5
EXPECTED_CHANNELS = {
    'depth': {'depth': 1},
    'points': {'depth': 1, 'points': 3, 'confidence': 1},
    'linear': {'depth': 1},
}


def head_inputs(size_name: str, height: int, width: int, head) -> list[torch.Tensor]:
    size = get_size(size_name)
    generator = torch.Generator().manual_seed(0)
    shape = (2, 2 * size.embed_dim, height // 16, width // 16)
    return [torch.randn(shape, generator=generator) for _ in head.block_indices]


def final_conv(head) -> torch.nn.Conv2d:
    return head.conv if head.kind == 'linear' else head.scratch.output_conv[2]


@pytest.mark.parametrize('kind', ['depth', 'points', 'linear'])
@pytest.mark.parametrize(('height', 'width'), [(240, 320), (256, 256)])
def test_output_shapes_and_ranges(kind, height, width):
    torch.manual_seed(0)
    head = build_head(get_size('tiny'), kind, max_depth=MAX_DEPTH).eval()
    with torch.no_grad():
        out = head(head_inputs('tiny', height, width, head), height, width)
    assert {key: value.shape for key, value in out.items()} == {
        key: (2, channels, height, width) for key, channels in EXPECTED_CHANNELS[kind].items()
    }
    assert bool(((out['depth'] > 0) & (out['depth'] <= MAX_DEPTH)).all())
    if kind == 'points':
        assert bool(((out['confidence'] > 0) & (out['confidence'] < 1)).all())
        torch.testing.assert_close(out['points'][:, 2:3], out['depth'], rtol=0, atol=0)


@pytest.mark.parametrize('kind', ['depth', 'points', 'linear'])
@pytest.mark.parametrize(('bias', 'expected'), [(-1e4, MIN_DEPTH_M), (1e4, MAX_DEPTH)])
def test_depth_stays_in_range_for_extreme_logits(kind, bias, expected):
    torch.manual_seed(0)
    head = build_head(get_size('tiny'), kind, max_depth=MAX_DEPTH).eval()
    conv = final_conv(head)
    depth_channel = 2 if kind == 'points' else 0
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias[depth_channel] = bias
        depth = head(head_inputs('tiny', 64, 64, head), 64, 64)['depth']
    torch.testing.assert_close(depth, torch.full_like(depth, expected))
    assert bool((depth > 0).all())


def test_point_map_scales_rays_by_depth():
    torch.manual_seed(0)
    head = build_head(get_size('tiny'), 'points', max_depth=MAX_DEPTH).eval()
    conv = final_conv(head)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([0.5, -0.25, 0.0, 0.0]))
        out = head(head_inputs('tiny', 32, 48, head), 32, 48)
    # depth logit 0 -> sigmoid 0.5 -> half the range; rays (0.5, -0.25) scaled by it.
    half = MAX_DEPTH / 2
    expected = torch.tensor([0.5 * half, -0.25 * half, half]).view(1, 3, 1, 1).expand(2, 3, 32, 48)
    torch.testing.assert_close(out['points'], expected)
    torch.testing.assert_close(out['confidence'], torch.full((2, 1, 32, 48), 0.5))


@pytest.mark.parametrize(
    ('size', 'blocks'),
    [
        ('vitb16', [2, 5, 8, 11]),
        ('vitl16', [5, 11, 17, 23]),
        ('vit5b16', [11, 23, 35, 47]),
        ('tiny', [0, 1, 2, 3]),
    ],
)
def test_dpt_reads_the_papers_blocks(size, blocks):
    assert get_size(size).dpt_block_indices == blocks


def test_dpt_layout_matches_the_paper_for_vitb16():
    head = build_head(get_size('vitb16'), 'depth')
    shapes = {key: tuple(value.shape) for key, value in head.state_dict().items()}
    assert shapes['projects.0.weight'] == (256, 1536, 1, 1)
    assert [shapes[f'projects.{i}.weight'][0] for i in range(4)] == [256, 512, 1024, 1024]
    assert shapes['resize_layers.0.weight'] == (256, 256, 4, 4)
    assert shapes['resize_layers.1.weight'] == (512, 512, 2, 2)
    assert shapes['resize_layers.3.weight'] == (1024, 1024, 3, 3)
    assert shapes['scratch.layer4_rn.weight'] == (256, 1024, 3, 3)
    assert 'scratch.layer1_rn.bias' not in shapes
    assert shapes['scratch.refinenet1.resConfUnit1.conv1.weight'] == (256, 256, 3, 3)
    assert shapes['scratch.refinenet4.out_conv.weight'] == (256, 256, 1, 1)
    assert shapes['scratch.output_conv.0.weight'] == (256, 256, 3, 3)
    assert shapes['scratch.output_conv.2.weight'] == (1, 256, 1, 1)


def test_dpt_trunk_runs_at_half_resolution():
    torch.manual_seed(0)
    head = build_head(get_size('tiny'), 'depth').eval()
    with torch.no_grad():
        raw = head.trunk(head_inputs('tiny', 240, 320, head))
    assert raw.shape == (2, 1, 120, 160)


def test_linear_head_is_batchnorm_and_1x1_on_the_last_block():
    head = build_head(get_size('vitb16'), 'linear')
    assert head.block_indices == [11]
    assert isinstance(head.norm, torch.nn.BatchNorm2d) and head.norm.num_features == 1536
    assert tuple(head.conv.weight.shape) == (1, 1536, 1, 1)
