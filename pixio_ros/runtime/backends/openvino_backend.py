"""The OpenVINO backend: an .onnx artifact on Intel / AMD CPUs (and Intel GPU / NPU devices).

OpenVINO reads the ONNX file itself, reshapes it to the artifact's input size (batch stays
dynamic, for several cameras) and compiles it for the device. INT8 artifacts are compiled at a
static batch instead, once per batch size a caller uses: OpenVINO 2026.4's dynamic-shape INT8
kernels got a trained DPT head's depth wrong (AbsRel 0.22 against fp32 where the same file at a
static batch, and ONNX Runtime, give 0.003; the fault is in a quantised convolution whose output
also feeds a residual add), and a static shape costs nothing in speed. Compiled models are cached in
``~/.cache/pixio_ros/openvino/<sha256>-<OpenVINO version>/`` (`cache_dir`), so only the first
start with an artifact pays the compilation.

Precision is explicit: OpenVINO's default on a CPU with native bf16 is bf16, so fp32 is asked
for by name (``INFERENCE_PRECISION_HINT`` f32), and bf16 / fp16 only where the device has them
(``OPTIMIZATION_CAPABILITIES``); a CPU without them would quietly compute fp32 instead, which
is refused rather than reported as bf16. ``int8`` runs an INT8 artifact of `pixio-ros
quantize` (the device must list INT8); integer kernels are fastest with VNNI or AMX.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import torch

from pixio_ros.model.artifact_format import ArtifactMetadata, Precision
from pixio_ros.runtime.backends.base import (
    BackendInfo,
    cache_root,
    first_line,
    not_installed,
    slug,
)
from pixio_ros.runtime.errors import EngineError
from pixio_ros.runtime.precision import cpu_precision

__all__ = ['OV_DEVICE', 'OpenVinoBackend', 'openvino_cache_dir', 'openvino_device']

OV_DEVICE = re.compile(r'(CPU|GPU|NPU)(\.\d+)?')
"""OpenVINO device names the ``device`` option accepts for this backend (case as OpenVINO)."""
OV_HINTS: dict[Precision, str] = {'fp32': 'f32', 'fp16': 'f16', 'bf16': 'bf16', 'int8': 'f32'}
"""``INFERENCE_PRECISION_HINT`` per precision. int8: the quantised layers run in INT8 (OpenVINO's
low-precision transformations turn the artifact's quantise / dequantise pairs into integer
kernels) and the layers kept float in f32, as the quantisation gate measured them."""
OV_CAPABILITIES: dict[Precision, str] = {'fp16': 'FP16', 'bf16': 'BF16', 'int8': 'INT8'}
CPU = 'CPU'


def import_openvino() -> Any:
    """The openvino module, or the 'not installed' start-up error."""
    try:
        import openvino
    except ImportError as err:
        raise not_installed('openvino', 'openvino') from err
    return openvino


def openvino_version(ov: Any) -> str:
    """``2026.4.1`` from OpenVINO's build string ``2026.4.1-22982-e213a147257-releases/...``."""
    return str(ov.get_version()).split('-')[0]


def openvino_cache_dir(sha256: str, version: str) -> Path:
    """The compiled-model cache of one artifact on one OpenVINO version."""
    return cache_root() / 'openvino' / f'{sha256[:16]}-openvino-{slug(version)}'


def openvino_device(device: str) -> str | None:
    """The OpenVINO device for an Engine ``device`` value, or None when it is not one.

    ``auto`` and ``cpu`` compute on the CPU; ``CPU``, ``GPU``, ``GPU.1``, ``NPU`` (OpenVINO's
    names) pass through. CUDA devices are not OpenVINO's.
    """
    if device in ('auto', 'cpu'):
        return CPU
    return device if OV_DEVICE.fullmatch(device) else None


class OpenVinoBackend:
    """An ONNX artifact compiled by OpenVINO for one of its devices.

    Raises:
        EngineError: openvino missing, a device it does not have, a precision the device does
            not compute natively, or a model it cannot read or compile.
    """

    def __init__(
        self,
        path: Path,
        metadata: ArtifactMetadata,
        sha256: str,
        *,
        device: str,
        precision: Precision,
        selection: str = 'requested',
    ):
        ov = import_openvino()
        target = openvino_device(device)
        if target is None:
            raise EngineError(
                f"device {device!r} is not an OpenVINO device; backend openvino runs on 'cpu' "
                "(or 'auto'), or on OpenVINO's 'GPU' / 'NPU'; for CUDA use backend tensorrt, "
                'onnxruntime or torch'
            )
        core = ov.Core()
        available = list(core.available_devices)
        if target != CPU and target not in available and target.split('.')[0] not in available:
            raise EngineError(
                f'OpenVINO has no device {target} here (it has {", ".join(available)}); use '
                "device 'cpu' or one of those"
            )
        self._check_precision(core, target, precision)
        version = openvino_version(ov)
        cache = openvino_cache_dir(sha256, version)
        cache.mkdir(parents=True, exist_ok=True)
        core.set_property({'CACHE_DIR': str(cache)})
        self._input_size = metadata.input_size
        config: dict[str, Any] = {
            'INFERENCE_PRECISION_HINT': OV_HINTS[precision],
            'PERFORMANCE_HINT': 'LATENCY',
        }
        # What compiling again for another batch size needs (INT8 artifacts, below).
        self._ov, self._core, self._path = ov, core, path
        self._target, self._config, self._version = target, config, version
        self._static_batch = precision == 'int8'
        self._by_batch: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._compiled = self._compile(1 if self._static_batch else -1)
        hint = self._compiled.get_property('INFERENCE_PRECISION_HINT')
        effective = hint.get_type_name() if hasattr(hint, 'get_type_name') else str(hint)
        if effective != OV_HINTS[precision]:
            raise EngineError(
                f'OpenVINO {version} on {target} computes in {effective}, not the {precision} '
                'asked for; use precision fp32'
            )
        self._names = {port.get_any_name(): port for port in self._compiled.outputs}
        missing = sorted(set(metadata.outputs) - set(self._names))
        if missing:
            raise EngineError(
                f'{path} has no outputs {missing} although its metadata lists them; re-export '
                'it: `pixio-ros export ... -o model.onnx`'
            )
        self._request = self._compiled.create_infer_request()
        if self._static_batch:
            self._by_batch[1] = (self._request, self._names)
        self._lock = threading.Lock()
        self.metadata = metadata
        self.sha256 = sha256
        self.device = torch.device('cpu')
        self.info = BackendInfo(
            name='openvino',
            version=f'openvino {version}',
            target=target,
            precision=precision,
            selection=selection,
            cache_dir=str(cache),
        )

    def _compile(self, batch: int) -> Any:
        """The model compiled for `batch` images (-1: any number), or the start-up error."""
        height, width = self._input_size
        try:
            model = self._core.read_model(str(self._path))
            model.reshape({model.input(0): self._ov.PartialShape([batch, height, width, 3])})
            return self._core.compile_model(model, self._target, self._config)
        except Exception as err:  # OpenVINO raises RuntimeError and its own types
            raise EngineError(
                f'{self._path} is an ONNX model that OpenVINO {self._version} cannot compile for '
                f'{self._target} ({first_line(err)}); re-export it: `pixio-ros export ... -o '
                'model.onnx`'
            ) from err

    def _request_for(self, batch: int) -> tuple[Any, dict[str, Any]]:
        """The infer request for `batch` images and its output ports by name.

        The one dynamic request, or for INT8 a static one per batch size, compiled on first use;
        called with the lock held, so each size is compiled once.
        """
        if not self._static_batch:
            return self._request, self._names
        if batch not in self._by_batch:
            compiled = self._compile(batch)
            ports = {port.get_any_name(): port for port in compiled.outputs}
            self._by_batch[batch] = (compiled.create_infer_request(), ports)
        return self._by_batch[batch]

    @property
    def static_batches(self) -> tuple[int, ...] | None:
        """The batch sizes compiled so far at a static shape (INT8), or None (one dynamic model).

        INT8 artifacts compile once per batch size a caller uses; fp32, bf16 and fp16 keep one
        model whose batch axis is dynamic.
        """
        return tuple(sorted(self._by_batch)) if self._static_batch else None

    @staticmethod
    def _check_precision(core: Any, target: str, precision: Precision) -> None:
        """Refuse a half precision the device would silently replace with fp32."""
        if precision == 'fp32':
            return
        capabilities = set(core.get_property(target, 'OPTIMIZATION_CAPABILITIES'))
        if OV_CAPABILITIES[precision] in capabilities:
            return
        detail = f'; this CPU has {cpu_precision().describe()}' if target == CPU else ''
        raise EngineError(
            f'OpenVINO on {target} has no native {precision} (it offers '
            f'{", ".join(sorted(capabilities))}){detail}, so it would compute fp32; use '
            'precision fp32 here, bf16 on CPUs with AVX-512 BF16 or AMX, int8 where INT8 is '
            'offered'
        )

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One synchronous inference; outputs are copies (the request's buffers are reused)."""
        image = batch.contiguous().numpy()
        try:
            with self._lock:
                request, ports = self._request_for(image.shape[0])
                result = request.infer({0: image})
                return {
                    name: torch.from_numpy(result[ports[name]]) for name in self.metadata.outputs
                }
        except Exception as err:  # OpenVINO's own exception types
            raise RuntimeError(f'openvino: {first_line(err)}') from err

    def memory_bytes(self) -> int | None:
        """None: OpenVINO's CPU and GPU plugins do not report it."""
        return None
