"""The Pixio encoder, its depth / point-map heads, checkpoint loading and the compiled artifact."""

from pixio_ros.files import file_sha256
from pixio_ros.model.artifact import (
    METADATA_FILE,
    export_artifact,
    load_artifact,
    read_artifact_metadata,
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

__all__ = [
    'HEAD_KINDS',
    'METADATA_FILE',
    'SIZES',
    'DPTDepthHead',
    'DPTHead',
    'HeadInfo',
    'LinearDepthHead',
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
    'read_artifact_metadata',
    'read_head_info',
    'save_head_checkpoint',
]
