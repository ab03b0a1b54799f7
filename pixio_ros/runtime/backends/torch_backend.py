"""The torch backend: TorchScript (.ts) and torch.export (.pt2) artifacts, as before backends.

Precision casts the loaded module's weights (``fp16`` / ``bf16``); on a CPU without native bf16
(`pixio_ros.runtime.precision`) torch emulates bf16, which is correct but slower than fp32, and
the Engine says so at start-up.
"""

from __future__ import annotations

import typing
from pathlib import Path

import torch

from pixio_ros.model.artifact_format import DTYPES, Precision, load_artifact
from pixio_ros.runtime.backends.base import BackendInfo

__all__ = ['TorchBackend']


class TorchBackend:
    """A TorchScript or torch.export artifact on a torch device.

    Args:
        path: The artifact.
        device: The resolved torch device.
        precision: Weights precision; the module is cast after loading.
        selection: Why this backend (for `BackendInfo`).
        probe: When given, the fp32 module's outputs on it are kept in `reference_outputs`
            before the cast (the start-up parity check's reference, without loading twice).

    Raises:
        ArtifactError: The artifact cannot be read or loaded by torch.
    """

    def __init__(
        self,
        path: Path,
        *,
        device: torch.device,
        precision: Precision,
        selection: str = 'requested',
        probe: torch.Tensor | None = None,
    ):
        artifact = load_artifact(path, device=device)
        self.metadata = artifact.metadata
        self.sha256 = artifact.sha256
        self.device = device
        module = artifact.module
        self.reference_outputs: dict[str, torch.Tensor] | None = None
        if probe is not None:
            with torch.inference_mode():
                outputs = module(probe.to(device))
            self.reference_outputs = {name: value.float().cpu() for name, value in outputs.items()}
        if precision != 'fp32':
            module = module.to(DTYPES[precision])
        self._module = module
        self.info = BackendInfo(
            name='torch',
            version=f'torch {torch.__version__}',
            target=str(device),
            precision=precision,
            selection=selection,
        )

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The artifact's forward pass (float32 outputs, whatever the weights' dtype)."""
        return typing.cast(dict[str, torch.Tensor], self._module(batch))

    def memory_bytes(self) -> int | None:
        """Bytes allocated by torch on a CUDA device; None on CPU."""
        if self.device.type != 'cuda':
            return None
        return int(torch.cuda.memory_allocated(self.device))
