"""The one table of Pixio model sizes and the constants every size shares."""

from __future__ import annotations

from dataclasses import dataclass

from pixio_ros.model.errors import ModelError

PATCH_SIZE = 16
"""Pixels per patch side; every input side must be a multiple of it."""
NUM_CLASS_TOKENS = 8
"""Pixio prepends eight class tokens to the patch tokens."""
PRETRAIN_GRID = 16
"""Side of the patch grid the position embedding was trained at (256 px / 16)."""
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DPT_STAGES = 4
"""The DPT head reads four encoder blocks."""


@dataclass(frozen=True)
class ModelSize:
    """Encoder dimensions and the DPT head's channel widths for one size.

    Attributes:
        name: Size name as used on the command line and in artifact metadata.
        embed_dim: Token width D.
        depth: Number of transformer blocks.
        num_heads: Attention heads per block.
        dpt_features: Width of the DPT fusion path.
        dpt_out_channels: Widths of the four 1x1 projections, shallow to deep.
    """

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    dpt_features: int = 256
    dpt_out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)

    @property
    def dpt_block_indices(self) -> list[int]:
        """Blocks feeding the DPT head, evenly spread and ending at the last (vitb16: 2,5,8,11)."""
        return [self.depth // DPT_STAGES * (stage + 1) - 1 for stage in range(DPT_STAGES)]

    @property
    def last_block_index(self) -> int:
        """Index of the final block (the linear head and the features read it)."""
        return self.depth - 1


SIZES: dict[str, ModelSize] = {
    size.name: size
    for size in (
        ModelSize('vitb16', 768, 12, 12),
        ModelSize('vitl16', 1024, 24, 16),
        ModelSize('vith16', 1280, 32, 16),
        ModelSize('vit1b16', 1536, 48, 24),
        ModelSize('vit5b16', 3072, 48, 32),
        # For tests and the CI demo only: random weights, runs in milliseconds on a CPU.
        ModelSize('tiny', 64, 4, 4, dpt_features=16, dpt_out_channels=(16, 32, 64, 64)),
    )
}


def get_size(name: str) -> ModelSize:
    """Look a size up by name, with an error listing the known ones."""
    try:
        return SIZES[name]
    except KeyError as err:
        raise ModelError(
            f'unknown model size {name!r}; expected one of {", ".join(SIZES)}.'
        ) from err


def size_for_dims(embed_dim: int, depth: int) -> ModelSize:
    """Find the size whose embedding width and depth match weights found in a checkpoint."""
    for size in SIZES.values():
        if size.embed_dim == embed_dim and size.depth == depth:
            return size
    raise ModelError(
        f'no Pixio size has embed_dim {embed_dim} and depth {depth}; known sizes: '
        + ', '.join(f'{s.name} ({s.embed_dim}/{s.depth})' for s in SIZES.values())
        + '.'
    )
