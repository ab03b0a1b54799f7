"""Trained head checkpoints: one safetensors file whose header says what the head is for.

The header metadata (safetensors' string-to-string map) records the head kind, the encoder size,
the depth range and the sha256 of the encoder it was trained on, so `pixio-ros export --head`
can rebuild the head and refuse to pair it with a different encoder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from pixio_ros.model.checkpoints import load_torch_weights
from pixio_ros.model.errors import ModelError
from pixio_ros.model.network import build_head
from pixio_ros.model.sizes import get_size

HEAD_FORMAT = 'pixio_ros.head'
HEAD_FORMAT_VERSION = '1'
PAPER_HEAD_PREFIX = 'head.'
"""The paper's DPTDepth / LinearDepth keep their head under `head.` (and the encoder beside it)."""
PAPER_LINEAR_NAMES = {'0.': 'norm.', '1.': 'conv.'}
"""The paper's linear probe is `Sequential(BatchNorm2d, Conv2d)`; ours names the two parts."""
PAPER_HEAD_KINDS = ('depth', 'linear')


@dataclass(frozen=True)
class HeadInfo:
    """What a head checkpoint says about itself.

    Attributes:
        head_kind: depth, points or linear.
        size: Encoder size name the head was trained on.
        max_depth: Depth range in metres.
        encoder_sha256: sha256 of the encoder checkpoint used in training ('' if unknown).
    """

    head_kind: str
    size: str
    max_depth: float
    encoder_sha256: str = ''


def save_head_checkpoint(
    head: nn.Module,
    path: str | os.PathLike[str],
    info: HeadInfo,
    *,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Write ``head``'s weights and ``info`` (plus string ``extra`` fields) to a safetensors file.

    The caller handles atomic replacement; this writes ``path`` directly.
    """
    from safetensors.torch import save_file

    header = {
        'format': HEAD_FORMAT,
        'format_version': HEAD_FORMAT_VERSION,
        'head_kind': info.head_kind,
        'size': info.size,
        'max_depth': repr(float(info.max_depth)),
        'encoder_sha256': info.encoder_sha256,
        **dict(extra or {}),
    }
    tensors = {key: value.detach().cpu().contiguous() for key, value in head.state_dict().items()}
    save_file(tensors, str(path), metadata=header)


def read_head_info(path: str | os.PathLike[str]) -> HeadInfo:
    """Read a head checkpoint's header without loading the tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError(f'head checkpoint {path} does not exist.')
    try:
        with safe_open(str(path), framework='pt') as handle:
            header = handle.metadata() or {}
    except Exception as err:  # truncated or foreign files fail in many ways; name the file
        raise ModelError(f'cannot read head checkpoint {path} as safetensors ({err}).') from err
    if header.get('format') != HEAD_FORMAT:
        raise ModelError(
            f'{path} is not a head checkpoint written by `pixio-ros train-head` (header: '
            f'{json.dumps(header)[:200]}).'
        )
    try:
        return HeadInfo(
            head_kind=header['head_kind'],
            size=header['size'],
            max_depth=float(header['max_depth']),
            encoder_sha256=header.get('encoder_sha256', ''),
        )
    except (KeyError, ValueError) as err:
        raise ModelError(f'{path} has an incomplete head header ({err}).') from err


def load_head_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, HeadInfo]:
    """Rebuild a trained head from its checkpoint; strict about keys and shapes."""
    from safetensors.torch import load_file

    info = read_head_info(path)
    head = build_head(get_size(info.size), info.head_kind, max_depth=info.max_depth)
    state_dict = load_file(str(path), device='cpu')
    _load_strict(head, state_dict, Path(path), f'{info.size} {info.head_kind} head')
    return head.eval(), info


def _load_strict(head: nn.Module, state_dict: dict[str, Tensor], path: Path, what: str) -> None:
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ModelError(
            f'{path} does not match a {what}: missing {missing[:5]}, unexpected '
            f'{unexpected[:5]}, wrong shapes {wrong[:5]}.'
        )
    head.load_state_dict(state_dict)


def load_paper_head(
    path: str | os.PathLike[str], *, size: str, head_kind: str, max_depth: float
) -> nn.Module:
    """A head trained with the paper's evaluation code (its DPTDepth or LinearDepth state dict).

    The paper's checkpoints hold ``encoder.*`` and ``head.*``; only the head is taken (the
    encoder comes from ``--encoder``). Its heads end in a sigmoid; ``max_depth`` is the range
    they were trained for (NYUv2 10 m, KITTI 80 m).
    """
    path = Path(path)
    if head_kind not in PAPER_HEAD_KINDS:
        raise ModelError(
            f'the paper trains {" and ".join(PAPER_HEAD_KINDS)} heads, not {head_kind!r}; '
            'pass --head-kind depth or linear with a paper checkpoint.'
        )
    try:
        loaded = load_torch_weights(path)
    except ModelError:
        raise
    except Exception as err:  # truncated or foreign files fail in many ways; name the file
        raise ModelError(f'cannot read head checkpoint {path} ({err}).') from err
    if isinstance(loaded, dict) and isinstance(loaded.get('model'), dict):
        loaded = loaded['model']
    if not isinstance(loaded, dict):
        raise ModelError(f'{path} does not hold a state dict (found {type(loaded).__name__}).')
    state_dict = {
        key[len(PAPER_HEAD_PREFIX) :]: value
        for key, value in loaded.items()
        if key.startswith(PAPER_HEAD_PREFIX)
    }
    if head_kind == 'linear':
        state_dict = {
            next(
                (
                    new + k[len(old) :]
                    for old, new in PAPER_LINEAR_NAMES.items()
                    if k.startswith(old)
                ),
                k,
            ): v
            for k, v in state_dict.items()
        }
    head = build_head(get_size(size), head_kind, max_depth=max_depth)
    _load_strict(head, state_dict, path, f'paper {size} {head_kind} head')
    return head.eval()
