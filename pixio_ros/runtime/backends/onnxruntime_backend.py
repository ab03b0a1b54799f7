"""The ONNX Runtime backend: an .onnx artifact on the CPU provider (CUDA provider when present).

ONNX Runtime runs ONNX graphs in fp32 on its CPU provider (about 1.25x TorchScript on our
CPUs); it has no bf16 CPU kernels, so bf16 is refused here (OpenVINO and torch offer it), and
fp16 needs an NVIDIA GPU through the TensorRT backend. ``int8`` runs an INT8 artifact of
`pixio-ros quantize` on the CPU: the graph optimiser fuses its quantise / dequantise pairs into
integer kernels; it is the runtime the quantisation gate scored. On CUDA the uint8 batch and
the float32 outputs stay on the GPU (IO binding to torch tensors), so the Engine's on-device
resize and lazy copies work as with torch. The TensorRT backend reuses `OrtSession` with its
provider.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixio_ros.model.artifact_format import INT8, ArtifactMetadata, Precision
from pixio_ros.runtime.backends.base import BackendInfo, first_line, not_installed
from pixio_ros.runtime.errors import EngineError

__all__ = ['CPU_PROVIDER', 'CUDA_PROVIDER', 'OnnxRuntimeBackend', 'OrtSession', 'output_shapes']

INPUT_NAME = 'image'
CPU_PROVIDER = 'CPUExecutionProvider'
CUDA_PROVIDER = 'CUDAExecutionProvider'
ORT_ERROR_SEVERITY = 3
"""ONNX Runtime logs errors only (its provider-assignment notes would fill the node's log)."""
MAP_OUTPUTS = {'depth': 1, 'confidence': 1, 'points': 3}
"""Channels of the image-resolution outputs."""


def import_onnxruntime() -> Any:
    """The onnxruntime module, or the 'not installed' start-up error."""
    try:
        import onnxruntime
    except ImportError as err:
        raise not_installed('onnxruntime', 'onnxruntime') from err
    return onnxruntime


def output_shapes(
    metadata: ArtifactMetadata, batch: int, height: int, width: int
) -> dict[str, tuple[int, ...]]:
    """The shape of every output of ``metadata`` for a ``(batch, height, width, 3)`` input."""
    grid = (height // metadata.patch_size, width // metadata.patch_size)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in metadata.outputs:
        if name in MAP_OUTPUTS:
            shapes[name] = (batch, MAP_OUTPUTS[name], height, width)
        elif name == 'features':
            shapes[name] = (batch, metadata.embed_dim, *grid)
        else:
            shapes[name] = (batch, metadata.embed_dim)
    return shapes


class OrtSession:
    """An ONNX Runtime session over an artifact, called with torch tensors on ``device``.

    Args:
        path: The .onnx artifact.
        metadata: Its metadata (output names and shapes).
        providers: ONNX Runtime providers with their options, in priority order.
        device: CPU: numpy in and out (no copies); CUDA: IO binding to torch tensors.
        runtime: The backend name, for error messages.

    Raises:
        EngineError: The session cannot be created (one line with ONNX Runtime's first line).
    """

    def __init__(
        self,
        path: Path,
        metadata: ArtifactMetadata,
        *,
        providers: Sequence[str | tuple[str, dict[str, Any]]],
        device: torch.device,
        runtime: str,
    ):
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = ORT_ERROR_SEVERITY
        # Idle pool threads sleep instead of spinning: in the node they share the cores with
        # torch's resize, message building and DDS (measured on 2 cores, tiny at 640x480 in:
        # 9.1 ms per frame spinning, 5.2 ms not).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        try:
            self._session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as err:  # onnxruntime raises its own pybind11 exception types
            raise EngineError(
                f'{path} is an ONNX model that {runtime} (onnxruntime {ort.__version__}) cannot '
                f'load ({first_line(err)}); re-export it: `pixio-ros export ... -o model.onnx`'
            ) from err
        inputs = self._session.get_inputs()
        names = [output.name for output in self._session.get_outputs()]
        if [i.name for i in inputs] != [INPUT_NAME] or set(names) != set(metadata.outputs):
            raise EngineError(
                f'{path} has inputs {[i.name for i in inputs]} and outputs {names}, but its '
                f'metadata promises [{INPUT_NAME!r}] and {list(metadata.outputs)}; re-export it: '
                '`pixio-ros export ... -o model.onnx`'
            )
        self.metadata = metadata
        self.device = device
        self.providers: list[str] = list(self._session.get_providers())
        self._runtime = runtime
        self._lock = threading.Lock()

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the session; raises RuntimeError with the runtime's first line on failure."""
        try:
            if self.device.type == 'cuda':
                return self._run_bound(batch)
            image = batch.contiguous().numpy()
            values = self._session.run(list(self.metadata.outputs), {INPUT_NAME: image})
        except RuntimeError:
            raise
        except Exception as err:  # onnxruntime's pybind11 exceptions
            raise RuntimeError(f'{self._runtime}: {first_line(err)}') from err
        return {
            name: torch.from_numpy(value)
            for name, value in zip(self.metadata.outputs, values, strict=True)
        }

    def _run_bound(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Input and outputs stay on the GPU: ONNX Runtime reads and writes torch's memory."""
        batch = batch.contiguous()
        index = self.device.index or 0
        size, height, width = int(batch.shape[0]), int(batch.shape[1]), int(batch.shape[2])
        outputs = {
            name: torch.empty(shape, dtype=torch.float32, device=self.device)
            for name, shape in output_shapes(self.metadata, size, height, width).items()
        }
        with self._lock:
            binding = self._session.io_binding()
            binding.bind_input(
                INPUT_NAME, 'cuda', index, np.uint8, tuple(batch.shape), batch.data_ptr()
            )
            for name, tensor in outputs.items():
                binding.bind_output(
                    name, 'cuda', index, np.float32, tuple(tensor.shape), tensor.data_ptr()
                )
            torch.cuda.current_stream(self.device).synchronize()  # the resize has finished
            self._session.run_with_iobinding(binding)
        return outputs


class OnnxRuntimeBackend:
    """An ONNX artifact on ONNX Runtime's CPU provider, or its CUDA provider on ``cuda``.

    Raises:
        EngineError: onnxruntime missing, a precision it cannot run, no CUDA provider for a
            CUDA device, or a model it cannot load.
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
        ort = import_onnxruntime()
        if precision == INT8 and device.type != 'cpu':
            raise EngineError(
                f'backend onnxruntime runs INT8 artifacts on the CPU only, not on {device}; use '
                "device 'cpu', or backend tensorrt for an INT8 engine on NVIDIA"
            )
        if precision not in ('fp32', INT8):
            raise EngineError(
                f'backend onnxruntime runs ONNX artifacts in fp32 only (int8 for the INT8 '
                f'artifacts of `pixio-ros quantize`; its CPU provider has no {precision} kernels); '
                'use precision fp32, backend openvino or torch for bf16 on a CPU, or backend '
                'tensorrt for fp16 on NVIDIA'
            )
        providers: list[str | tuple[str, dict[str, Any]]] = [CPU_PROVIDER]
        if device.type == 'cuda':
            if CUDA_PROVIDER not in ort.get_available_providers():
                raise EngineError(
                    f'backend onnxruntime on {device} needs onnxruntime-gpu (this onnxruntime '
                    f'{ort.__version__} offers {", ".join(ort.get_available_providers())}); '
                    "install onnxruntime-gpu, or use device 'cpu'"
                )
            providers = [(CUDA_PROVIDER, {'device_id': device.index or 0}), CPU_PROVIDER]
        self.metadata = metadata
        self.sha256 = sha256
        self.device = device
        self._session = OrtSession(
            path, metadata, providers=providers, device=device, runtime='onnxruntime'
        )
        self.info = BackendInfo(
            name='onnxruntime',
            version=f'onnxruntime {ort.__version__}',
            target=f'{device} ({self._session.providers[0]})',
            precision=precision,
            selection=selection,
        )

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The session's forward pass."""
        return self._session(batch)

    def memory_bytes(self) -> int | None:
        """Used memory of the whole CUDA device (ONNX Runtime's is not torch's); None on CPU."""
        return device_used_bytes(self.device)


def device_used_bytes(device: torch.device) -> int | None:
    """Bytes in use on a CUDA device, all allocators together; None on CPU."""
    if device.type != 'cuda':
        return None
    free, total = torch.cuda.mem_get_info(device)
    return int(total - free)
