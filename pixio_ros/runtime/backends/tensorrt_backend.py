"""The TensorRT backend: an .onnx artifact built into a TensorRT engine on an NVIDIA GPU.

Built through ONNX Runtime's TensorRT execution provider (onnxruntime-gpu with TensorRT
installed), not the tensorrt Python API: the provider parses the ONNX file, builds the engine
for the optimisation profile below (batch 1..`MAX_BATCH` at the artifact's input size), runs
whatever TensorRT cannot on CUDA, and the Engine feeds it through the same IO binding as the
ONNX Runtime backend. Engines take minutes to build, so they are cached in
``~/.cache/pixio_ros/tensorrt/<sha256>-<GPU name>-trt<TensorRT version>/`` (`tensorrt_cache_dir`):
a new artifact, GPU or TensorRT builds a new one, and every later start loads it in seconds.

``precision`` fp16 builds an fp16 engine (the fast path on Jetson and desktop GPUs), fp32 an
fp32 one (TF32 where the GPU has it); TensorRT's bf16 is not offered. ``int8`` builds an INT8
engine from an INT8 artifact of `pixio-ros quantize`: its quantise / dequantise pairs carry the
calibrated scales (TensorRT's explicit quantisation, no calibration cache), the layers kept float
build in fp32. The engine is cached like the others, under the INT8 artifact's own sha256.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import torch

from pixio_ros.model.artifact_format import ArtifactMetadata, Precision
from pixio_ros.runtime.backends.base import BackendInfo, cache_root, slug
from pixio_ros.runtime.backends.onnxruntime_backend import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    INPUT_NAME,
    OrtSession,
    device_used_bytes,
    import_onnxruntime,
)
from pixio_ros.runtime.errors import EngineError

__all__ = [
    'MAX_BATCH',
    'TENSORRT_PROVIDER',
    'TensorRtBackend',
    'provider_options',
    'tensorrt_cache_dir',
    'tensorrt_version',
]

TENSORRT_PROVIDER = 'TensorrtExecutionProvider'
MAX_BATCH = 16
"""Largest batch of the engine's optimisation profile (the node's cameras per forward)."""
NVINFER_LIBRARIES = ('libnvinfer.so.10', 'libnvinfer.so.8', 'libnvinfer.so')
NVINFER_VERSION_DIGITS = (10000, 100, 1)
"""TensorRT >= 10 encodes MAJOR * 10000 + MINOR * 100 + PATCH in getInferLibVersion."""
NO_CUDA = (
    'backend tensorrt needs an NVIDIA GPU with CUDA, and this machine has none (torch sees no '
    "CUDA device); use backend 'auto', 'openvino' or 'onnxruntime' on a CPU"
)


@functools.lru_cache(maxsize=1)
def tensorrt_version() -> str:
    """The TensorRT library version (``10.3.0``), from the tensorrt package or libnvinfer."""
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for name in NVINFER_LIBRARIES:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        code = int(library.getInferLibVersion())
        major, rest = divmod(code, NVINFER_VERSION_DIGITS[0])
        minor, patch = divmod(rest, NVINFER_VERSION_DIGITS[1])
        return f'{major}.{minor}.{patch}'
    return 'unknown'


def tensorrt_cache_dir(sha256: str, gpu_name: str, version: str) -> Path:
    """The engine cache of one artifact on one GPU model with one TensorRT version."""
    return cache_root() / 'tensorrt' / f'{sha256[:16]}-{slug(gpu_name)}-trt{slug(version)}'


def provider_options(
    metadata: ArtifactMetadata, *, device_index: int, precision: Precision, cache: Path
) -> dict[str, Any]:
    """The TensorRT provider options: cached engine, fp16 / int8, one profile for 1..MAX_BATCH."""
    height, width = metadata.input_size
    shape = f'{height}x{width}x3'
    return {
        'device_id': device_index,
        'trt_fp16_enable': precision == 'fp16',
        'trt_int8_enable': precision == 'int8',
        'trt_engine_cache_enable': True,
        'trt_engine_cache_path': str(cache),
        'trt_timing_cache_enable': True,
        'trt_timing_cache_path': str(cache),
        'trt_profile_min_shapes': f'{INPUT_NAME}:1x{shape}',
        'trt_profile_opt_shapes': f'{INPUT_NAME}:1x{shape}',
        'trt_profile_max_shapes': f'{INPUT_NAME}:{MAX_BATCH}x{shape}',
    }


def check_available(device: torch.device, precision: Precision) -> Any:
    """The onnxruntime module when TensorRT can run on ``device``; else one start-up line."""
    if device.type != 'cuda' or not torch.cuda.is_available():
        raise EngineError(NO_CUDA)
    if precision == 'bf16':
        raise EngineError(
            'backend tensorrt builds fp16, fp32 or (from `pixio-ros quantize` artifacts) int8 '
            'engines; use precision fp16 (the fast path) or fp32'
        )
    ort = import_onnxruntime()
    providers = ort.get_available_providers()
    if TENSORRT_PROVIDER not in providers:
        raise EngineError(
            f'backend tensorrt needs onnxruntime-gpu with TensorRT (this onnxruntime '
            f'{ort.__version__} offers {", ".join(providers)}); install them as the README '
            "says (TensorRT on NVIDIA), or use backend 'onnxruntime' or 'torch' on CUDA"
        )
    return ort


class TensorRtBackend:
    """An ONNX artifact as a cached TensorRT engine on a CUDA device.

    Raises:
        EngineError: No CUDA (one line, `NO_CUDA`), no TensorRT provider, bf16, or a model the
            provider cannot build.
    """

    def __init__(
        self,
        path: Path,
        metadata: ArtifactMetadata,
        sha256: str,
        *,
        device: torch.device,
        precision: Precision,
        selection: str = 'requested',
    ):
        ort = check_available(device, precision)
        index = device.index or 0
        gpu = torch.cuda.get_device_name(index)
        version = tensorrt_version()
        cache = tensorrt_cache_dir(sha256, gpu, version)
        cache.mkdir(parents=True, exist_ok=True)
        options = provider_options(metadata, device_index=index, precision=precision, cache=cache)
        providers: list[str | tuple[str, dict[str, Any]]] = [
            (TENSORRT_PROVIDER, options),
            (CUDA_PROVIDER, {'device_id': index}),
            CPU_PROVIDER,
        ]
        self.metadata = metadata
        self.sha256 = sha256
        self.device = torch.device('cuda', index)
        self._session = OrtSession(
            path, metadata, providers=providers, device=self.device, runtime='tensorrt'
        )
        self.info = BackendInfo(
            name='tensorrt',
            version=f'tensorrt {version} (onnxruntime {ort.__version__})',
            target=f'{self.device} ({gpu})',
            precision=precision,
            selection=selection,
            cache_dir=str(cache),
        )

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The engine's forward pass, on the GPU."""
        return self._session(batch)

    def memory_bytes(self) -> int | None:
        """Used memory of the whole CUDA device (TensorRT's allocations are not torch's)."""
        return device_used_bytes(self.device)
