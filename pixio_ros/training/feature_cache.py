"""Frozen-encoder feature cache: head inputs computed once per training frame.

Because the encoder is frozen, its output for a frame never changes; caching it turns every
later step into a head-only step. Crops cannot be cached, so cached training uses whole frames
and applies horizontal flips to the cached maps and the targets instead of the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pixio_ros.model import PixioNet
from pixio_ros.model.sizes import PATCH_SIZE
from pixio_ros.training.augment import Example

FLOAT32_BYTES = 4


class FeatureCache:
    """Head inputs of every training example, computed once (no crops; flips applied later).

    Args:
        net: The network whose frozen encoder produces the maps.
        examples: Prepared (uncropped, unflipped) examples.
        device: Where the encoder runs; the cache itself lives on the CPU.
    """

    def __init__(self, net: PixioNet, examples: Sequence[Example], device: torch.device):
        self.maps: list[list[Tensor]] = []
        self.depth = [example.depth for example in examples]
        self.rays = [example.rays for example in examples]
        with torch.no_grad():
            for example in examples:
                maps = net.head_inputs(example.image[None].to(device))
                self.maps.append([m[0].float().cpu() for m in maps])


def cache_bytes(net: PixioNet, count: int, input_size: tuple[int, int]) -> int:
    """Memory a feature cache of ``count`` examples needs: maps + depth + rays, float32."""
    height, width = input_size
    grid = (height // PATCH_SIZE) * (width // PATCH_SIZE)
    channels = 2 * net.encoder.embed_dim * len(net.head_positions)
    return count * FLOAT32_BYTES * (channels * grid + 3 * height * width)
