"""What an INT8 artifact records of its quantisation: source, calibration, float layers, gate.

Part of the artifact format (`pixio_ros.model.artifact_format` embeds it as the metadata field
``quantization``, present exactly when ``dtype`` is ``int8``). `pixio-ros quantize` writes it;
`pixio-ros info` shows it; the Engine's start-up parity check reads the gate's tolerances from
it, so every backend running the artifact is held to the accuracy the quantisation was accepted
with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pixio_ros.model.errors import ModelError

__all__ = ['GATE_FIGURES', 'QuantizationRecord']

GATE_FIGURES = (
    'depth_abs_rel',
    'depth_delta1',
    'feature_cos_min',
    'feature_cos_p5',
    'embedding_cos_min',
)
"""The gate's figures, INT8 against its fp32 source on held-out frames (depth ones only with a
depth output)."""
_HINT = 'quantize it again: `pixio-ros quantize MODEL.onnx --calibrate BAG -o MODEL.int8.onnx`'


@dataclass(frozen=True)
class QuantizationRecord:
    """How an INT8 artifact was made and how close it came to its fp32 source.

    Attributes:
        tool: The quantiser and its version (``nncf 3.4.0``).
        scheme: What it was asked for (model type, preset, target device).
        source_sha256: sha256 of the fp32 ONNX artifact it was quantised from.
        calibration_source: The recordings (or dataset) the activation ranges came from.
        calibration_frames: Frames the ranges were calibrated on.
        calibration_sha256: sha256 of the calibration inputs (the uint8 frames at input size,
            in order), so a re-run on the same recordings can be recognised.
        source_sha256s: sha256 of each calibration file (a bag directory's files together).
        validation_source: Where the held-out frames of the gate came from.
        validation_frames: Held-out frames the gate scored.
        kept_float: Layer groups left in floating point (`pixio_ros.quantization.scope`).
        max_abs_rel: The gate's largest depth AbsRel against fp32.
        min_feature_cos: The gate's smallest patch-feature (and embedding) cosine.
        figures: The gate's measured figures (`GATE_FIGURES`).
    """

    tool: str
    scheme: str
    source_sha256: str
    calibration_source: tuple[str, ...]
    calibration_frames: int
    calibration_sha256: str
    validation_source: str
    validation_frames: int
    kept_float: tuple[str, ...]
    max_abs_rel: float
    min_feature_cos: float
    figures: Mapping[str, float] = field(default_factory=dict, hash=False)
    source_sha256s: Mapping[str, str] = field(default_factory=dict, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-shaped (lists for tuples), as embedded in the artifact's metadata."""
        return {
            'tool': self.tool,
            'scheme': self.scheme,
            'source_sha256': self.source_sha256,
            'calibration_source': list(self.calibration_source),
            'calibration_frames': self.calibration_frames,
            'calibration_sha256': self.calibration_sha256,
            'source_sha256s': dict(self.source_sha256s),
            'validation_source': self.validation_source,
            'validation_frames': self.validation_frames,
            'kept_float': list(self.kept_float),
            'max_abs_rel': self.max_abs_rel,
            'min_feature_cos': self.min_feature_cos,
            'figures': dict(self.figures),
        }

    def summary(self) -> str:
        """One line: the gate's figures against its tolerances, for logs, info and errors."""
        figures = ', '.join(f'{name} {value:.4g}' for name, value in self.figures.items())
        return (
            f'{figures} (gate: depth_abs_rel <= {self.max_abs_rel:g}, feature / embedding '
            f'cos >= {self.min_feature_cos:g}; {self.validation_frames} held-out frames)'
        )

    @classmethod
    def from_dict(cls, data: Any, *, source: str = 'artifact') -> QuantizationRecord:
        """Check and type the embedded dict.

        Raises:
            ModelError: A field missing or of the wrong type; names the field and the fix.
        """

        def bad(name: str, expected: str) -> ModelError:
            shown = repr(data.get(name)) if isinstance(data, dict) else repr(data)
            return ModelError(
                f'{source} metadata field quantization.{name} is {shown[:80]}, expected '
                f'{expected}; {_HINT}'
            )

        if not isinstance(data, dict):
            raise bad('', 'an object')

        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise bad(name, 'a non-empty string')
            return value

        def count(name: str) -> int:
            value = data.get(name)
            if type(value) is not int or value <= 0:
                raise bad(name, 'a positive integer')
            return value

        def number(name: str) -> float:
            value = data.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise bad(name, 'a number')
            return float(value)

        def texts(name: str) -> tuple[str, ...]:
            value = data.get(name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad(name, 'a list of strings')
            return tuple(value)

        figures = data.get('figures')
        if not isinstance(figures, dict) or not all(
            name in GATE_FIGURES and isinstance(value, (int, float)) and not isinstance(value, bool)
            for name, value in figures.items()
        ):
            raise bad('figures', f'an object of numbers named from {", ".join(GATE_FIGURES)}')
        shas = data.get('source_sha256s', {})
        if not isinstance(shas, dict) or not all(isinstance(v, str) for v in shas.values()):
            raise bad('source_sha256s', 'an object of file -> sha256')
        return cls(
            tool=text('tool'),
            scheme=text('scheme'),
            source_sha256=text('source_sha256'),
            calibration_source=texts('calibration_source'),
            calibration_frames=count('calibration_frames'),
            calibration_sha256=text('calibration_sha256'),
            validation_source=text('validation_source'),
            validation_frames=count('validation_frames'),
            kept_float=texts('kept_float'),
            max_abs_rel=number('max_abs_rel'),
            min_feature_cos=number('min_feature_cos'),
            figures=MappingProxyType({name: float(v) for name, v in figures.items()}),
            source_sha256s=MappingProxyType(dict(shas)),
        )
