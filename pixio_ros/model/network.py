"""PixioNet: encoder + head behind the artifact contract (uint8 NHWC in, dict of maps out)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from pixio_ros.model.encoder import PixioEncoder
from pixio_ros.model.errors import ModelError
from pixio_ros.model.heads import (
    DEFAULT_MAX_DEPTH_M,
    DPTDepthHead,
    HeadSpec,
    LinearDepthHead,
    NoHead,
    PointMapHead,
    tokens_to_map,
)
from pixio_ros.model.sizes import IMAGENET_MEAN, IMAGENET_STD, ModelSize, get_size

HEAD_KINDS = ('depth', 'points', 'linear', 'none')
"""Head kinds `build_network` and `pixio-ros export --head-kind` accept."""
HEAD_OUTPUTS: dict[str, tuple[str, ...]] = {
    'depth': ('depth',),
    'points': ('depth', 'points', 'confidence'),
    'linear': ('depth',),
    'none': (),
}
"""Outputs each head kind adds to the encoder's `features` and `embedding`."""
ENCODER_OUTPUTS = ('features', 'embedding')
UINT8_MAX = 255.0


class PixioNet(nn.Module):
    """A Pixio encoder and one head; the module the artifact compiles.

    Input is what a camera driver delivers (uint8 RGB, NHWC); normalisation with ImageNet
    mean/std and the permute happen here so every consumer gets them right. All outputs are
    float32 whatever the model dtype.

    Args:
        encoder: The ViT.
        head: A head from `pixio_ros.model.heads` (`NoHead` for features only).
    """

    # For mypy (nn.Module's __getattr__ types buffers as Tensor | Module); TorchScript reads the
    # evaluated __annotations__ below instead.
    mean: Tensor
    std: Tensor

    # Python-side conveniences; TorchScript need not compile them.
    __jit_unused_properties__ = ['output_keys', 'max_depth']
    # Evaluated types for TorchScript, which cannot infer the element type of an empty list
    # (feature-only networks) and does not resolve postponed (string) annotations here.
    __annotations__ = {'requested_blocks': list[int], 'head_positions': list[int]}

    def __init__(self, encoder: PixioEncoder, head: nn.Module):
        super().__init__()
        spec = cast(HeadSpec, head)
        depth = encoder.depth
        for index in spec.block_indices:
            if not 0 <= index < depth:
                raise ModelError(
                    f'head {type(head).__name__} reads block {index}, but the encoder has only '
                    f'{depth} blocks; build the head for size {encoder.size_name!r}.'
                )
        expected = 2 * encoder.embed_dim
        if spec.in_channels not in (0, expected):
            raise ModelError(
                f'head {type(head).__name__} takes {spec.in_channels} channels, but a '
                f'{encoder.size_name} encoder gives {expected}; build the head for that size.'
            )
        self.encoder = encoder
        self.head = head
        self.head_kind: str = spec.kind
        self.uint8_max = UINT8_MAX
        self.requested_blocks = sorted(set(spec.block_indices) | {depth - 1})
        self.head_positions = [self.requested_blocks.index(i) for i in spec.block_indices]
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def output_keys(self) -> list[str]:
        """Keys of the dict `forward` returns, head outputs first."""
        return [*HEAD_OUTPUTS[self.head_kind], *ENCODER_OUTPUTS]

    @property
    def max_depth(self) -> float | None:
        """The head's depth range in metres, or None for a feature-only network."""
        return getattr(self.head, 'max_depth', None)

    def normalise(self, image: Tensor) -> Tensor:
        """uint8 (B, H, W, 3) RGB -> ImageNet-normalised (B, 3, H, W) in the model's dtype."""
        if image.dim() != 4 or image.shape[3] != 3:
            raise ValueError(
                f'expected a uint8 RGB batch [B, H, W, 3], got shape {image.shape}; '
                'add a batch dimension and drop any alpha channel.'
            )
        x = image.permute(0, 3, 1, 2).float() / self.uint8_max
        x = (x - self.mean.float()) / self.std.float()
        return x.to(self.encoder.pos_embed.dtype)

    @torch.jit.unused
    def head_inputs(self, image: Tensor) -> list[Tensor]:
        """uint8 (B, H, W, 3) RGB -> the (B, 2D, H/16, W/16) maps the head reads.

        For frozen-encoder training, which runs (or caches) this part without gradients.
        """
        x = self.normalise(image)
        grid_h = image.shape[1] // self.encoder.patch_size
        grid_w = image.shape[2] // self.encoder.patch_size
        blocks = self.encoder.forward_intermediates(x, self.requested_blocks)
        return [
            tokens_to_map(*blocks[position], grid_h, grid_w) for position in self.head_positions
        ]

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """uint8 (B, H, W, 3) RGB, H and W multiples of 16 -> dict of float32 outputs.

        Returns:
            The head's outputs (`depth` (B,1,H,W) m; `points` (B,3,H,W) m and `confidence`
            (B,1,H,W) for the point-map head), plus `features` (B, D, H/16, W/16), the normed
            last-block patch tokens, and `embedding` (B, D), the mean of its 8 normed class tokens.
        """
        height = image.shape[1]
        width = image.shape[2]
        x = self.normalise(image)
        grid_h = height // self.encoder.patch_size
        grid_w = width // self.encoder.patch_size
        blocks = self.encoder.forward_intermediates(x, self.requested_blocks)
        maps: list[Tensor] = []
        for position in self.head_positions:
            patch_tokens, class_tokens = blocks[position]
            maps.append(tokens_to_map(patch_tokens, class_tokens, grid_h, grid_w))
        outputs = self.head(maps, height, width)
        last_patch, last_cls = blocks[len(blocks) - 1]
        batch = last_patch.shape[0]
        outputs['features'] = last_patch.transpose(1, 2).reshape(batch, -1, grid_h, grid_w)
        outputs['embedding'] = last_cls.mean(dim=1)
        result: dict[str, Tensor] = {}
        for key, value in outputs.items():
            result[key] = value.float()
        return result


def build_head(
    size: ModelSize, head_kind: str, *, max_depth: float = DEFAULT_MAX_DEPTH_M
) -> nn.Module:
    """A randomly initialised head of ``head_kind`` for an encoder of ``size``."""
    if head_kind not in HEAD_KINDS:
        raise ModelError(
            f'unknown head kind {head_kind!r}; expected one of {", ".join(HEAD_KINDS)}.'
        )
    if head_kind != 'none' and not max_depth > 0:
        raise ModelError(f'max_depth must be a positive number of metres, got {max_depth}.')
    in_channels = 2 * size.embed_dim
    if head_kind == 'linear':
        return LinearDepthHead(in_channels, block_index=size.last_block_index, max_depth=max_depth)
    if head_kind == 'none':
        return NoHead()
    head_class = DPTDepthHead if head_kind == 'depth' else PointMapHead
    return head_class(
        in_channels,
        features=size.dpt_features,
        out_channels=size.dpt_out_channels,
        block_indices=size.dpt_block_indices,
        max_depth=max_depth,
    )


def build_network(size: str, head_kind: str, *, max_depth: float = DEFAULT_MAX_DEPTH_M) -> PixioNet:
    """A randomly initialised PixioNet of a size from the table and a head kind.

    Args:
        size: A name from `pixio_ros.model.sizes.SIZES` (vitb16 ... vit5b16, tiny).
        head_kind: One of depth, points, linear, none.
        max_depth: Depth range of the head in metres.

    Returns:
        The network in eval mode.
    """
    model_size = get_size(size)
    net = PixioNet(PixioEncoder(model_size), build_head(model_size, head_kind, max_depth=max_depth))
    return net.eval()
