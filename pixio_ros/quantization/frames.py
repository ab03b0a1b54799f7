"""Calibration and held-out frames: picked evenly from recordings, decoded as the node does.

A frame goes through the same code as in the node and in `pixio-ros eval`: the bag reader of
`pixio_ros.data`, `decode_color` (Image or CompressedImage) and the Engine's own resize to the
artifact's input size (`pixio_ros.runtime.engine.model_input`), so the activation ranges are
those of the images the model will see. Frames are picked evenly over the whole recording (all
bags together, in log order) rather than the first N, so a calibration set spans the scenes of a
long drive; by default the held-out frames of the gate are picked evenly among the frames
calibration did not use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import COLOR_TYPES, ImageCodecError, decode_color
from pixio_ros.data.errors import DataError
from pixio_ros.quantization.errors import QuantizationError
from pixio_ros.runtime.engine import model_input

__all__ = [
    'BagFrames',
    'DatasetFrames',
    'FrameSource',
    'Frames',
    'evenly',
    'frames_sha256',
    'read_frames',
]


class FrameSource(Protocol):
    """Colour frames addressed by position: one bag's image topic, or a dataset."""

    name: str

    def count(self) -> int:
        """Frames it holds."""
        ...

    def rgb(self, indices: Sequence[int]) -> Iterator[np.ndarray | None]:
        """(H, W, 3) uint8 RGB of each of ``indices`` (ascending), None for one that fails."""
        ...


class BagFrames:
    """The colour images of one topic of one bag, in log order.

    Raises:
        QuantizationError: An unreadable bag, or a bag without ``topic`` (naming its topics).
    """

    def __init__(self, path: Path, topic: str):
        self.path = Path(path)
        self.topic = topic
        self.name = str(path)
        try:
            with BagReader(self.path) as bag:
                bag.require_topic(topic, COLOR_TYPES, option='--image-topic')
                self._count = bag.message_count(topic)
        except DataError as err:
            raise QuantizationError(str(err)) from err

    def count(self) -> int:
        """Messages recorded on the topic."""
        return self._count

    def rgb(self, indices: Sequence[int]) -> Iterator[np.ndarray | None]:
        """Stream the topic once, decoding only the messages at ``indices``."""
        wanted = iter(indices)
        target = next(wanted, None)
        with BagReader(self.path) as bag:
            for position, message in enumerate(bag.stream([self.topic])):
                if target is None:
                    return
                if position != target:
                    continue
                try:
                    yield decode_color(message.msg)
                except (ImageCodecError, DataError):
                    yield None
                target = next(wanted, None)


class DatasetFrames:
    """The colour images of a public dataset's samples (`pixio_ros.data.open_dataset`)."""

    def __init__(self, name: str, path: Path, split: str | None = None):
        from pixio_ros.data.datasets import open_dataset

        try:
            self._dataset = open_dataset(name, Path(path), split=split)
        except DataError as err:
            raise QuantizationError(str(err)) from err
        self.name = f'{name}:{path}' + (f' ({split})' if split else '')

    def count(self) -> int:
        """Samples in the dataset (split)."""
        return len(self._dataset.samples)

    def rgb(self, indices: Sequence[int]) -> Iterator[np.ndarray | None]:
        """Each sample's image, decoded lazily; None where its file cannot be read."""
        for index in indices:
            try:
                yield self._dataset.samples[index].rgb
            except DataError:
                yield None


@dataclass
class Frames:
    """Model inputs picked from sources: uint8 ``(1, H, W, 3)`` at the artifact's input size.

    Attributes:
        inputs: The frames, in source order.
        sources: The names of the sources they came from.
        skipped: Picked frames that failed to decode (left out).
    """

    inputs: list[np.ndarray] = field(default_factory=list)
    sources: tuple[str, ...] = ()
    skipped: int = 0


def evenly(candidates: Sequence[int], count: int) -> list[int]:
    """``count`` items of ``candidates`` spread evenly from first to last (all if fewer)."""
    if count >= len(candidates):
        return list(candidates)
    if count <= 0:
        return []
    positions = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[int(p)] for p in positions]


def read_frames(
    sources: Sequence[FrameSource], picks: Sequence[int], input_size: tuple[int, int]
) -> Frames:
    """The model inputs at global positions ``picks`` (over ``sources`` end to end)."""
    frames = Frames(sources=tuple(source.name for source in sources))
    start = 0
    chosen = sorted(set(picks))
    for source in sources:
        end = start + source.count()
        local = [index - start for index in chosen if start <= index < end]
        for rgb in source.rgb(local):
            if rgb is None:
                frames.skipped += 1
                continue
            resized = model_input(torch.from_numpy(np.array(rgb, dtype=np.uint8)), input_size)
            frames.inputs.append(resized.numpy())
        start = end
    return frames


def frames_sha256(inputs: Sequence[np.ndarray]) -> str:
    """sha256 of the frames' bytes in order (with their shape): the calibration's identity."""
    digest = hashlib.sha256()
    for frame in inputs:
        digest.update(repr(frame.shape).encode())
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def check_counts(
    sources: Sequence[FrameSource], needed: int, what: str, *, option: str
) -> Sequence[int]:
    """All global positions of ``sources``, after checking they hold ``needed`` frames.

    Raises:
        QuantizationError: Fewer frames than needed (naming the counts and the options).
    """
    total = sum(source.count() for source in sources)
    if total < needed:
        counts = ', '.join(f'{source.name} {source.count()}' for source in sources)
        raise QuantizationError(
            f'{what} needs {needed} frames and the recordings hold {total} ({counts}); record '
            f'more, add recordings, or lower {option}'
        )
    return range(total)
