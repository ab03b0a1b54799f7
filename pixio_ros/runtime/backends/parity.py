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

INT8 artifacts (`pixio-ros quantize`) are held to the tolerances their quantisation gate
accepted them with (their `QuantizationRecord`), in the gate's measures: depth (and the z of
points) as AbsRel, features and embedding as 1 - the smallest cosine similarity (per patch, per
image), confidence within `INT8_CONFIDENCE`. Their reference is ONNX Runtime's CPU provider
running the same INT8 artifact, the runtime the gate scored.

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
from pixio_ros.model.quantization_record import QuantizationRecord
from pixio_ros.runtime.backends.base import MAX_ABS, BackendInfo, ParityResult
from pixio_ros.runtime.errors import EngineError

__all__ = [
    'FP32_RELATIVE',
    'INT8_CONFIDENCE',
    'POINTS_Z',
    'REDUCED_FRACTIONS',
    'abs_rel',
    'compare_int8',
    'compare_outputs',
    'cosines',
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
INT8_CONFIDENCE = 0.05
"""Largest |INT8 - reference| of the 0..1 confidence (the gate does not score it)."""
ABS_REL = 'abs_rel'
ONE_MINUS_COS = '1-cos'
POINTS_Z = 2
"""Channel of z (depth) in a ``(B, 3, H, W)`` point map."""


def probe_batch(input_size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    """The deterministic uint8 ``(batch, H, W, 3)`` image of the start-up check."""
    rng = np.random.default_rng(PROBE_SEED)
    return torch.from_numpy(rng.integers(0, 256, (batch, *input_size, 3), dtype=np.uint8))


def tolerance(
    name: str, reference: torch.Tensor, precision: Precision, max_depth: float | None
) -> tuple[float, str]:
    """(largest allowed max abs difference, unit) of output ``name`` at ``precision``."""
    if precision not in REDUCED_FRACTIONS and precision != 'fp32':
        raise EngineError(f'{precision} outputs are compared with compare_int8, not tolerance()')
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


def abs_rel(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Mean |candidate - reference| / reference over pixels with a positive, finite reference.

    The AbsRel of `pixio_ros.evaluation.metrics.depth_metrics` (a test holds them equal), here
    because the runtime cannot import evaluation; NaN in the candidate makes it infinite.
    """
    ref = reference.detach().double().cpu()
    got = candidate.detach().double().cpu()
    valid = torch.isfinite(ref) & (ref > 0)
    if not bool(valid.any()):
        return 0.0
    if not bool(torch.isfinite(got[valid]).all()):
        return math.inf
    return float(((got[valid] - ref[valid]).abs() / ref[valid]).mean())


def cosines(reference: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Cosine similarity per patch (``(B, C, h, w)``) or per image (``(B, C)``), flattened."""
    ref = reference.detach().double().cpu()
    got = candidate.detach().double().cpu()
    return torch.nn.functional.cosine_similarity(got, ref, dim=1, eps=1e-12).flatten()


def compare_int8(
    reference: Mapping[str, torch.Tensor],
    candidate: Mapping[str, torch.Tensor],
    record: QuantizationRecord,
) -> dict[str, ParityResult]:
    """Per output: the gate's measure of ``candidate`` against ``reference``, and its limit.

    A missing output, a shape mismatch or a NaN compares as an infinite difference.
    """
    results: dict[str, ParityResult] = {}
    for name, ref in reference.items():
        got = candidate.get(name)
        if got is None or tuple(got.shape) != tuple(ref.shape):
            value = math.inf
        elif name == 'depth':
            value = abs_rel(ref, got)
        elif name == 'points':
            value = abs_rel(ref[:, POINTS_Z], got[:, POINTS_Z])
        elif name == 'confidence':
            delta = (got.detach().float().cpu() - ref.detach().float().cpu()).abs()
            value = float(delta.max()) if delta.numel() else 0.0
        else:
            similarity = cosines(ref, got)
            value = 1.0 - float(similarity.min()) if similarity.numel() else 0.0
        if math.isnan(value):
            value = math.inf
        if name in METRIC_OUTPUTS:
            results[name] = ParityResult(value, record.max_abs_rel, '', ABS_REL)
        elif name == 'confidence':
            results[name] = ParityResult(value, INT8_CONFIDENCE, '')
        else:
            results[name] = ParityResult(value, 1.0 - record.min_feature_cos, '', ONE_MINUS_COS)
    return results


def refuse_beyond_tolerance(
    info: BackendInfo, results: Mapping[str, ParityResult], metadata: ArtifactMetadata
) -> None:
    """Raise one EngineError line when any output is beyond its tolerance."""
    bad = {name: result for name, result in results.items() if not result.ok}
    if not bad:
        return
    name, result = max(
        bad.items(), key=lambda item: item[1].max_abs / max(item[1].tolerance, 1e-30)
    )
    unit = f' {result.unit}' if result.unit else ''
    measure = '' if result.measure == MAX_ABS else f'{result.measure} '
    others = f' (and {", ".join(n for n in bad if n != name)})' if len(bad) > 1 else ''
    fix = (
        'use the fp32 artifact, or another backend (README: INT8 quantisation)'
        if metadata.quantization is not None
        else 'use precision fp32 or another backend (README: backends and precision)'
    )
    raise EngineError(
        f'backend {info.name} at {info.precision} on {info.target} differs from '
        f'{info.reference} by {measure}{result.max_abs:.3g}{unit} on {name}{others}, beyond the '
        f'tolerance {result.tolerance:.3g}{unit} for {metadata.size} {metadata.head_kind}; '
        f'refused: {fix}'
    )
