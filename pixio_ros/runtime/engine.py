"""Engine: one compiled Pixio artifact on a device; uint8 RGB in, numpy depth/points/features out.

The artifact (TorchScript `.ts` or torch.export `.pt2`, see DESIGN.md) carries its own
normalisation and metadata, so this class needs no model code: it checks the metadata, resizes
the camera image to the artifact's input size on the device, runs it and resizes the dense
outputs back to the camera resolution when asked.
"""

from __future__ import annotations

import json
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
from pixio_ros.files import file_sha256
from pixio_ros.model.artifact import quiet_torchscript

__all__ = [
    'DENSE_OUTPUTS',
    'OUTPUT_NAMES',
    'PRECISIONS',
    'Engine',
    'EngineError',
    'Prediction',
    'RandomInitWarning',
]

METADATA_FILE = 'pixio_metadata.json'
# Artifact metadata layout this runtime reads (`format_version` written by `pixio-ros export`).
ARTIFACT_FORMAT_VERSION = 1
TORCH_EXPORT_SUFFIX = '.pt2'
OUTPUT_NAMES: tuple[str, ...] = ('depth', 'points', 'confidence', 'features', 'embedding')
# Outputs at image resolution, which `output_size` resizes.
DENSE_OUTPUTS: tuple[str, ...] = ('depth', 'points', 'confidence')
PRECISIONS: dict[str, torch.dtype] = {
    'fp32': torch.float32,
    'fp16': torch.float16,
    'bf16': torch.bfloat16,
}
UINT8_MAX = 255.0
MS_PER_S = 1000.0
IMAGE_DIMS = 2  # (H, W)
EXPORT_HINT = (
    'make one with `pixio-ros export --encoder PIXIO_WEIGHTS --head HEAD_CHECKPOINT -o model.ts` '
    '(or `pixio-ros export --random-init --size tiny -o model.ts` for a test artifact)'
)


class EngineError(PixioRosError):
    """An artifact, device or input the engine cannot run; the message says how to fix it."""


class RandomInitWarning(UserWarning):
    """The artifact has random-init weights: its depth / points / features carry no meaning."""


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


def _load_artifact(path: Path, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """The callable module and the parsed metadata of a TorchScript or torch.export artifact."""
    extra_files: dict[str, Any] = {METADATA_FILE: ''}
    try:
        if path.suffix == TORCH_EXPORT_SUFFIX:
            program = torch.export.load(str(path), extra_files=extra_files)
            module = program.module().to(device)
        else:
            with quiet_torchscript():  # TorchScript is deprecated upstream, still our default
                module = torch.jit.load(str(path), map_location=device, _extra_files=extra_files)
            module.eval()
    except Exception as err:  # torch raises RuntimeError, ValueError, zipfile errors, ...
        raise EngineError(
            f'{path} is not a loadable Pixio artifact ({type(err).__name__}: '
            f'{str(err).splitlines()[0] if str(err) else "no detail"}); {EXPORT_HINT}'
        ) from err
    raw = extra_files.get(METADATA_FILE) or b''
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if not text:
        raise EngineError(f'{path} has no embedded {METADATA_FILE}; it was not made by pixio-ros '
                          f'export, {EXPORT_HINT}')
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise EngineError(f'{path} has corrupt metadata ({err}); {EXPORT_HINT}') from err
    if not isinstance(metadata, dict):
        raise EngineError(f'{path} metadata is not a JSON object; {EXPORT_HINT}')
    return module, metadata


def _check_metadata(
    path: Path, metadata: dict[str, Any]
) -> tuple[tuple[int, int], tuple[str, ...]]:
    """Input size and output names from the metadata, or EngineError naming what is wrong."""
    version = metadata.get('format_version')
    if version != ARTIFACT_FORMAT_VERSION:
        raise EngineError(
            f'{path} has artifact format_version {version!r}, this pixio_ros reads format_version '
            f'{ARTIFACT_FORMAT_VERSION}; re-export it with this pixio_ros: {EXPORT_HINT}'
        )
    size = metadata.get('input_size')
    patch = metadata.get('patch_size', 1)
    valid_size = (
        isinstance(size, (list, tuple))
        and len(size) == IMAGE_DIMS
        and all(isinstance(value, int) and value > 0 for value in size)
    )
    if not valid_size:
        raise EngineError(f'{path} metadata input_size is {size!r}, expected [H, W]; {EXPORT_HINT}')
    if not isinstance(patch, int) or patch <= 0 or size[0] % patch or size[1] % patch:
        raise EngineError(
            f'{path} metadata input_size {size} is not a multiple of patch_size {patch}; '
            f'{EXPORT_HINT}'
        )
    outputs = metadata.get('outputs')
    if not isinstance(outputs, (list, tuple)) or not outputs:
        raise EngineError(f'{path} metadata outputs is {outputs!r}; {EXPORT_HINT}')
    unknown = sorted(set(outputs) - set(OUTPUT_NAMES))
    if unknown:
        raise EngineError(
            f'{path} provides outputs {unknown} this runtime does not know (expected a subset of '
            f'{", ".join(OUTPUT_NAMES)}); update pixio_ros or re-export the artifact'
        )
    return (size[0], size[1]), tuple(outputs)


class Engine:
    """A Pixio artifact loaded on a device, warmed up and ready for `infer`.

    Args:
        artifact_path: `.ts` (TorchScript) or `.pt2` (torch.export) file from `pixio-ros export`.
        device: 'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'.
        precision: 'fp32', 'fp16' or 'bf16'; half precisions cast the weights (CUDA mainly).
        warmup_runs: forward passes at start-up so the first frame is not slow.

    Raises:
        EngineError: missing or invalid artifact, unavailable device, unsupported precision.
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
        if not path.is_file():
            raise EngineError(f'model artifact {str(path)!r} does not exist; {EXPORT_HINT}')
        if precision not in PRECISIONS:
            raise EngineError(
                f'precision {precision!r} is not supported; use one of {", ".join(PRECISIONS)}'
            )
        if warmup_runs < 0:
            raise EngineError(f'warmup_runs is {warmup_runs}; use 0 or more')
        self.path = path
        self.device = resolve_device(device)
        self.precision = precision
        module, metadata = _load_artifact(path, self.device)
        self.input_size, self.outputs = _check_metadata(path, metadata)
        metadata['sha256'] = file_sha256(path)
        self.metadata: dict[str, Any] = metadata
        dtype = PRECISIONS[precision]
        if dtype != torch.float32:
            module = module.to(dtype)
        self._module = module
        self._pinned: torch.Tensor | None = None
        self._warn_if_random_init()
        try:
            for _ in range(warmup_runs):
                self.infer(np.zeros((*self.input_size, 3), dtype=np.uint8))
        except EngineError as err:
            raise EngineError(
                f'{path} failed its warm-up on {self.device} with {precision}: {err}'
            ) from err

    def _warn_if_random_init(self) -> None:
        untrained = [
            key for key in ('encoder_pretrained', 'head_trained') if self.metadata.get(key) is False
        ]
        if self.metadata.get('head_kind') == 'none' and 'head_trained' in untrained:
            untrained.remove('head_trained')
        if untrained:
            flags = ', '.join(f'{key}=false' for key in untrained)
            message = (
                f'{self.path.name} has random-init weights ({flags}): its depth, points and '
                'features are NOT meaningful; export a trained artifact '
                'for real use'
            )
            warnings.warn(message, RandomInitWarning, stacklevel=3)

    @property
    def patch_size(self) -> int:
        """Pixels per patch side (features grid = input size / patch size)."""
        return int(self.metadata.get('patch_size', 1))

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
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
                or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
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
