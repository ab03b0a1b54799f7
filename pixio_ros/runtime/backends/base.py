"""What every backend is: a small typed protocol the Engine delegates the forward pass to.

A backend holds one loaded artifact on one device and runs its forward pass: a uint8
``(B, H, W, 3)`` RGB batch at the artifact's input size in (a torch tensor on `Backend.device`,
where the Engine decodes and resizes), a dict of float32 tensors out, named as the artifact's
metadata ``outputs`` (``(B, 1, H, W)`` depth, ``(B, C, h, w)`` features, ...). The Engine does
everything around it (input checks, on-device resize, lazy outputs, copies back), so a frame
behaves the same on every backend.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from pixio_ros.model.artifact_format import ArtifactMetadata, Precision
from pixio_ros.runtime.errors import EngineError

__all__ = [
    'BACKEND_CHOICES',
    'BACKEND_EXTRAS',
    'BACKEND_NAMES',
    'Backend',
    'BackendChoice',
    'BackendInfo',
    'BackendName',
    'MAX_ABS',
    'ParityResult',
    'cache_root',
    'first_line',
    'not_installed',
    'resolve_device',
]

BackendName = Literal['torch', 'onnxruntime', 'openvino', 'tensorrt']
BackendChoice = Literal['auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt']
BACKEND_NAMES: tuple[BackendName, ...] = ('torch', 'onnxruntime', 'openvino', 'tensorrt')
BACKEND_CHOICES: tuple[BackendChoice, ...] = ('auto', *BACKEND_NAMES)
BACKEND_EXTRAS: dict[BackendName, str] = {
    'torch': '',
    'onnxruntime': "pip install 'pixio_ros[onnx]' (onnxruntime)",
    'openvino': "pip install 'pixio_ros[openvino]'",
    'tensorrt': 'install onnxruntime-gpu and TensorRT for your CUDA (README: TensorRT on NVIDIA)',
}
"""How to install each backend, for the 'not installed' start-up error."""
CACHE_ENV = 'XDG_CACHE_HOME'
MAX_ABS = 'max abs'
"""`ParityResult.measure` of the fp32 / fp16 / bf16 checks."""
_SLUG = re.compile(r'[^A-Za-z0-9._-]+')


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/pixio_ros`` (default ``~/.cache/pixio_ros``): compiled-model caches."""
    base = os.environ.get(CACHE_ENV) or str(Path.home() / '.cache')
    return Path(base).expanduser() / 'pixio_ros'


def slug(text: str) -> str:
    """``text`` as one file-name-safe word (GPU names, versions) for cache keys."""
    return _SLUG.sub('-', text.strip()).strip('-') or 'unknown'


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``, for one-line errors wrapping a library's."""
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__


def not_installed(name: BackendName, missing: str) -> EngineError:
    """The start-up error for a backend whose Python package is missing."""
    return EngineError(
        f'backend {name} is not installed ({missing} cannot be imported); {BACKEND_EXTRAS[name]}, '
        "or use backend 'auto'"
    )


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


@dataclass(frozen=True)
class ParityResult:
    """The start-up comparison of one output with the reference run.

    Attributes:
        max_abs: Largest |backend - reference| over the probe, in the output's unit; for INT8
            artifacts the figure named by ``measure`` (depth AbsRel, 1 - cosine).
        tolerance: The largest allowed, same unit (`pixio_ros.runtime.backends.parity`).
        unit: ``m`` for depth and points, ``''`` for the unitless outputs.
        measure: `MAX_ABS`, or what ``max_abs`` holds instead (``abs_rel``, ``1-cos``).
    """

    max_abs: float
    tolerance: float
    unit: str
    measure: str = MAX_ABS

    @property
    def ok(self) -> bool:
        """Within tolerance (a NaN difference is not)."""
        return self.max_abs <= self.tolerance

    def describe(self) -> str:
        """``3e-06 m`` (max abs) or ``abs_rel 0.0031`` (another measure)."""
        unit = f' {self.unit}' if self.unit else ''
        measure = '' if self.measure == MAX_ABS else f'{self.measure} '
        return f'{measure}{self.max_abs:.2g}{unit}'


@dataclass(frozen=True)
class BackendInfo:
    """Which runtime runs the artifact, where and how; shown in logs, diagnostics, model_info.

    Attributes:
        name: The backend.
        version: The runtime's version (``torch 2.13.0``, ``openvino 2026.4.1``, ...).
        target: Where it computes: ``cpu``, ``cuda:0``, or an OpenVINO device (``CPU``, ``GPU``).
        precision: The precision it computes in (what was asked; checked at start-up).
        selection: ``requested``, or ``auto: <why this backend>``.
        reference: What the start-up parity check compared with (``''`` when none ran).
        parity: Per output, the start-up check's result (empty when none ran).
        cache_dir: The compiled-model cache, for OpenVINO and TensorRT.
    """

    name: BackendName
    version: str
    target: str
    precision: Precision
    selection: str = 'requested'
    reference: str = ''
    parity: Mapping[str, ParityResult] = field(default_factory=dict, hash=False)
    cache_dir: str = ''

    def summary(self) -> str:
        """One phrase: ``openvino 2026.4.1 on CPU, bf16 (auto: ...)``."""
        return f'{self.version} on {self.target}, {self.precision} ({self.selection})'

    def parity_summary(self) -> str:
        """``depth 3e-06 m <= 0.001 m, ...`` or why there was no check."""
        if not self.parity:
            return self.reference or 'not checked'
        worst = ', '.join(f'{name} {result.describe()}' for name, result in self.parity.items())
        return f'vs {self.reference}: {worst}'

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for model_info."""
        return {
            'name': self.name,
            'version': self.version,
            'target': self.target,
            'precision': self.precision,
            'selection': self.selection,
            'reference': self.reference,
            'parity_max_abs': {name: result.max_abs for name, result in self.parity.items()},
            'parity_tolerance': {name: result.tolerance for name, result in self.parity.items()},
            'parity_measure': {name: result.measure for name, result in self.parity.items()},
            'cache_dir': self.cache_dir,
        }


class Backend(Protocol):
    """One artifact loaded on one device by one runtime.

    Attributes:
        info: What runs it (name, version, target, precision, selection, start-up parity).
        device: The torch device the Engine prepares inputs on and reads outputs from.
        metadata: The artifact's checked metadata.
        sha256: The artifact file's sha256.
    """

    info: BackendInfo
    device: torch.device
    metadata: ArtifactMetadata
    sha256: str

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 ``(B, H, W, 3)`` RGB at the input size, on `device` -> float32 outputs.

        Raises:
            RuntimeError: The runtime failed on this batch (the Engine turns it into one
                EngineError line, as it does torch's).
        """
        ...

    def memory_bytes(self) -> int | None:
        """Device memory in use for the model on a GPU; None on a CPU."""
        ...
