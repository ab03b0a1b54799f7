"""Frozen-encoder feature cache: head inputs computed once per training frame.

Because the encoder is frozen, its output for a frame never changes; caching it turns every
later step into a head-only step. Crops cannot be cached, so cached training uses whole frames
and applies horizontal flips to the cached maps and the targets instead of the image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

from pixio_ros.model import PixioNet
from pixio_ros.model.sizes import PATCH_SIZE
from pixio_ros.training.augment import Example, make_example
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.precision import amp_context
from pixio_ros.training.samples import RGBDSample

LOGGER = logging.getLogger(__name__)
FLOAT32_BYTES = 4
BYTES_PER_GB = 1e9


class FeatureCache:
    """Head inputs of every training example, computed once (no crops; flips applied later).

    Args:
        net: The network whose frozen encoder produces the maps.
        examples: Prepared (uncropped, unflipped) examples.
        device: Where the encoder runs; the cache itself lives on the CPU.
        amp: `--amp` setting the encoder runs under ('none', 'bf16', 'fp16'); maps are stored
            as float32 either way.
    """

    def __init__(
        self,
        net: PixioNet,
        examples: Sequence[Example],
        device: torch.device,
        amp: str = 'none',
    ):
        self.maps: list[list[Tensor]] = []
        self.depth = [example.depth for example in examples]
        self.rays = [example.rays for example in examples]
        with torch.no_grad(), amp_context(amp, device):
            for example in examples:
                maps = net.head_inputs(example.image[None].to(device))
                self.maps.append([m[0].float().cpu() for m in maps])


def cache_bytes(net: PixioNet, count: int, input_size: tuple[int, int]) -> int:
    """Memory a feature cache of ``count`` examples needs: maps + depth + rays, float32."""
    height, width = input_size
    grid = (height // PATCH_SIZE) * (width // PATCH_SIZE)
    channels = 2 * net.encoder.embed_dim * len(net.head_positions)
    return count * FLOAT32_BYTES * (channels * grid + 3 * height * width)


def build_feature_cache(
    net: PixioNet,
    samples: Sequence[RGBDSample],
    input_size: tuple[int, int],
    device: torch.device,
    *,
    amp: str,
    limit_gb: float,
) -> FeatureCache:
    """Check the cache's memory against ``limit_gb``, then encode every frame once.

    Raises:
        TrainingError: The cache would exceed ``limit_gb`` (checked before any encoding).
    """
    needed = cache_bytes(net, len(samples), input_size)
    LOGGER.info(
        'feature cache: %d frames, %.2f GB (limit %g GB)',
        len(samples),
        needed / BYTES_PER_GB,
        limit_gb,
    )
    if needed > limit_gb * BYTES_PER_GB:
        raise TrainingError(
            f'--cache-features needs {needed / BYTES_PER_GB:.2f} GB for {len(samples)} frames, '
            f'above --cache-limit-gb {limit_gb:g}; raise the limit, use fewer frames or a '
            'smaller --input-size, or train without the cache.'
        )
    unused = torch.Generator()
    examples = [
        make_example(s, input_size, crop=False, flip=False, generator=unused) for s in samples
    ]
    return FeatureCache(net, examples, device, amp)
