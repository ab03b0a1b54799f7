"""Engine: one compiled Pixio artifact on a device; uint8 RGB in, numpy depth/points/features out.

The artifact (TorchScript, torch.export or ONNX; the README states its contract) carries its own
normalisation and metadata, so this class needs no model code: `pixio_ros.model.artifact_format`
reads it by content and checks its metadata, and a backend (`pixio_ros.runtime.backends`: torch,
onnxruntime, openvino, tensorrt) runs its forward pass; the Engine resizes the camera image to
the artifact's input size on the device, runs it and resizes the dense outputs back to the
camera resolution when asked, the same for every backend.
"""

from __future__ import annotations

import time
import typing
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual alias)

from pixio_ros.model.artifact_format import (
    DENSE_OUTPUTS,
    EXPORT_HINT,
    OUTPUT_NAMES,
    PRECISIONS,
    ArtifactMetadata,
    RandomInitWarning,
    random_init_message,
    random_init_parts,
)
from pixio_ros.runtime.backends import BACKEND_CHOICES, Backend, BackendInfo, open_backend
from pixio_ros.runtime.backends.base import resolve_device
from pixio_ros.runtime.errors import EngineError
from pixio_ros.units import MS_PER_S

__all__ = [
    'BACKEND_CHOICES',
    'DENSE_OUTPUTS',
    'EXPORT_HINT',
    'OUTPUT_NAMES',
    'Engine',
    'EngineError',
    'Prediction',
    'RandomInitWarning',
    'model_input',
    'resolve_device',
]

UINT8_MAX = 255.0
IMAGE_DIMS = 2  # (H, W)


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


def _check_input(rgb: np.ndarray, output_size: tuple[int, int] | None) -> None:
    """Raise EngineError unless `rgb` is a non-empty (H, W, 3) uint8 array and the size (H, W)."""
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


def model_input(image: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, H_in, W_in, 3) uint8, resized (antialiased) where it lies.

    The one resize from a camera image to an artifact's input: the Engine runs it on the device
    before every forward pass, and INT8 calibration feeds its frames through it, so calibration
    sees exactly what the node's model sees.
    """
    if tuple(image.shape[:2]) == tuple(input_size):
        return image.unsqueeze(0)
    nchw = image.permute(2, 0, 1).unsqueeze(0).float()
    resized = F.interpolate(
        nchw, size=tuple(input_size), mode='bilinear', align_corners=False, antialias=True
    )
    as_uint8 = resized.round_().clamp_(0, UINT8_MAX).to(torch.uint8)
    return as_uint8.permute(0, 2, 3, 1).contiguous()


class Engine:
    """A Pixio artifact loaded on a device, warmed up and ready for `infer`.

    Args:
        artifact_path: File written by `pixio-ros export` (TorchScript, torch.export or ONNX;
            the format is read from the content, so the name does not matter).
        device: 'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'; the openvino backend
            also takes OpenVINO's 'GPU' / 'NPU'.
        precision: 'fp32', 'fp16', 'bf16' or 'int8'; bf16 is fast on CPUs with native bf16
            (AVX-512 BF16, AMX; `pixio_ros.runtime.precision`), fp16 on NVIDIA GPUs; int8 runs
            an artifact from `pixio-ros quantize` (and only such an artifact) on openvino,
            onnxruntime (CPU) or tensorrt.
        warmup_runs: forward passes at start-up so the first frame is not slow.
        backend: 'auto' (the fastest installed backend that reads the artifact on the device),
            'torch', 'onnxruntime', 'openvino' or 'tensorrt' (`pixio_ros.runtime.backends`).
            Every backend but the reference runtime is compared with it on a probe image at
            start-up and refused beyond the tolerances of `pixio_ros.runtime.backends.parity`.

    Attributes:
        metadata: The artifact's checked, typed metadata.
        sha256: The artifact file's sha256.
        input_size: (H, W) images are resized to before inference.
        outputs: Output names the artifact provides.
        backend: The backend name in use (what 'auto' chose).
        backend_info: Its version, target, precision, why it was chosen and its parity.

    Raises:
        ArtifactError: a missing, unreadable or invalid artifact (one line naming the fix).
        EngineError: unavailable device or backend, unsupported precision, a backend beyond
            tolerance, a failed warm-up.
    """

    def __init__(
        self,
        artifact_path: str | Path,
        *,
        device: str = 'auto',
        precision: str = 'fp32',
        warmup_runs: int = 1,
        backend: str = 'auto',
    ):
        path = Path(artifact_path).expanduser()
        checked = next((name for name in PRECISIONS if name == precision), None)
        if checked is None:
            raise EngineError(
                f'precision {precision!r} is not supported; use one of {", ".join(PRECISIONS)}'
            )
        if warmup_runs < 0:
            raise EngineError(f'warmup_runs is {warmup_runs}; use 0 or more')
        self.path = path
        self.precision = precision
        runner: Backend = open_backend(path, backend=backend, device=device, precision=checked)
        self.device: torch.device = runner.device
        self.backend: str = runner.info.name
        self.metadata: ArtifactMetadata = runner.metadata
        self.sha256: str = runner.sha256
        self.input_size: tuple[int, int] = runner.metadata.input_size
        self.outputs: tuple[str, ...] = runner.metadata.outputs
        self._runner = runner
        # The forward pass, whichever backend runs it: (B, H, W, 3) uint8 -> dict of outputs.
        self._module: Callable[[torch.Tensor], Any] = runner
        self._pinned: torch.Tensor | None = None
        # Why batched forwards were given up for one forward per frame (None while they work).
        self.batch_fallback: str | None = None
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

    @property
    def backend_info(self) -> BackendInfo:
        """The backend in use: name, version, target, precision, why and its start-up parity."""
        return self._runner.info

    def model_info(self) -> dict[str, Any]:
        """The metadata as a JSON-ready dict plus ``sha256`` and the ``backend`` running it.

        The node latches it on model_info; ``backend`` is `BackendInfo.as_dict` (name, version,
        target, precision, why it was chosen, start-up parity).
        """
        return {
            **self.metadata.as_dict(),
            'sha256': self.sha256,
            'backend': self._runner.info.as_dict(),
        }

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
        """`model_input` at this artifact's input size."""
        return model_input(image, self.input_size)

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
        _check_input(rgb, output_size)
        try:
            with torch.inference_mode():
                raw = self._forward(self._model_input(self._to_device(rgb)))
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

    def infer_batch(
        self,
        rgbs: Sequence[np.ndarray],
        *,
        outputs: Collection[str] | None = None,
        output_sizes: Sequence[tuple[int, int] | None] | None = None,
    ) -> list[Prediction]:
        """Run the artifact once on several images (e.g. one per camera) of any sizes.

        Each image is resized to the artifact input size on the device, the batch goes through
        one forward pass (the artifacts have a dynamic batch axis), and each image's outputs are
        resized to its own output size. An artifact that refuses a batch is run once per image
        from then on (`batch_fallback` says why); the results are the same, only slower.

        Args:
            rgbs: (H, W, 3) uint8 RGB images, sizes may differ.
            outputs: as for `infer`, the same for every image.
            output_sizes: (H, W) per image for depth / points / confidence (None entries, or
                None for all: the input size).

        Returns:
            One Prediction per image, in order; `inference_ms` is the whole batch's wall time
            (what each frame waited for).

        Raises:
            EngineError: as `infer`, naming the image index; a batch whose sizes do not match.
        """
        sizes = list(output_sizes) if output_sizes is not None else [None] * len(rgbs)
        if len(sizes) != len(rgbs):
            raise EngineError(
                f'{len(rgbs)} images but {len(sizes)} output sizes; give one size (or None) per '
                'image'
            )
        if len(rgbs) == 1 or self.batch_fallback is not None:
            return [
                self.infer(rgb, outputs=outputs, output_size=size)
                for rgb, size in zip(rgbs, sizes, strict=True)
            ]
        wanted = self._wanted(outputs)
        start = time.perf_counter()
        for index, (rgb, size) in enumerate(zip(rgbs, sizes, strict=True)):
            try:
                _check_input(rgb, size)
            except EngineError as err:
                raise EngineError(f'batch image {index}: {err}') from err
        try:
            with torch.inference_mode():
                batch = torch.cat([self._model_input(self._to_device(rgb)) for rgb in rgbs])
                try:
                    raw = self._forward(batch)
                except RuntimeError as err:
                    # The frames on their own decide: an error of theirs raises from `infer`.
                    single = [
                        self.infer(rgb, outputs=outputs, output_size=size)
                        for rgb, size in zip(rgbs, sizes, strict=True)
                    ]
                    self.batch_fallback = (
                        f'{self.path.name} refused a batch of {len(rgbs)} ({err}); running one '
                        'forward per frame (re-export with `pixio-ros export` for a dynamic '
                        'batch axis)'
                    )
                    return single
                predictions = [
                    self._collect(raw, wanted, size, index=index)
                    for index, size in enumerate(sizes)
                ]
        except torch.cuda.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            raise EngineError(
                f'{self.device} ran out of memory for a batch of {len(rgbs)} frames; use '
                'precision fp16, fewer cameras per node, or free GPU memory'
            ) from err
        except RuntimeError as err:
            raise EngineError(f'batched inference failed on {self.device}: {err}') from err
        elapsed_ms = (time.perf_counter() - start) * MS_PER_S
        for prediction in predictions:
            prediction.inference_ms = elapsed_ms
        return predictions

    def _forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The artifact's forward pass: (B, H_in, W_in, 3) uint8 -> its output dict."""
        return typing.cast(dict[str, torch.Tensor], self._module(batch))

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
        *,
        index: int = 0,
    ) -> Prediction:
        """Select, resize and copy to host the wanted outputs of batch item `index`."""
        tensors = dict(raw)
        if 'depth' not in tensors and 'points' in tensors:
            tensors['depth'] = tensors['points'][:, 2:3]
        prediction = Prediction()
        size = tuple(output_size) if output_size is not None else None
        for name in wanted:
            tensor = tensors.get(name)
            if tensor is None:
                continue
            tensor = tensor[index : index + 1].float()
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
        """GPU memory in use: torch's allocations, or the device's (ONNX Runtime, TensorRT).

        None on CPU.
        """
        return self._runner.memory_bytes()
