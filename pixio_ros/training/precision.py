"""Mixed precision (`--amp`) for everything a training step runs: frozen encoder and head."""

from __future__ import annotations

import contextlib

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
"""`--amp` choices besides 'none' and the autocast dtype each selects."""


def amp_context(amp: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """torch.autocast for ``amp`` on ``device``; a no-op context for 'none'.

    The encoder's forward dominates the cost of a frozen-encoder step, so the encoder (training,
    feature cache and validation) runs under the same context as the head.
    """
    if amp in AMP_DTYPES:
        return torch.autocast(device.type, dtype=AMP_DTYPES[amp])
    return contextlib.nullcontext()
