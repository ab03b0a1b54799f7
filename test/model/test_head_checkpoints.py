"""Head checkpoints: ours (safetensors with a header) and the paper's state dicts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from pixio_ros.cli import main
from pixio_ros.model import (
    HeadInfo,
    ModelError,
    PixioEncoder,
    build_head,
    get_size,
    load_head_checkpoint,
    read_head_info,
    save_head_checkpoint,
)
from pixio_ros.model.head_checkpoints import load_paper_head


def maps_for(head) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(1, 128, 2, 3, generator=generator) for _ in head.block_indices]


def depth_of(head) -> torch.Tensor:
    with torch.no_grad():
        return head.eval()(maps_for(head), 32, 48)['depth']


def trained_head(kind: str):
    torch.manual_seed(3)
    head = build_head(get_size('tiny'), kind, max_depth=6.0)
    if kind == 'linear':  # non-trivial running statistics, as after training
        head.norm.running_mean.normal_()
        head.norm.running_var.uniform_(0.5, 2.0)
    return head


@pytest.mark.parametrize('kind', ['depth', 'points', 'linear'])
def test_round_trip(tmp_path, kind):
    head = trained_head(kind)
    path = tmp_path / 'head.safetensors'
    save_head_checkpoint(head, path, HeadInfo(kind, 'tiny', 6.0, 'ab' * 32))
    assert read_head_info(path) == HeadInfo(kind, 'tiny', 6.0, 'ab' * 32)
    loaded, _ = load_head_checkpoint(path)
    torch.testing.assert_close(depth_of(loaded), depth_of(head), rtol=0, atol=0)


def test_foreign_safetensors_is_not_a_head(tmp_path):
    path = tmp_path / 'weights.safetensors'
    save_file({'w': torch.zeros(2)}, str(path))
    with pytest.raises(
        ModelError, match=r'not a head checkpoint written by `pixio-ros train-head`'
    ):
        load_head_checkpoint(path)


def paper_state_dict(head, kind: str) -> dict[str, torch.Tensor]:
    """The key layout of the paper's DPTDepth / LinearDepth (encoder.* beside head.*)."""
    renames = {'norm.': '0.', 'conv.': '1.'} if kind == 'linear' else {}
    state = {}
    for key, value in head.state_dict().items():
        for ours, theirs in renames.items():
            if key.startswith(ours):
                key = theirs + key[len(ours) :]
        state[f'head.{key}'] = value
    encoder = PixioEncoder(get_size('tiny')).state_dict()
    state.update({f'encoder.{key}': value for key, value in encoder.items()})
    return state


@pytest.mark.parametrize('kind', ['depth', 'linear'])
def test_paper_heads_map_onto_ours(tmp_path, kind):
    head = trained_head(kind)
    path = tmp_path / 'paper.pth'
    torch.save({'model': paper_state_dict(head, kind)}, path)
    loaded = load_paper_head(path, size='tiny', head_kind=kind, max_depth=6.0)
    torch.testing.assert_close(depth_of(loaded), depth_of(head), rtol=0, atol=0)


def test_paper_has_no_point_map_head(tmp_path):
    with pytest.raises(ModelError, match=r"not 'points'; pass --head-kind depth or linear"):
        load_paper_head(tmp_path / 'x.pth', size='tiny', head_kind='points', max_depth=6.0)


def test_paper_head_with_pickled_training_args_is_refused(tmp_path):
    import argparse

    head = trained_head('linear')
    path = tmp_path / 'paper.pth'
    torch.save({'model': paper_state_dict(head, 'linear'), 'args': argparse.Namespace()}, path)
    with pytest.raises(ModelError, match=r'paper\.pth contains pickled Python objects') as error:
        load_paper_head(path, size='tiny', head_kind='linear', max_depth=6.0)
    assert 'weights_only=False' not in str(error.value)


def test_paper_head_of_another_size(tmp_path):
    head = build_head(get_size('vitb16'), 'linear')
    path = tmp_path / 'paper.pth'
    torch.save(paper_state_dict(head, 'linear'), path)
    with pytest.raises(ModelError, match=r'does not match a paper tiny linear head'):
        load_paper_head(path, size='tiny', head_kind='linear', max_depth=6.0)


def test_export_with_a_paper_head(tmp_path, capsys):
    encoder_path = tmp_path / 'encoder.pth'
    torch.manual_seed(0)
    torch.save(PixioEncoder(get_size('tiny')).state_dict(), encoder_path)
    head_path = tmp_path / 'paper.pth'
    torch.save(paper_state_dict(trained_head('depth'), 'depth'), head_path)
    out = tmp_path / 'paper.ts'
    base = [
        'export',
        '--encoder',
        str(encoder_path),
        '--head',
        str(head_path),
        '--input-size',
        '32x48',
        '-o',
        str(out),
    ]
    assert main(base) == 1
    assert 'pass --head-kind depth|linear and --max-depth' in capsys.readouterr().err
    assert main([*base, '--head-kind', 'depth', '--max-depth', '6']) == 0
    capsys.readouterr()
    assert main(['info', str(out), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['head_trained'] is True and info['max_depth'] == 6.0
    assert set(info['sources']) == {'encoder', 'head'}
