"""The Pixio encoder, its depth / point-map heads, checkpoint loading and the compiled artifact.

Names are imported on first use, so that `pixio_ros.model.artifact_format` (what the Engine and
the node load artifacts with) never drags in the model code: importing it runs this file, and
this file imports nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixio_ros.files import file_sha256
    from pixio_ros.model.artifact import export_artifact
    from pixio_ros.model.artifact_format import (
        METADATA_FILE,
        ArtifactError,
        ArtifactMetadata,
        LoadedArtifact,
        load_artifact,
        read_metadata,
    )
    from pixio_ros.model.checkpoints import (
        checkpoint_sha256,
        hf_to_pixio_state_dict,
        load_encoder_checkpoint,
    )
    from pixio_ros.model.encoder import PixioEncoder
    from pixio_ros.model.errors import ModelError
    from pixio_ros.model.head_checkpoints import (
        HeadInfo,
        load_head_checkpoint,
        load_paper_head,
        read_head_info,
        save_head_checkpoint,
    )
    from pixio_ros.model.heads import (
        DPTDepthHead,
        DPTHead,
        LinearDepthHead,
        NoHead,
        PointMapHead,
    )
    from pixio_ros.model.network import HEAD_KINDS, PixioNet, build_head, build_network
    from pixio_ros.model.sizes import SIZES, ModelSize, get_size

_HOMES: dict[str, str] = {
    'HEAD_KINDS': 'pixio_ros.model.network',
    'METADATA_FILE': 'pixio_ros.model.artifact_format',
    'SIZES': 'pixio_ros.model.sizes',
    'ArtifactError': 'pixio_ros.model.artifact_format',
    'ArtifactMetadata': 'pixio_ros.model.artifact_format',
    'DPTDepthHead': 'pixio_ros.model.heads',
    'DPTHead': 'pixio_ros.model.heads',
    'HeadInfo': 'pixio_ros.model.head_checkpoints',
    'LinearDepthHead': 'pixio_ros.model.heads',
    'LoadedArtifact': 'pixio_ros.model.artifact_format',
    'ModelError': 'pixio_ros.model.errors',
    'ModelSize': 'pixio_ros.model.sizes',
    'NoHead': 'pixio_ros.model.heads',
    'PixioEncoder': 'pixio_ros.model.encoder',
    'PixioNet': 'pixio_ros.model.network',
    'PointMapHead': 'pixio_ros.model.heads',
    'build_head': 'pixio_ros.model.network',
    'build_network': 'pixio_ros.model.network',
    'checkpoint_sha256': 'pixio_ros.model.checkpoints',
    'export_artifact': 'pixio_ros.model.artifact',
    'file_sha256': 'pixio_ros.files',
    'get_size': 'pixio_ros.model.sizes',
    'hf_to_pixio_state_dict': 'pixio_ros.model.checkpoints',
    'load_artifact': 'pixio_ros.model.artifact_format',
    'load_encoder_checkpoint': 'pixio_ros.model.checkpoints',
    'load_head_checkpoint': 'pixio_ros.model.head_checkpoints',
    'load_paper_head': 'pixio_ros.model.head_checkpoints',
    'read_head_info': 'pixio_ros.model.head_checkpoints',
    'read_metadata': 'pixio_ros.model.artifact_format',
    'save_head_checkpoint': 'pixio_ros.model.head_checkpoints',
}
"""Public name -> the module that defines it."""

__all__ = [
    'HEAD_KINDS',
    'METADATA_FILE',
    'SIZES',
    'ArtifactError',
    'ArtifactMetadata',
    'DPTDepthHead',
    'DPTHead',
    'HeadInfo',
    'LinearDepthHead',
    'LoadedArtifact',
    'ModelError',
    'ModelSize',
    'NoHead',
    'PixioEncoder',
    'PixioNet',
    'PointMapHead',
    'build_head',
    'build_network',
    'checkpoint_sha256',
    'export_artifact',
    'file_sha256',
    'get_size',
    'hf_to_pixio_state_dict',
    'load_artifact',
    'load_encoder_checkpoint',
    'load_head_checkpoint',
    'load_paper_head',
    'read_head_info',
    'read_metadata',
    'save_head_checkpoint',
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (then it is a plain attribute)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
