"""Frozen-encoder feature cache: head inputs computed once per training frame.

Because the encoder is frozen, its output for a frame never changes; caching it turns every
later step into a head-only step. Crops cannot be cached, so cached training uses whole frames
and applies horizontal flips to the cached maps and the targets instead of the image.
The cache lives in memory, and with `--cache-dir` also on disk for later runs.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from pixio_ros.distributed import World, agreed, all_gather, broadcast_from_main, shard
from pixio_ros.files import write_atomically
from pixio_ros.model import PixioNet
from pixio_ros.model.sizes import PATCH_SIZE
from pixio_ros.training.augment import Example, make_example
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.precision import amp_context
from pixio_ros.training.samples import RGBDSample

LOGGER = logging.getLogger(__name__)
FLOAT32_BYTES = 4
BYTES_PER_GB = 1e9
CACHE_SUFFIX = '.safetensors'


class FeatureCache:
    """Head inputs of every training example, computed once (no crops; flips applied later).

    Attributes:
        maps: Per example, the (2D, h, w) float32 map of every block the head reads (CPU).
        depth: Per example, (1, H, W) ground truth.
        rays: Per example, (2, H, W) ground-truth rays.
        encoded: How many examples this process ran through the encoder.
        reused: How many came from ``cache_dir`` (a run before this one, any process count).
    """

    def __init__(self, maps: list[list[Tensor]], examples: Sequence[Example]):
        self.maps = maps
        self.depth = [example.depth for example in examples]
        self.rays = [example.rays for example in examples]
        self.encoded = 0
        self.reused = 0


def encode(net: PixioNet, image: Tensor, device: torch.device, amp: str) -> list[Tensor]:
    """The head's input maps of one (H, W, 3) uint8 image, float32 on the CPU."""
    with torch.no_grad(), amp_context(amp, device):
        maps = net.head_inputs(image[None].to(device))
    return [m[0].float().cpu() for m in maps]


def cache_bytes(net: PixioNet, count: int, input_size: tuple[int, int]) -> int:
    """Memory a feature cache of ``count`` examples needs: maps + depth + rays, float32."""
    height, width = input_size
    grid = (height // PATCH_SIZE) * (width // PATCH_SIZE)
    channels = 2 * net.encoder.embed_dim * len(net.head_positions)
    return count * FLOAT32_BYTES * (channels * grid + 3 * height * width)


def frame_key(example: Example, encoder_key: str) -> str:
    """File name (without suffix) of one frame's maps in a cache directory.

    It hashes what the maps depend on: the encoder and its settings (``encoder_key``) and the
    frame's pixels at the input size, so any run, on any number of processes, finds them.
    """
    digest = hashlib.sha256(encoder_key.encode())
    digest.update(str(tuple(example.image.shape)).encode())
    digest.update(example.image.numpy().tobytes())
    return digest.hexdigest()


def _read_maps(path: Path, stages: int) -> list[Tensor]:
    """One frame's maps from the cache directory.

    Raises:
        TrainingError: The file is missing, unreadable or holds other maps.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        return [tensors[f'map{stage}'] for stage in range(stages)]
    except (OSError, SafetensorError, KeyError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise TrainingError(
            f'cached features {path} cannot be read ({reason}); give --cache-dir a directory '
            'every rank can read, and delete a damaged file (it is encoded again).'
        ) from err


def _probe_name(token: str, rank: int) -> str:
    return f'.rank{rank}-{token}.probe'


def check_shared(cache_dir: Path, world: World) -> None:
    """Refuse a cache directory the ranks do not share, before any frame is encoded into it.

    Each rank reads the files the others write there, so every rank must see the same
    directory (a shared filesystem across nodes). Each rank leaves an empty probe file and
    looks for the others'; the probes are removed again.

    Raises:
        TrainingError: A rank cannot write the directory or does not see another's probe.
    """
    if not world.distributed:
        return
    token = broadcast_from_main(secrets.token_hex(8), world, 'naming the cache probes')
    probe = cache_dir / _probe_name(token, world.rank)
    try:
        with agreed(world, 'writing into the feature cache directory'):
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                probe.write_bytes(b'')
            except OSError as err:
                raise TrainingError(
                    f'--cache-dir {cache_dir} cannot be written ({err.strerror or err}); give '
                    '--cache-dir a directory every rank can write.'
                ) from err
        with agreed(world, 'checking the feature cache directory'):
            unseen = [
                rank
                for rank in range(world.size)
                if not (cache_dir / _probe_name(token, rank)).is_file()
            ]
            if unseen:
                ranks = ', '.join(str(rank) for rank in unseen)
                raise TrainingError(
                    f'--cache-dir {cache_dir} is not shared between the ranks: it lacks what '
                    f'rank {ranks} wrote there (a directory local to each node?); give '
                    '--cache-dir a directory every rank can read (a shared filesystem), or '
                    'leave it out (the ranks then exchange the features in memory).'
                )
    finally:
        probe.unlink(missing_ok=True)


def _write_maps(path: Path, maps: list[Tensor]) -> None:
    from safetensors.torch import save_file

    tensors = {f'map{stage}': m.contiguous() for stage, m in enumerate(maps)}
    write_atomically(path, lambda temp: save_file(tensors, str(temp)))


def build_feature_cache(
    net: PixioNet,
    samples: Sequence[RGBDSample],
    input_size: tuple[int, int],
    device: torch.device,
    *,
    amp: str,
    limit_gb: float,
    world: World | None = None,
    cache_dir: Path | None = None,
    encoder_key: str = '',
) -> FeatureCache:
    """Check the cache's memory against ``limit_gb``, then encode every frame once.

    On N processes each rank encodes every N-th frame (`pixio_ros.distributed.shard`) and the
    ranks exchange their maps, so each frame is encoded once per run. With ``cache_dir`` the
    maps are files (one per frame, named by `frame_key`, written by the rank that encoded
    them): frames found there are not encoded again, by a later run with any number of
    processes. Every rank reads the others' files, so the directory must be one that every
    rank sees (`check_shared`, before any encoding).

    Raises:
        TrainingError: The cache would exceed ``limit_gb``, or ``cache_dir`` is not shared
            between the ranks (both checked before any encoding); a cached file is unreadable.
    """
    world = World() if world is None else world
    needed = cache_bytes(net, len(samples), input_size)
    if world.is_main:
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
    with agreed(world, 'preparing the feature cache'):
        examples = [
            make_example(s, input_size, crop=False, flip=False, generator=unused) for s in samples
        ]
    stages = len(net.head_positions)
    paths: list[Path | None] = [None] * len(examples)
    if cache_dir is not None:
        check_shared(cache_dir, world)
        paths = [cache_dir / f'{frame_key(e, encoder_key)}{CACHE_SUFFIX}' for e in examples]
    mine: dict[int, list[Tensor]] = {}
    encoded = 0
    with agreed(world, 'encoding the feature cache'):
        for index in shard(range(len(examples)), world):
            path = paths[index]
            if path is not None and path.is_file():
                continue
            mine[index] = encode(net, examples[index].image, device, amp)
            encoded += 1
            if path is not None:
                _write_maps(path, mine[index])
    maps: dict[int, list[Tensor]] = {}
    if cache_dir is None:
        for part in all_gather(mine, world, 'exchanging cached features'):
            maps.update(part)
    else:
        all_gather(None, world, 'writing cached features')  # every rank's files are in place
        with agreed(world, 'reading the feature cache'):
            maps = {
                i: mine[i] if i in mine else _read_maps(path, stages)
                for i, path in enumerate(paths)
                if path is not None
            }
    cache = FeatureCache([maps[i] for i in range(len(examples))], examples)
    cache.encoded = sum(all_gather(encoded, world, 'counting cached features'))
    cache.reused = len(examples) - cache.encoded
    if world.is_main and cache_dir is not None:
        LOGGER.info(
            'feature cache %s: %d frames encoded, %d reused', cache_dir, cache.encoded, cache.reused
        )
    return cache
