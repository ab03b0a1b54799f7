"""Which layers of a Pixio ONNX artifact stay in floating point when the rest goes to INT8.

Layers are found by the weights they read (the exporter keeps the module paths as initializer
names: ``encoder.patch_embed.proj.weight``, ``head.scratch.output_conv.2.weight``); NNCF then
leaves those nodes unquantised (its ignored scope). The attention softmax needs no group: NNCF's
transformer mode already leaves its output (the probabilities x values MatMul) unquantised
(counted: no QuantizeLinear after any Softmax). The default set was chosen by measurement
(README: INT8 quantisation; benchmarks/quantization_scopes.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from pixio_ros.quantization.errors import QuantizationError

__all__ = ['DEFAULT_KEEP_FLOAT', 'FLOAT_GROUPS', 'float_nodes']

FLOAT_GROUPS: Final[dict[str, str]] = {
    'patch_embed': 'the first layer: the 16x16 patch-embedding convolution on the image',
    'head_output': "the depth head's last layers (DPT output convolutions, the linear head)",
}
"""The layer groups ``--keep-float`` names, and what each one is."""
DEFAULT_KEEP_FLOAT: Final[tuple[str, ...]] = ('head_output',)
"""Kept in float unless asked otherwise (measured: README: INT8 quantisation)."""
_WEIGHT_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    'patch_embed': ('encoder.patch_embed.',),
    'head_output': ('head.scratch.output_conv.', 'head.conv.'),
}
_QUANTIZABLE: Final = frozenset({'Conv', 'ConvTranspose', 'MatMul', 'Gemm'})


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` if each is in `FLOAT_GROUPS`, else a one-line error naming the choices."""
    chosen = tuple(dict.fromkeys(groups))
    unknown = [group for group in chosen if group not in FLOAT_GROUPS]
    if unknown:
        raise QuantizationError(
            f'--keep-float {", ".join(unknown)} is not a layer group; choose from '
            f'{", ".join(FLOAT_GROUPS)} (or none)'
        )
    return chosen


def float_nodes(model: Any, groups: Sequence[str]) -> dict[str, list[str]]:
    """Per group, the names of the ONNX nodes of ``model`` (an onnx.ModelProto) it keeps float.

    A group with no node in this model (no head: no ``head_output``) maps to an empty list.
    """
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    found: dict[str, list[str]] = {group: [] for group in check_groups(groups)}
    for node in graph.node:
        if node.op_type not in _QUANTIZABLE:
            continue
        weights = [name for name in node.input if name in initializers]
        for group in found:
            if any(weight.startswith(_WEIGHT_PREFIXES[group]) for weight in weights):
                found[group].append(node.name)
    return found
