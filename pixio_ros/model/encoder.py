"""PixioEncoder: the Pixio ViT with the released parameter names, at any size divisible by 16."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor, nn

from pixio_ros.model.sizes import (
    LAYER_NORM_EPS,
    MLP_RATIO,
    NUM_CLASS_TOKENS,
    PATCH_SIZE,
    PRETRAIN_GRID,
    ModelSize,
)


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: (B, 3, H, W) -> (B, H/p * W/p, D), row-major patches."""

    def __init__(self, embed_dim: int, patch_size: int = PATCH_SIZE, in_chans: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, H/16 * W/16, D)."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection (with bias) and fused SDPA."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """Two-layer GELU MLP, hidden width MLP_RATIO * D."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (no LayerScale, no dropout: Pixio has neither)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, dim * MLP_RATIO)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, N, D)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PixioEncoder(nn.Module):
    """The Pixio ViT encoder (facebookresearch/pixio), parameter names as released.

    Tokens are laid out as 8 class tokens followed by the H/16 x W/16 patch tokens in row-major
    order. The 16x16 patch part of ``pos_embed`` is resized bicubically to the input's grid on
    every call; at the trained 256x256 grid that resize is the identity, so there is no branch on
    the input shape and one TorchScript / torch.export graph serves every input size.

    Args:
        size: Dimensions from the sizes table.
    """

    def __init__(self, size: ModelSize):
        super().__init__()
        self.size_name = size.name
        self.embed_dim = size.embed_dim
        self.patch_size = PATCH_SIZE
        self.num_class_tokens = NUM_CLASS_TOKENS
        self.pretrain_grid = PRETRAIN_GRID
        self.patch_embed = PatchEmbed(size.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, NUM_CLASS_TOKENS, size.embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, PRETRAIN_GRID * PRETRAIN_GRID + NUM_CLASS_TOKENS, size.embed_dim)
        )
        self.blocks = nn.ModuleList(
            [Block(size.embed_dim, size.num_heads) for _ in range(size.depth)]
        )
        self.norm = nn.LayerNorm(size.embed_dim, eps=LAYER_NORM_EPS)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random init (truncated normal tokens, Xavier linears) for random-init artifacts."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def depth(self) -> int:
        """Number of transformer blocks."""
        return len(self.blocks)

    def _position_embedding(self, grid_h: int, grid_w: int) -> Tensor:
        """Position embedding for a grid_h x grid_w patch grid: (1, 8 + grid_h * grid_w, D).

        The resize runs in float32 whatever the model dtype, as the released code does.
        """
        dim = self.pos_embed.shape[2]
        cls_pos = self.pos_embed[:, : self.num_class_tokens]
        patch_pos = self.pos_embed[:, self.num_class_tokens :]
        grid = self.pretrain_grid
        patch_pos = patch_pos.reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(
            patch_pos.float(), size=(grid_h, grid_w), mode='bicubic', align_corners=False
        ).to(self.pos_embed.dtype)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
        return torch.cat((cls_pos, patch_pos), dim=1)

    def embed(self, x: Tensor) -> Tensor:
        """Normalised image (B, 3, H, W) -> input tokens (B, 8 + H/16 * W/16, D).

        Raises:
            ValueError: If H or W is not a multiple of the patch size.
        """
        height = x.shape[2]
        width = x.shape[3]
        if height % self.patch_size != 0 or width % self.patch_size != 0:
            raise ValueError(
                f'input size {height}x{width} is not divisible by the patch size '
                f'{self.patch_size}; resize or crop the image to multiples of {self.patch_size}.'
            )
        patches = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat((cls, patches), dim=1)
        grid_h = height // self.patch_size
        grid_w = width // self.patch_size
        return tokens + self._position_embedding(grid_h, grid_w)

    def forward_intermediates(self, x: Tensor, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        """Run the blocks and return the final-normed outputs of the blocks in ``indices``.

        Only the requested blocks are normalised, and blocks after the last requested one are
        skipped.

        Args:
            x: Normalised image (B, 3, H, W), H and W multiples of 16.
            indices: Block indices, ascending, each in [0, depth).

        Returns:
            One (patch_tokens (B, H/16 * W/16, D), class_tokens (B, 8, D)) pair per index, in
            ascending block order, both after the encoder's final LayerNorm.
        """
        tokens = self.embed(x)
        last = max(indices)
        outputs: list[tuple[Tensor, Tensor]] = []
        for index, block in enumerate(self.blocks):
            if index <= last:
                tokens = block(tokens)
                if index in indices:
                    normed = self.norm(tokens)
                    outputs.append(
                        (normed[:, self.num_class_tokens :], normed[:, : self.num_class_tokens])
                    )
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """Normalised image (B, 3, H, W) -> final normed tokens (B, 8 + H/16 * W/16, D)."""
        tokens = self.embed(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)
