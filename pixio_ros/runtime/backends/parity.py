"""Per-output tolerances of every backend and precision, and the start-up parity check.

The one table of how far a backend's outputs may be from eager torch fp32 (the parity suite in
test/runtime/test_backends_parity.py, `benchmarks/backends.py` and the Engine's start-up check
all use it):

============================ ========================== ============== ==============
output                       measured as                fp32           fp16 / bf16
============================ ========================== ============== ==============
depth, points                max abs, metres            1e-4 x max(1,  1 % / 3 % of
                                                        max abs value) max_depth
confidence (0..1)            max abs                    1e-4           0.01 / 0.02
features, embedding          max abs / output range     1e-4 x max(1,  1 % / 3 % of
                             (max - min of reference)   max abs value) the range
============================ ========================== ============== ==============

fp32 is the export check's rule (`pixio_ros.model.artifact.PARITY_TOLERANCE`): every fp32
runtime is the same arithmetic up to summation order (measured: 4e-6 ONNX Runtime, 5e-6
OpenVINO on vitb16 features up to 4.4). bf16 keeps 8 bits of mantissa: its rounding alone moves
a depth near 10 m by up to 0.03 m, so its depth bound is 3 % of the head's depth range (0.3 m
at 10 m: a weight or kernel error, never rounding); measured on vitb16 features, OpenVINO bf16
is 0.3 % of the range and torch bf16 weights 0.8 %, well inside 3 %.

At start-up the Engine runs a probe image through the chosen backend and through a reference
(`reference_for`): torch fp32 on the same artifact for torch at fp16 / bf16, ONNX Runtime's CPU
provider in fp32 (the ONNX reference runtime, checked against eager at export) for the ONNX
backends. A backend beyond tolerance is refused with one line, never used silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from pixio_ros.model.artifact_format import ArtifactMetadata, Precision
from pixio_ros.runtime.backends.base import BackendInfo, ParityResult
from pixio_ros.runtime.errors import EngineError

__all__ = [
    'FP32_RELATIVE',
    'REDUCED_FRACTIONS',
    'compare_outputs',
    'probe_batch',
    'refuse_beyond_tolerance',
    'tolerance',
]

FP32_RELATIVE = 1e-4
"""fp32: max abs diff relative to max(1, max |reference|), every output."""
REDUCED_FRACTIONS: dict[Precision, dict[str, float]] = {
    'fp16': {'metric': 0.01, 'confidence': 0.01, 'range': 0.01},
    'bf16': {'metric': 0.03, 'confidence': 0.02, 'range': 0.03},
}
"""Half precisions: depth / points as a fraction of max_depth, confidence absolute (it lies in
0..1), features / embedding as a fraction of the reference's range."""
METRIC_OUTPUTS = ('depth', 'points')
PROBE_SEED = 0


def probe_batch(input_size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    """The deterministic uint8 ``(batch, H, W, 3)`` image of the start-up check."""
    rng = np.random.default_rng(PROBE_SEED)
    return torch.from_numpy(rng.integers(0, 256, (batch, *input_size, 3), dtype=np.uint8))


def tolerance(
    name: str, reference: torch.Tensor, precision: Precision, max_depth: float | None
) -> tuple[float, str]:
    """(largest allowed max abs difference, unit) of output ``name`` at ``precision``."""
    ref = reference.detach().float()
    unit = 'm' if name in METRIC_OUTPUTS else ''
    if precision == 'fp32':
        return FP32_RELATIVE * max(1.0, float(ref.abs().max())), unit
    fractions = REDUCED_FRACTIONS[precision]
    if name in METRIC_OUTPUTS:
        depth_range = max_depth if max_depth else max(1.0, float(ref.abs().max()))
        return fractions['metric'] * depth_range, unit
    if name == 'confidence':
        return fractions['confidence'], unit
    spread = float(ref.max() - ref.min()) if ref.numel() else 0.0
    return fractions['range'] * max(spread, FP32_RELATIVE), unit


def compare_outputs(
    reference: Mapping[str, torch.Tensor],
    candidate: Mapping[str, torch.Tensor],
    precision: Precision,
    max_depth: float | None,
) -> dict[str, ParityResult]:
    """Per output of ``reference``: max |candidate - reference| against its tolerance.

    A missing output, a shape mismatch or a NaN compares as an infinite difference.
    """
    results: dict[str, ParityResult] = {}
    for name, ref in reference.items():
        allowed, unit = tolerance(name, ref, precision, max_depth)
        got = candidate.get(name)
        if got is None or tuple(got.shape) != tuple(ref.shape):
            diff = math.inf
        else:
            delta = (got.detach().float().cpu() - ref.detach().float().cpu()).abs()
            diff = float(delta.max()) if delta.numel() else 0.0
            if math.isnan(diff) or bool(torch.isnan(delta).any()):
                diff = math.inf
        results[name] = ParityResult(diff, allowed, unit)
    return results


def refuse_beyond_tolerance(
    info: BackendInfo, results: Mapping[str, ParityResult], metadata: ArtifactMetadata
) -> None:
    """Raise one EngineError line when any output is beyond its tolerance."""
    bad = {name: result for name, result in results.items() if not result.ok}
    if not bad:
        return
    name, result = max(bad.items(), key=lambda item: item[1].max_abs / item[1].tolerance)
    unit = f' {result.unit}' if result.unit else ''
    others = f' (and {", ".join(n for n in bad if n != name)})' if len(bad) > 1 else ''
    raise EngineError(
        f'backend {info.name} at {info.precision} on {info.target} differs from '
        f'{info.reference} by {result.max_abs:.3g}{unit} on {name}{others}, beyond the '
        f'tolerance {result.tolerance:.3g}{unit} for {metadata.size} {metadata.head_kind}; '
        'refused: use precision fp32 or another backend (README: backends and precision)'
    )
