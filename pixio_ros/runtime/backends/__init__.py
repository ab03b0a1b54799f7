"""Engine backends: which runtime runs an artifact's forward pass, chosen once at start-up.

===============  ===================  ===========================================================
backend          reads                runs on
===============  ===================  ===========================================================
``torch``        .ts, .pt2            torch CPU or CUDA (fp32, fp16, bf16)
``onnxruntime``  .onnx                ONNX Runtime CPU provider (CUDA provider with
                                      onnxruntime-gpu); fp32
``openvino``     .onnx                OpenVINO CPU (Intel / AMD), GPU / NPU devices; fp32, bf16
                                      on CPUs with native bf16, fp16 where the device has it
``tensorrt``     .onnx                NVIDIA GPUs, through ONNX Runtime's TensorRT provider;
                                      fp16 (the fast path) or fp32
===============  ===================  ===========================================================

``auto`` picks the fastest backend that is installed, fits the device and reads the artifact's
format (`choose_backend`): an .onnx goes to TensorRT (then ONNX Runtime's CUDA provider) on
NVIDIA, to OpenVINO (then ONNX Runtime) on CPUs; a .ts or .pt2 only torch reads. `open_backend`
loads it and runs the start-up parity check (`pixio_ros.runtime.backends.parity`).

``int8`` is never chosen for the user: it runs an INT8 artifact of `pixio-ros quantize` (on
openvino, onnxruntime on the CPU, or tensorrt), and such an artifact runs only at int8, so the
precision setting always says what computes. Its start-up check compares with ONNX Runtime's
CPU provider on the same artifact (what the quantisation gate scored) at the gate's tolerances.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import replace
from pathlib import Path

import torch

from pixio_ros.files import file_sha256
from pixio_ros.model.artifact_format import (
    FORMAT_TITLES,
    INT8,
    TORCH_FORMATS,
    ArtifactFormat,
    ArtifactMetadata,
    Precision,
    read_metadata,
)
from pixio_ros.runtime.backends.base import (
    BACKEND_CHOICES,
    BACKEND_EXTRAS,
    BACKEND_NAMES,
    Backend,
    BackendChoice,
    BackendInfo,
    BackendName,
    ParityResult,
    resolve_device,
)
from pixio_ros.runtime.backends.parity import (
    compare_int8,
    compare_outputs,
    probe_batch,
    refuse_beyond_tolerance,
)
from pixio_ros.runtime.errors import EngineError
from pixio_ros.runtime.precision import cpu_precision

__all__ = [
    'BACKEND_CHOICES',
    'BACKEND_NAMES',
    'Backend',
    'BackendChoice',
    'BackendInfo',
    'BackendName',
    'ParityResult',
    'backend_available',
    'choose_backend',
    'open_backend',
    'readers_of',
]

LOGGER = logging.getLogger(__name__)
ONNX_READERS: tuple[BackendName, ...] = ('tensorrt', 'onnxruntime', 'openvino')
CPU_ORDER: tuple[BackendName, ...] = ('openvino', 'onnxruntime')
"""CPU backends for an .onnx, fastest first (OpenVINO: 1.25x TorchScript at fp32 and bf16)."""
REFERENCE = 'onnxruntime fp32 on CPU'
INT8_REFERENCE = 'onnxruntime int8 on CPU (what the quantisation gate scored)'
QUANTIZE_HINT = '`pixio-ros quantize MODEL.onnx --calibrate BAG -o MODEL.int8.onnx`'
"""The ONNX reference runtime the start-up check compares ONNX backends with."""
SELF_REFERENCE = 'none needed: the reference runtime itself, checked against eager at export'
SELF_REFERENCE_INT8 = (
    'none needed: the reference runtime itself, scored against the fp32 source by the '
    'quantisation gate'
)
ONNX_REFERENCE_MISSING = (
    'not checked: onnxruntime, the ONNX reference, is not installed; '
    f'{BACKEND_EXTRAS["onnxruntime"]}'
)


def readers_of(fmt: ArtifactFormat) -> tuple[BackendName, ...]:
    """The backends that can run an artifact of format ``fmt``."""
    return ('torch',) if fmt in TORCH_FORMATS else ONNX_READERS


def _importable(module: str) -> bool:
    if module in sys.modules:  # imported already, or blocked (None)
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _ort_providers() -> list[str]:
    if not _importable('onnxruntime'):
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def backend_available(name: BackendName, *, cuda: bool = False) -> bool:
    """Whether ``name`` is installed here (and, with ``cuda``, can run on an NVIDIA GPU)."""
    if name == 'torch':
        return not cuda or torch.cuda.is_available()
    if name == 'openvino':
        return not cuda and _importable('openvino')
    if name == 'onnxruntime':
        if not _importable('onnxruntime'):
            return False
        return not cuda or (
            torch.cuda.is_available() and 'CUDAExecutionProvider' in _ort_providers()
        )
    return torch.cuda.is_available() and 'TensorrtExecutionProvider' in _ort_providers()


def _wants_cuda(device: str) -> bool:
    return device.startswith('cuda') or (device == 'auto' and torch.cuda.is_available())


def choose_backend(
    fmt: ArtifactFormat, device: str, precision: Precision = 'fp32'
) -> tuple[BackendName, str]:
    """(backend, why) for ``backend: auto``: the fastest installed one that fits.

    Raises:
        EngineError: No installed backend reads ``fmt`` on ``device``; names what to install.
    """
    if precision == INT8 and _wants_cuda(device):
        if backend_available('tensorrt', cuda=True):
            return 'tensorrt', 'auto: tensorrt, the one INT8 backend on CUDA'
        if device != 'auto':
            raise EngineError(
                f'an INT8 artifact on {device!r} needs backend tensorrt (onnxruntime-gpu with '
                'TensorRT), which is not installed; install it (README: TensorRT on NVIDIA), or '
                "use device 'cpu' (openvino, onnxruntime)"
            )
        device = 'cpu'
    if fmt in TORCH_FORMATS:
        return 'torch', (
            f'auto: torch, the one backend that reads {FORMAT_TITLES[fmt]} (export --format onnx '
            'for openvino, onnxruntime or tensorrt)'
        )
    if _wants_cuda(device):
        for name in ('tensorrt', 'onnxruntime'):
            if backend_available(name, cuda=True):
                return name, f'auto: {name}, the fastest installed ONNX backend on CUDA'
        if device != 'auto':
            raise EngineError(
                f"device {device!r} with an ONNX artifact needs backend tensorrt or onnxruntime's "
                'CUDA provider, and neither is installed; install onnxruntime-gpu (and TensorRT, '
                "README: TensorRT on NVIDIA), or use device 'cpu'"
            )
    for name in CPU_ORDER:
        if backend_available(name):
            return name, f'auto: {name}, the fastest installed ONNX backend on CPU'
    raise EngineError(
        f'an ONNX artifact needs an ONNX backend and none is installed; '
        f'{BACKEND_EXTRAS["openvino"]} (fastest on CPUs) or {BACKEND_EXTRAS["onnxruntime"]}, '
        'or export a TorchScript artifact (-o model.ts) for backend torch'
    )


def _check_choice(backend: str, fmt: ArtifactFormat, path: Path) -> BackendChoice:
    for choice in BACKEND_CHOICES:
        if backend == choice:
            if choice != 'auto' and choice not in readers_of(fmt):
                readers = ', '.join(readers_of(fmt))
                raise EngineError(
                    f'backend {choice} does not read {path.name}, which is a {FORMAT_TITLES[fmt]} '
                    f"artifact (read by {readers}); use backend 'auto' or {readers}, or export "
                    f'the format {choice} reads (torch: -o model.ts; the others: -o model.onnx)'
                )
            return choice
    raise EngineError(f'backend {backend!r} is not one of {", ".join(BACKEND_CHOICES)}')


def open_backend(
    path: str | Path,
    *,
    backend: str = 'auto',
    device: str = 'auto',
    precision: Precision = 'fp32',
    parity_check: bool = True,
) -> Backend:
    """Load the artifact on the chosen backend and check it against the reference at start-up.

    Args:
        path: An artifact of any format (read by content).
        backend: ``auto`` or a name from `BACKEND_NAMES`.
        device: ``auto``, ``cpu``, ``cuda[:N]``; OpenVINO also takes its ``GPU`` / ``NPU``.
        precision: fp32, fp16, bf16 or int8 (each backend refuses what it cannot compute
            natively; int8 only with, and only for, an INT8 artifact of `pixio-ros quantize`).
        parity_check: Compare a probe image with the reference (`parity` module); skipped
            where the backend is the reference itself (torch fp32, onnxruntime fp32 on CPU).

    Raises:
        ArtifactError: The file is not a readable artifact.
        EngineError: An unknown or uninstalled backend, one that does not read this format or
            fit this device or precision, or one beyond tolerance; each one line.
    """
    path = Path(path)
    metadata = read_metadata(path)
    choice = _check_choice(backend, metadata.format, path)
    _check_int8(path, metadata, precision, choice)
    if choice == 'auto':
        name, selection = choose_backend(metadata.format, device, precision)
        if precision == INT8 and name == 'tensorrt' and device == 'auto':
            device = 'cuda'
        elif precision == INT8 and device == 'auto':
            device = 'cpu'
    else:
        name, selection = choice, 'requested'
    probe = probe_batch(metadata.input_size) if parity_check else None
    opened: Backend
    reference: dict[str, torch.Tensor] | None = None
    label = ''
    if name == 'torch':
        from pixio_ros.runtime.backends.torch_backend import TorchBackend

        torch_backend = TorchBackend(
            path,
            device=resolve_device(device),
            precision=precision,
            selection=selection,
            probe=probe if precision != 'fp32' else None,
        )
        reference = torch_backend.reference_outputs
        label = 'torch fp32 (same artifact)' if reference is not None else ''
        opened = torch_backend
    else:
        opened = _open_onnx(name, path, metadata, device, precision, selection)
        if probe is not None and not _is_reference(opened):
            reference, label = _onnx_reference(path, metadata, opened)
    notes = _notes(opened)
    if notes:
        opened.info = replace(opened.info, selection=f'{opened.info.selection}; {notes}')
    if probe is not None and reference is not None:
        with torch.inference_mode():
            candidate = opened(probe.to(opened.device))
        if metadata.quantization is not None:
            results = compare_int8(reference, candidate, metadata.quantization)
        else:
            results = compare_outputs(reference, candidate, precision, metadata.max_depth)
        opened.info = replace(opened.info, reference=label, parity=results)
        refuse_beyond_tolerance(opened.info, results, metadata)
    elif probe is not None:
        itself = SELF_REFERENCE_INT8 if metadata.quantization is not None else SELF_REFERENCE
        opened.info = replace(opened.info, reference=label or itself)
    LOGGER.info(
        '%s: backend %s; parity %s', path.name, opened.info.summary(), opened.info.parity_summary()
    )
    return opened


def _check_int8(path: Path, metadata: ArtifactMetadata, precision: Precision, choice: str) -> None:
    """An INT8 artifact runs at precision int8 only, and int8 only runs INT8 artifacts."""
    record = metadata.quantization
    quantized = record is not None
    if record is not None and precision != INT8:
        raise EngineError(
            f'{path.name} is an INT8 artifact (from `pixio-ros quantize`); set precision int8 '
            f'(backend openvino, onnxruntime or tensorrt), or run its fp32 source '
            f'(sha256 {record.source_sha256[:16]}...) at {precision}'
        )
    if precision == INT8 and not quantized:
        raise EngineError(
            f'precision int8 needs an INT8 artifact and {path.name} is {metadata.dtype}; '
            f'quantise it on your recordings first: {QUANTIZE_HINT}'
        )
    if precision == INT8 and choice == 'torch':
        raise EngineError(
            'precision int8 runs on backend openvino, onnxruntime (CPU) or tensorrt, not torch; '
            "use backend 'auto'"
        )


def _open_onnx(
    name: BackendName,
    path: Path,
    metadata: ArtifactMetadata,
    device: str,
    precision: Precision,
    selection: str,
) -> Backend:
    sha256 = file_sha256(path)
    if name == 'openvino':
        from pixio_ros.runtime.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(
            path, metadata, sha256, device=device, precision=precision, selection=selection
        )
    if name == 'tensorrt':
        from pixio_ros.runtime.backends.tensorrt_backend import NO_CUDA, TensorRtBackend

        if not torch.cuda.is_available():
            raise EngineError(NO_CUDA)
        target = torch.device('cuda') if device == 'auto' else resolve_device(device)
        return TensorRtBackend(
            path, metadata, sha256, device=target, precision=precision, selection=selection
        )
    from pixio_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(
        path,
        metadata,
        sha256,
        device=resolve_device(device),
        precision=precision,
        selection=selection,
    )


def _is_reference(opened: Backend) -> bool:
    """Whether ``opened`` is the reference runtime (ONNX Runtime CPU at fp32, or int8)."""
    info = opened.info
    return (
        info.name == 'onnxruntime'
        and opened.device.type == 'cpu'
        and info.precision in ('fp32', INT8)
    )


def _onnx_reference(
    path: Path, metadata: ArtifactMetadata, opened: Backend
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The reference outputs on the probe for an ONNX backend, and what they came from."""
    probe = probe_batch(metadata.input_size)
    reference: Backend
    if backend_available('onnxruntime'):
        from pixio_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        quantized = metadata.quantization is not None
        reference = OnnxRuntimeBackend(
            path,
            metadata,
            opened.sha256,
            device=torch.device('cpu'),
            precision=INT8 if quantized else 'fp32',
        )
        label = INT8_REFERENCE if quantized else REFERENCE
    elif opened.info.name == 'openvino' and opened.info.precision not in ('fp32', INT8):
        from pixio_ros.runtime.backends.openvino_backend import OpenVinoBackend

        reference = OpenVinoBackend(path, metadata, opened.sha256, device='cpu', precision='fp32')
        label = 'openvino fp32 on CPU'
    else:
        return None, ONNX_REFERENCE_MISSING
    with torch.inference_mode():
        outputs = reference(probe)
    return {name: value.float().cpu().clone() for name, value in outputs.items()}, label


def _notes(opened: Backend) -> str:
    """What the user should know about this choice (bf16 emulated on a CPU without it)."""
    info = opened.info
    if info.precision == 'bf16' and opened.device.type == 'cpu' and info.name == 'torch':
        cpu = cpu_precision()
        if not cpu.native_bf16:
            return f'bf16 emulated by torch, slower than fp32: this CPU has {cpu.describe()}'
    return ''
