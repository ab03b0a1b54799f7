"""Pixio encoder checkpoints -> PixioEncoder: official .pth files and Hugging Face model folders.

Loading is safe only: ``safetensors`` or ``torch.load(weights_only=True)``; nothing is unpickled.
Renaming lives in pure functions (`hf_to_pixio_state_dict`), and loading is strict: every
parameter present with the expected shape, nothing left over.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pixio_ros.files import file_sha256
from pixio_ros.model.encoder import PixioEncoder
from pixio_ros.model.errors import ModelError
from pixio_ros.model.sizes import ModelSize, get_size, size_for_dims

HF_CONFIG = 'config.json'
HF_WEIGHTS = 'model.safetensors'
HF_WEIGHTS_INDEX = 'model.safetensors.index.json'
HF_PREFIX = 'pixio.'
"""Prefix of the encoder inside transformers' PixioBackbone and task models."""
WRAPPER_KEY = 'model'
"""Training scripts often save ``{'model': state_dict, 'optimizer': ...}``."""
_MAX_LISTED_KEYS = 8

# Hugging Face key (after the optional `pixio.` prefix) -> our key, for non-block parameters.
_HF_GLOBAL_KEYS = {
    'embeddings.cls_token': 'cls_token',
    'embeddings.position_embeddings': 'pos_embed',
    'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
    'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
    'layernorm.weight': 'norm.weight',
    'layernorm.bias': 'norm.bias',
}
# Block-relative names in the three namings transformers reads: the hub's, the one
# `save_pretrained` writes in 5.23 and the in-memory one of 5.23.
_HF_BLOCK_MODULES = {
    'attention.output.dense': 'attn.proj',
    'attention.o_proj': 'attn.proj',
    'norm1': 'norm1',
    'layernorm_before': 'norm1',
    'norm2': 'norm2',
    'layernorm_after': 'norm2',
    'mlp.fc1': 'mlp.fc1',
    'intermediate.dense': 'mlp.fc1',
    'mlp.fc2': 'mlp.fc2',
    'output.dense': 'mlp.fc2',
}
_HF_QKV_MODULES = {
    'attention.attention.query': 0,
    'attention.attention.key': 1,
    'attention.attention.value': 2,
    'attention.q_proj': 0,
    'attention.k_proj': 1,
    'attention.v_proj': 2,
}
_HF_BLOCK_KEY = re.compile(r'^(?:encoder\.layer|layers)\.(\d+)\.(.+)\.(weight|bias)$')
_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.')


def hf_to_pixio_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a transformers Pixio state dict to the released names; q, k, v fuse into qkv.

    Keys this function does not recognise are kept unchanged, so strict loading reports them.
    """
    renamed: dict[str, Tensor] = {}
    qkv_parts: dict[tuple[int, str], dict[int, Tensor]] = {}
    for key, value in state_dict.items():
        name = key[len(HF_PREFIX) :] if key.startswith(HF_PREFIX) else key
        if name in _HF_GLOBAL_KEYS:
            renamed[_HF_GLOBAL_KEYS[name]] = value
            continue
        match = _HF_BLOCK_KEY.match(name)
        if match is None:
            renamed[key] = value
            continue
        index, module, kind = int(match.group(1)), match.group(2), match.group(3)
        if module in _HF_QKV_MODULES:
            qkv_parts.setdefault((index, kind), {})[_HF_QKV_MODULES[module]] = value
        elif module in _HF_BLOCK_MODULES:
            renamed[f'blocks.{index}.{_HF_BLOCK_MODULES[module]}.{kind}'] = value
        else:
            renamed[key] = value
    for (index, kind), parts in qkv_parts.items():
        if len(parts) != len(('q', 'k', 'v')):
            raise ModelError(
                f'block {index} has only {len(parts)} of the query/key/value {kind} tensors.'
            )
        renamed[f'blocks.{index}.attn.qkv.{kind}'] = torch.cat([parts[i] for i in range(3)])
    return renamed


def is_hf_state_dict(state_dict: Mapping[str, Tensor]) -> bool:
    """True when the keys follow a transformers naming rather than the released one."""
    return any(key.startswith(HF_PREFIX) or key.startswith('embeddings.') for key in state_dict)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device='cpu')


def _read_hf_folder(folder: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Weights and config.json of a Hugging Face model folder (single or sharded safetensors)."""
    config_path = folder / HF_CONFIG
    try:
        config = json.loads(config_path.read_text(encoding='utf-8'))
    except FileNotFoundError as err:
        raise ModelError(
            f'{folder} has no {HF_CONFIG}; is it a Hugging Face model folder?'
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f'{config_path} is not valid JSON: {err}.') from err
    if (folder / HF_WEIGHTS).is_file():
        return _read_weights_file(folder / HF_WEIGHTS), config
    index_path = folder / HF_WEIGHTS_INDEX
    if index_path.is_file():
        try:
            shards = sorted(set(json.loads(index_path.read_text())['weight_map'].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as err:
            raise ModelError(f'{index_path} is not a safetensors index: {err}.') from err
        state_dict: dict[str, Tensor] = {}
        for shard in shards:
            state_dict.update(_read_weights_file(folder / shard))
        return state_dict, config
    raise ModelError(
        f'{folder} has neither {HF_WEIGHTS} nor {HF_WEIGHTS_INDEX}; save the model with '
        '`save_pretrained(..., safe_serialization=True)`.'
    )


def load_torch_weights(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on the CPU; pickled objects are refused in our words.

    torch's own refusal suggests ``weights_only=False``, i.e. unpickling, which must never be
    done with a downloaded file, so that advice is not relayed.

    Raises:
        ModelError: The file holds pickled Python objects beyond tensors and containers.
    """
    try:
        return torch.load(str(path), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused a pickled Python object
        raise ModelError(
            f'{path} contains pickled Python objects, which pixio-ros refuses to load for safety '
            '(unpickling can run arbitrary code); convert it to a plain state dict of tensors '
            '(torch.save(model.state_dict(), ...)) or to a .safetensors file.'
        ) from None


def _read_weights_file(path: Path) -> dict[str, Tensor]:
    """A flat state dict from a .safetensors or a torch .pth/.pt/.bin file, loaded safely."""
    if not path.is_file():
        raise ModelError(f'checkpoint {path} does not exist.')
    try:
        if path.suffix == '.safetensors':
            return _read_safetensors(path)
        loaded = load_torch_weights(path)
    except ModelError:
        raise
    except Exception as err:  # truncated or foreign files fail in many ways; name the file
        raise ModelError(
            f'cannot read checkpoint {path} ({type(err).__name__}: {err}); expected a complete '
            'safetensors file or a torch state dict saved with torch.save.'
        ) from err
    if isinstance(loaded, Mapping) and isinstance(loaded.get(WRAPPER_KEY), Mapping):
        loaded = loaded[WRAPPER_KEY]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, Tensor) for value in loaded.values()
    ):
        raise ModelError(
            f'{path} does not hold a state dict of tensors (found {type(loaded).__name__}); '
            f"expected the encoder's state dict, optionally under {WRAPPER_KEY!r}."
        )
    return dict(loaded)


def _hf_weight_files(folder: Path) -> list[Path]:
    """The files holding a Hugging Face folder's weights: model.safetensors, or index + shards."""
    weights = folder / HF_WEIGHTS
    if weights.is_file():
        return [weights]
    index_path = folder / HF_WEIGHTS_INDEX
    try:
        shards = set(json.loads(index_path.read_text(encoding='utf-8'))['weight_map'].values())
    except FileNotFoundError as err:
        raise ModelError(
            f'{folder} has neither {HF_WEIGHTS} nor {HF_WEIGHTS_INDEX}; pass an encoder '
            'checkpoint file or a Hugging Face model folder.'
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ModelError(f'{index_path} is not a safetensors index: {err}.') from err
    return [index_path, *sorted(folder / shard for shard in shards)]


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 identifying a checkpoint file or a Hugging Face model folder's weights.

    A file, or a folder with one model.safetensors, hashes that file. A sharded folder hashes
    the index and every shard (sorted by name) into one digest of (name, file sha256) pairs, so
    folders with different weights never share a hash.
    """
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise ModelError(f'checkpoint {path} does not exist.')
        return file_sha256(path)
    files = _hf_weight_files(path)
    if len(files) == 1:
        return file_sha256(files[0])
    digest = hashlib.sha256()
    for file in files:
        if not file.is_file():
            raise ModelError(f'{file} is listed in {HF_WEIGHTS_INDEX} but does not exist.')
        digest.update(f'{file.name}\0{file_sha256(file)}\n'.encode())
    return digest.hexdigest()


def read_encoder_state_dict(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """Read an encoder checkpoint (file or Hugging Face folder) in the released key naming.

    Returns:
        The state dict and, for a Hugging Face folder, its config.json (else None).
    """
    path = Path(path)
    config = None
    if path.is_dir():
        state_dict, config = _read_hf_folder(path)
    else:
        state_dict = _read_weights_file(path)
    if is_hf_state_dict(state_dict):
        state_dict = hf_to_pixio_state_dict(state_dict)
    return state_dict, config


def infer_size(state_dict: Mapping[str, Tensor], *, source: str) -> ModelSize:
    """The table size matching the weights' embedding width and number of blocks."""
    if 'cls_token' not in state_dict:
        raise ModelError(
            f'{source} has no cls_token; expected a Pixio encoder checkpoint, found keys '
            f'{_preview(state_dict)}.'
        )
    embed_dim = int(state_dict['cls_token'].shape[-1])
    block_ids = set()
    for key in state_dict:
        if not key.startswith('blocks.'):
            continue
        match = _BLOCK_KEY.match(key)
        if match is None:
            raise ModelError(
                f'{source} has key {key!r}, which is not blocks.<number>.<name>; expected a '
                'Pixio encoder checkpoint with numbered blocks.'
            )
        block_ids.add(int(match.group(1)))
    depth = max(block_ids) + 1 if block_ids else 0
    try:
        return size_for_dims(embed_dim, depth)
    except ModelError as err:
        raise ModelError(f'{source}: {err}') from err


def _preview(keys: Any) -> str:
    keys = sorted(keys)
    more = len(keys) - _MAX_LISTED_KEYS
    listed = ', '.join(keys[:_MAX_LISTED_KEYS])
    return listed + (f' ... (+{more} more)' if more > 0 else '')


def load_encoder_checkpoint(
    path: str | os.PathLike[str], *, size: str | None = None
) -> PixioEncoder:
    """Build a PixioEncoder from an official .pth / safetensors file or a Hugging Face folder.

    Args:
        path: Checkpoint file, or a folder with config.json + model.safetensors.
        size: Expected size name; None accepts whatever size the weights have.

    Returns:
        The encoder in eval mode, float32, on the CPU.

    Raises:
        ModelError: Unreadable file, unknown size, size other than ``size``, missing or
            unexpected keys, or tensors of the wrong shape.
    """
    source = str(path)
    state_dict, config = read_encoder_state_dict(path)
    found = infer_size(state_dict, source=source)
    heads = (config or {}).get('num_attention_heads', found.num_heads)
    if heads != found.num_heads:
        raise ModelError(
            f'{source}/{HF_CONFIG} says num_attention_heads {heads}, but a {found.name} encoder '
            f'has {found.num_heads}; this is not a released Pixio configuration.'
        )
    if size is not None and get_size(size).name != found.name:
        raise ModelError(
            f'{source} holds a {found.name} encoder (embed_dim {found.embed_dim}, depth '
            f'{found.depth}) but size {size!r} was asked for; '
            f'drop --size or pass --size {found.name}.'
        )
    encoder = PixioEncoder(found)
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f'{source} does not match the {found.name} encoder: missing keys '
            f'[{_preview(missing)}], unexpected keys [{_preview(unexpected)}].'
        )
    wrong = [
        f'{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(value.shape)}'
        for key, value in expected.items()
        if state_dict[key].shape != value.shape
    ]
    if wrong:
        raise ModelError(f'{source} has tensors of the wrong shape: ' + '; '.join(wrong[:4]) + '.')
    encoder.load_state_dict({key: value.float() for key, value in state_dict.items()})
    return encoder.eval()
