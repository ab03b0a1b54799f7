"""The accuracy gate: an INT8 artifact scored against its fp32 source in the units users care about.

On held-out frames both artifacts run on ONNX Runtime's CPU provider (the reference runtime; the
Engine holds every other backend to it at start-up). Depth is scored as the depth protocol scores
a prediction against ground truth (`pixio_ros.evaluation.metrics.depth_metrics`, the fp32 depth
standing in for the ground truth): AbsRel and delta1 per frame, averaged over frames. A depth
model can stay within a small max difference and still bend a wall by a few per cent; AbsRel
sees that. Features are scored by cosine similarity per patch (the smallest and the 5th
percentile over every patch of every frame), the embedding per frame (the smallest): that is
what a policy reading them compares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pixio_ros.evaluation.metrics import depth_metrics
from pixio_ros.runtime.backends.parity import POINTS_Z, cosines

__all__ = ['GateResult', 'score_outputs']

FEATURE_PERCENTILE = 5.0


@dataclass(frozen=True)
class GateResult:
    """The gate's figures and verdict.

    Attributes:
        figures: `pixio_ros.model.quantization_record.GATE_FIGURES` that apply (depth ones only
            with a depth or points output, feature ones with features, embedding with it).
        max_abs_rel: Largest accepted depth AbsRel.
        min_feature_cos: Smallest accepted patch-feature and embedding cosine.
    """

    figures: Mapping[str, float]
    max_abs_rel: float
    min_feature_cos: float

    @property
    def failures(self) -> list[str]:
        """``depth_abs_rel 0.031 > 0.01``-style phrases for every figure beyond its limit."""
        out = []
        abs_rel = self.figures.get('depth_abs_rel')
        if abs_rel is not None and not abs_rel <= self.max_abs_rel:
            out.append(f'depth_abs_rel {abs_rel:.4g} > {self.max_abs_rel:g}')
        for name in ('feature_cos_min', 'embedding_cos_min'):
            value = self.figures.get(name)
            if value is not None and not value >= self.min_feature_cos:
                out.append(f'{name} {value:.4g} < {self.min_feature_cos:g}')
        return out

    @property
    def passed(self) -> bool:
        """Every figure within its limit (a NaN is not)."""
        return not self.failures

    def line(self) -> str:
        """Every figure on one line, for the command's output and its refusal."""
        return ', '.join(f'{name} {value:.4g}' for name, value in self.figures.items())


def _depth(outputs: Mapping[str, torch.Tensor]) -> np.ndarray | None:
    """The frame's (H, W) depth in metres: ``depth``, else the z of ``points``; None without."""
    if 'depth' in outputs:
        return outputs['depth'][0, 0].double().numpy()
    if 'points' in outputs:
        return outputs['points'][0, POINTS_Z].double().numpy()
    return None


def _depth_figures(
    reference: Sequence[Mapping[str, torch.Tensor]],
    candidate: Sequence[Mapping[str, torch.Tensor]],
) -> dict[str, float]:
    per_frame = []
    for ref_out, got_out in zip(reference, candidate, strict=True):
        ref, got = _depth(ref_out), _depth(got_out)
        if ref is None or got is None:
            return {}
        valid = np.isfinite(ref) & (ref > 0)
        if not np.isfinite(got[valid]).all() or not (got[valid] > 0).all():
            return {'depth_abs_rel': math.inf, 'depth_delta1': 0.0}
        per_frame.append(depth_metrics(got[valid], ref[valid]))
    return {
        'depth_abs_rel': float(np.mean([m['abs_rel'] for m in per_frame])),
        'depth_delta1': float(np.mean([m['delta1'] for m in per_frame])),
    }


def _cosine_figures(
    name: str,
    reference: Sequence[Mapping[str, torch.Tensor]],
    candidate: Sequence[Mapping[str, torch.Tensor]],
) -> torch.Tensor | None:
    if name not in reference[0]:
        return None
    values = torch.cat(
        [cosines(r[name], c[name]) for r, c in zip(reference, candidate, strict=True)]
    )
    return torch.nan_to_num(values, nan=-1.0)


def score_outputs(
    reference: Sequence[Mapping[str, torch.Tensor]],
    candidate: Sequence[Mapping[str, torch.Tensor]],
    *,
    max_abs_rel: float,
    min_feature_cos: float,
) -> GateResult:
    """The gate's figures of ``candidate`` (INT8) against ``reference`` (fp32), frame by frame.

    Args:
        reference: The fp32 source's outputs, one dict of ``(1, ...)`` tensors per frame.
        candidate: The INT8 artifact's, on the same frames.
        max_abs_rel: Largest accepted depth AbsRel.
        min_feature_cos: Smallest accepted patch-feature and embedding cosine.
    """
    figures: dict[str, float] = _depth_figures(reference, candidate)
    features = _cosine_figures('features', reference, candidate)
    if features is not None:
        figures['feature_cos_min'] = float(features.min())
        figures['feature_cos_p5'] = float(np.percentile(features.numpy(), FEATURE_PERCENTILE))
    embedding = _cosine_figures('embedding', reference, candidate)
    if embedding is not None:
        figures['embedding_cos_min'] = float(embedding.min())
    return GateResult(figures, max_abs_rel, min_feature_cos)
