"""Engine: one compiled Pixio artifact on a device; uint8 RGB in, numpy depth/points/features out.

The artifact (TorchScript or torch.export, see DESIGN.md) carries its own normalisation and
metadata, so this class needs no model code: `pixio_ros.model.artifact_format` loads it by
content and checks its metadata; the Engine resizes the camera image to the artifact's input
size on the device, runs it and resizes the dense outputs back to the camera resolution when
asked.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual alias)

from pixio_ros.errors import PixioRosError
from pixio_ros.model.artifact_format import (
    DENSE_OUTPUTS,
    DTYPES,
    EXPORT_HINT,
    OUTPUT_NAMES,
    ArtifactMetadata,
    RandomInitWarning,
    load_artifact,
    random_init_message,
    random_init_parts,
)

__all__ = [
    'DENSE_OUTPUTS',
    'EXPORT_HINT',
    'OUTPUT_NAMES',
    'Engine',
    'EngineError',
    'Prediction',
    'RandomInitWarning',
]

UINT8_MAX = 255.0
MS_PER_S = 1000.0
IMAGE_DIMS = 2  # (H, W)


class EngineError(PixioRosError):
    """An artifact, device or input the engine cannot run; the message says how to fix it."""


@dataclass
class Prediction:
    """One frame's outputs as numpy arrays (None when not requested or not provided).

    Attributes:
        depth: (H, W) float32 z-depth, metres.
        points: (H, W, 3) float32 camera-frame points (x right, y down, z forward), metres.
        confidence: (H, W) float32, the point-map head's confidence.
        features: (h, w, C) float32 normed patch tokens, h = H_in / patch, w = W_in / patch.
        embedding: (C,) float32 mean of the normed class tokens.
        inference_ms: wall time of preprocessing, the forward pass and the copies back, ms.
    """

    depth: np.ndarray | None = None
    points: np.ndarray | None = None
    confidence: np.ndarray | None = None
    features: np.ndarray | None = None
    embedding: np.ndarray | None = None
    inference_ms: float = 0.0


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; checks that a requested CUDA device exists."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise EngineError(
            f"device {device!r} is not valid; use 'auto', 'cpu' or 'cuda[:N]'"
        ) from err
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise EngineError(
            f'device {device!r} requested but CUDA is not available in this torch build or '
            "machine; use device 'cpu' or 'auto'"
        )
    if resolved.type not in ('cpu', 'cuda'):
        raise EngineError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda[:N]'")
    return resolved


class Engine:
    """A Pixio artifact loaded on a device, warmed up and ready for `infer`.

    Args:
        artifact_path: File written by `pixio-ros export` (TorchScript or torch.export; the
            format is read from the content, so the name does not matter).
        device: 'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'.
        precision: 'fp32', 'fp16' or 'bf16'; half precisions cast the weights (CUDA mainly).
        warmup_runs: forward passes at start-up so the first frame is not slow.

    Attributes:
        metadata: The artifact's checked, typed metadata.
        sha256: The artifact file's sha256.
        input_size: (H, W) images are resized to before inference.
        outputs: Output names the artifact provides.

    Raises:
        ArtifactError: a missing, unreadable or invalid artifact (one line naming the fix).
        EngineError: unavailable device, unsupported precision, a failed warm-up.
    """

    def __init__(
        self,
        artifact_path: str | Path,
        *,
        device: str = 'auto',
        precision: str = 'fp32',
        warmup_runs: int = 1,
    ):
        path = Path(artifact_path).expanduser()
        dtype = next((value for name, value in DTYPES.items() if name == precision), None)
        if dtype is None:
            raise EngineError(
                f'precision {precision!r} is not supported; use one of {", ".join(DTYPES)}'
            )
        if warmup_runs < 0:
            raise EngineError(f'warmup_runs is {warmup_runs}; use 0 or more')
        self.path = path
        self.device = resolve_device(device)
        self.precision = precision
        artifact = load_artifact(path, device=self.device)
        self.metadata: ArtifactMetadata = artifact.metadata
        self.sha256: str = artifact.sha256
        self.input_size: tuple[int, int] = artifact.metadata.input_size
        self.outputs: tuple[str, ...] = artifact.metadata.outputs
        module = artifact.module
        if dtype != torch.float32:
            module = module.to(dtype)
        self._module = module
        self._pinned: torch.Tensor | None = None
        parts = random_init_parts(self.metadata)
        if parts:
            warnings.warn(
                f'{path.name} has {random_init_message(parts)}', RandomInitWarning, stacklevel=2
            )
        try:
            for _ in range(warmup_runs):
                self.infer(np.zeros((*self.input_size, 3), dtype=np.uint8))
        except EngineError as err:
            raise EngineError(
                f'{path} failed its warm-up on {self.device} with {precision}: {err}'
            ) from err

    def model_info(self) -> dict[str, Any]:
        """The metadata as a JSON-ready dict plus ``sha256`` (the node latches it on model_info)."""
        return {**self.metadata.as_dict(), 'sha256': self.sha256}

    @property
    def patch_size(self) -> int:
        """Pixels per patch side (features grid = input size / patch size)."""
        return self.metadata.patch_size

    def _to_device(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 numpy -> (H, W, 3) uint8 tensor on the device."""
        if not rgb.flags.c_contiguous or not rgb.flags.writeable:
            rgb = np.array(rgb, dtype=np.uint8, order='C')
        host = torch.from_numpy(rgb)
        if self.device.type != 'cuda':
            return host
        if self._pinned is None or self._pinned.shape != host.shape:
            self._pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
        self._pinned.copy_(host)
        return self._pinned.to(self.device, non_blocking=True)

    def _model_input(self, image: torch.Tensor) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, H_in, W_in, 3) uint8, resized (antialiased) on the device."""
        if tuple(image.shape[:2]) == self.input_size:
            return image.unsqueeze(0)
        nchw = image.permute(2, 0, 1).unsqueeze(0).float()
        resized = F.interpolate(
            nchw, size=self.input_size, mode='bilinear', align_corners=False, antialias=True
        )
        as_uint8 = resized.round_().clamp_(0, UINT8_MAX).to(torch.uint8)
        return as_uint8.permute(0, 2, 3, 1).contiguous()

    def infer(
        self,
        rgb: np.ndarray,
        *,
        outputs: Collection[str] | None = None,
        output_size: tuple[int, int] | None = None,
    ) -> Prediction:
        """Run the artifact on one image.

        Args:
            rgb: (H, W, 3) uint8 RGB of any size (views with strides are fine).
            outputs: names from OUTPUT_NAMES to return; None = all the artifact provides.
                `depth` is derived from `points` when the artifact has only the latter.
            output_size: (H, W) for depth / points / confidence; None = the input size.

        Returns:
            A Prediction; fields not requested or not provided by the artifact are None.

        Raises:
            EngineError: wrong dtype/shape/size, unknown output name, device out of memory.
        """
        wanted = self._wanted(outputs)
        start = time.perf_counter()
        if (
            not isinstance(rgb, np.ndarray)
            or rgb.dtype != np.uint8
            or rgb.ndim != 3
            or rgb.shape[2] != 3
            or rgb.shape[0] == 0
            or rgb.shape[1] == 0
        ):
            described = (
                f'{rgb.dtype} {rgb.shape}' if isinstance(rgb, np.ndarray) else type(rgb).__name__
            )
            raise EngineError(
                f'input image is {described}; expected a non-empty (H, W, 3) uint8 RGB array '
                '(decode it with pixio_ros.runtime.image_codec)'
            )
        if output_size is not None and (len(output_size) != IMAGE_DIMS or min(output_size) <= 0):
            raise EngineError(f'output_size {output_size} must be (H, W) with positive values')
        try:
            with torch.inference_mode():
                raw = self._module(self._model_input(self._to_device(rgb)))
                prediction = self._collect(raw, wanted, output_size)
        except torch.cuda.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            raise EngineError(
                f'{self.device} ran out of memory for a {rgb.shape[1]}x{rgb.shape[0]} frame; use '
                'precision fp16, a smaller artifact input size, or free GPU memory'
            ) from err
        except RuntimeError as err:
            raise EngineError(f'inference failed on {self.device}: {err}') from err
        prediction.inference_ms = (time.perf_counter() - start) * MS_PER_S
        return prediction

    def _wanted(self, outputs: Collection[str] | None) -> set[str]:
        if outputs is None:
            return set(self.outputs) | ({'depth'} if 'points' in self.outputs else set())
        unknown = sorted(set(outputs) - set(OUTPUT_NAMES))
        if unknown:
            raise EngineError(f'unknown outputs {unknown}; choose from {", ".join(OUTPUT_NAMES)}')
        return set(outputs)

    def _collect(
        self,
        raw: dict[str, torch.Tensor],
        wanted: set[str],
        output_size: tuple[int, int] | None,
    ) -> Prediction:
        """Select, resize and copy to host the wanted outputs of one forward pass."""
        tensors = dict(raw)
        if 'depth' not in tensors and 'points' in tensors:
            tensors['depth'] = tensors['points'][:, 2:3]
        prediction = Prediction()
        size = tuple(output_size) if output_size is not None else None
        for name in wanted:
            tensor = tensors.get(name)
            if tensor is None:
                continue
            tensor = tensor.float()
            if name in DENSE_OUTPUTS and size is not None and tuple(tensor.shape[-2:]) != size:
                tensor = F.interpolate(tensor, size=size, mode='bilinear', align_corners=False)
            first = tensor[0]
            if name in ('depth', 'confidence'):
                array = first[0]
            elif name in ('points', 'features'):
                array = first.permute(1, 2, 0)
            else:
                array = first
            setattr(prediction, name, array.contiguous().cpu().numpy())
        return prediction

    def device_memory_bytes(self) -> int | None:
        """Bytes allocated by torch on a CUDA device; None on CPU."""
        if self.device.type != 'cuda':
            return None
        return int(torch.cuda.memory_allocated(self.device))
