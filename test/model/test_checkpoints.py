"""Encoder checkpoints: official .pth, every transformers naming, and the bad-file errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pixio_ros.model import ModelError
from pixio_ros.model.checkpoints import checkpoint_sha256, load_encoder_checkpoint


def hub_naming(key: str) -> str:
    """The Hugging Face hub's names: MLP as mlp.fc1 / mlp.fc2 instead of 5.23's save names."""
    key = re.sub(r'\.intermediate\.dense\.', '.mlp.fc1.', key)
    return re.sub(r'(layer\.\d+)\.output\.dense\.', r'\1.mlp.fc2.', key)


def write_hf_folder(folder: Path, source: Path, state_dict: dict[str, torch.Tensor]) -> Path:
    folder.mkdir()
    shutil.copy(source / 'config.json', folder / 'config.json')
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(folder / 'model.safetensors'))
    return folder


def encoder_output(encoder, image_batch) -> torch.Tensor:
    with torch.no_grad():
        return encoder(image_batch(64, 80, seed=3))


@pytest.fixture(scope='module')
def saved(hf_tiny) -> dict[str, torch.Tensor]:
    """The state dict transformers 5.23's save_pretrained wrote."""
    return load_file(str(hf_tiny[1] / 'model.safetensors'))


@pytest.fixture(scope='module')
def official_state_dict(hf_tiny) -> dict[str, torch.Tensor]:
    return load_encoder_checkpoint(hf_tiny[1]).state_dict()


def test_round_trip_through_transformers(hf_tiny, image_batch):
    from transformers import PixioModel

    _, folder = hf_tiny
    reloaded = PixioModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = reloaded(image_batch(64, 80, seed=3)).last_hidden_state
    got = encoder_output(load_encoder_checkpoint(folder), image_batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    'naming', ['save_pretrained', 'hub', 'hub_with_prefix', 'in_memory', 'in_memory_with_prefix']
)
def test_every_transformers_naming_loads_the_same(hf_tiny, saved, naming, tmp_path, image_batch):
    hf_model, folder = hf_tiny
    if naming.startswith('in_memory'):
        state_dict = dict(hf_model.state_dict())
    elif naming.startswith('hub'):
        state_dict = {hub_naming(k): v for k, v in saved.items()}
    else:
        state_dict = dict(saved)
    if naming.endswith('with_prefix'):
        state_dict = {f'pixio.{k}': v for k, v in state_dict.items()}
    variant = write_hf_folder(tmp_path / naming, folder, state_dict)
    expected = encoder_output(load_encoder_checkpoint(folder), image_batch)
    torch.testing.assert_close(
        encoder_output(load_encoder_checkpoint(variant), image_batch), expected, rtol=0, atol=0
    )


SHARDS = ('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors')
INDEX = 'model.safetensors.index.json'


def write_sharded_folder(folder: Path, source: Path, state_dict: dict[str, torch.Tensor]) -> Path:
    """``state_dict`` as a two-shard Hugging Face folder with an index (config from source)."""
    folder.mkdir()
    shutil.copy(source / 'config.json', folder / 'config.json')
    keys = sorted(state_dict)
    shards = {SHARDS[0]: keys[::2], SHARDS[1]: keys[1::2]}
    for name, shard_keys in shards.items():
        save_file({k: state_dict[k].contiguous() for k in shard_keys}, str(folder / name))
    weight_map = {key: name for name, shard_keys in shards.items() for key in shard_keys}
    (folder / INDEX).write_text(json.dumps({'weight_map': weight_map}))
    return folder


def test_sharded_hf_folder(hf_tiny, saved, tmp_path, image_batch):
    folder = write_sharded_folder(tmp_path / 'sharded', hf_tiny[1], saved)
    expected = encoder_output(load_encoder_checkpoint(hf_tiny[1]), image_batch)
    got = encoder_output(load_encoder_checkpoint(folder), image_batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_sharded_folder_hash_covers_every_shard(hf_tiny, saved, tmp_path):
    folder = write_sharded_folder(tmp_path / 'a', hf_tiny[1], saved)
    changed = {key: value + 1 for key, value in saved.items()}
    other = write_sharded_folder(tmp_path / 'b', hf_tiny[1], changed)
    assert (folder / INDEX).read_bytes() == (other / INDEX).read_bytes()
    digest = hashlib.sha256()
    for name in (INDEX, *SHARDS):
        file_digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        digest.update(f'{name}\0{file_digest}\n'.encode())
    assert checkpoint_sha256(folder) == digest.hexdigest()
    assert checkpoint_sha256(other) != checkpoint_sha256(folder)
    single = hashlib.sha256((hf_tiny[1] / 'model.safetensors').read_bytes()).hexdigest()
    assert checkpoint_sha256(hf_tiny[1]) == single


@pytest.mark.parametrize('layout', ['plain', 'wrapped', 'safetensors'])
def test_official_files_match_the_hf_folder(
    hf_tiny, official_state_dict, layout, tmp_path, image_batch
):
    if layout == 'safetensors':
        path = tmp_path / 'pixio_tiny.safetensors'
        save_file(official_state_dict, str(path))
    else:
        path = tmp_path / 'pixio_tiny.pth'
        payload = official_state_dict if layout == 'plain' else {'model': official_state_dict}
        torch.save(payload, path)
    expected = encoder_output(load_encoder_checkpoint(hf_tiny[1]), image_batch)
    got = encoder_output(load_encoder_checkpoint(path, size='tiny'), image_batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def edited(state_dict: dict[str, torch.Tensor], case: str) -> dict[str, torch.Tensor]:
    state_dict = dict(state_dict)
    if case == 'missing':
        del state_dict['norm.weight']
    elif case == 'unexpected':
        state_dict['decoder_pred.weight'] = torch.zeros(3)
    elif case == 'wrong_shape':
        state_dict['pos_embed'] = torch.zeros(1, 100, 64)
    elif case == 'unknown_dims':
        state_dict['cls_token'] = torch.zeros(1, 8, 96)
    elif case == 'malformed_block':
        state_dict['blocks.x.foo'] = torch.zeros(1)
    return state_dict


@pytest.mark.parametrize(
    ('case', 'message'),
    [
        ('missing', r'missing keys \[norm\.weight\], unexpected keys \[\]'),
        ('unexpected', r'missing keys \[\], unexpected keys \[decoder_pred\.weight\]'),
        ('wrong_shape', r'pos_embed: checkpoint \(1, 100, 64\) vs model \(1, 264, 64\)'),
        ('unknown_dims', r'no Pixio size has embed_dim 96 and depth 4'),
        ('malformed_block', r"has key 'blocks\.x\.foo', which is not blocks\.<number>\.<name>"),
    ],
)
def test_bad_state_dicts_are_named(official_state_dict, tmp_path, case, message):
    path = tmp_path / f'{case}.pth'
    torch.save(edited(official_state_dict, case), path)
    with pytest.raises(ModelError, match=re.escape(str(path)) + '.*' + message):
        load_encoder_checkpoint(path)


def test_wrong_size_is_refused(hf_tiny):
    with pytest.raises(ModelError, match=r'holds a tiny encoder .* but size .vitb16. was asked'):
        load_encoder_checkpoint(hf_tiny[1], size='vitb16')


def test_unknown_size_name_is_refused(hf_tiny):
    with pytest.raises(ModelError, match=r"unknown model size 'vitx'; expected one of vitb16"):
        load_encoder_checkpoint(hf_tiny[1], size='vitx')


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_truncated_file(official_state_dict, tmp_path, suffix):
    whole = tmp_path / f'whole{suffix}'
    if suffix == '.pth':
        torch.save(official_state_dict, whole)
    else:
        save_file(official_state_dict, str(whole))
    truncated = tmp_path / f'truncated{suffix}'
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ModelError, match=rf'cannot read checkpoint {re.escape(str(truncated))}'):
        load_encoder_checkpoint(truncated)


class Payload:
    """An arbitrary class: unpickling it could run code, so weights_only must refuse it."""


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / 'object.pth'
    torch.save({'model': Payload()}, path)
    with pytest.raises(ModelError, match=r'object\.pth contains pickled Python objects') as error:
        load_encoder_checkpoint(path)
    assert 'weights_only=False' not in str(error.value)
    assert 'convert it to a plain state dict' in str(error.value)


def test_non_state_dict_is_refused(tmp_path):
    path = tmp_path / 'list.pth'
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ModelError, match=r'does not hold a state dict of tensors \(found list\)'):
        load_encoder_checkpoint(path)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match=r'has no config\.json'):
        load_encoder_checkpoint(tmp_path)


def test_config_with_other_head_count(hf_tiny, tmp_path):
    folder = tmp_path / 'heads'
    shutil.copytree(hf_tiny[1], folder)
    config = json.loads((folder / 'config.json').read_text())
    config['num_attention_heads'] = 8
    (folder / 'config.json').write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r'num_attention_heads 8, but a tiny encoder has 4'):
        load_encoder_checkpoint(folder)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match=r'checkpoint .*nothing\.pth does not exist'):
        load_encoder_checkpoint(tmp_path / 'nothing.pth')
