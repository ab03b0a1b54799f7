"""Post-training INT8 quantisation of an ONNX artifact, calibrated on recordings and gated.

`quantize_artifact` reads the fp32 ONNX artifact, picks calibration and held-out frames
(`pixio_ros.quantization.frames`), has NNCF compute activation ranges on the calibration frames
(transformer mode: SmoothQuant, ranges per token channel; the layer groups of
`pixio_ros.quantization.scope` left float) and writes quantise / dequantise pairs into the
graph. The result is scored against its source on the held-out frames
(`pixio_ros.quantization.gate`); only an artifact within the gate is written, with the source's
metadata plus a `QuantizationRecord` (dtype ``int8``). Nothing is written otherwise.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from pixio_ros.files import OutputExistsError, file_sha256, path_sha256, write_atomically
from pixio_ros.model.artifact_format import (
    INT8,
    METADATA_FILE,
    ArtifactError,
    ArtifactMetadata,
    read_metadata,
)
from pixio_ros.model.quantization_record import QuantizationRecord
from pixio_ros.quantization.errors import QuantizationError
from pixio_ros.quantization.frames import (
    BagFrames,
    DatasetFrames,
    Frames,
    FrameSource,
    check_counts,
    evenly,
    frames_sha256,
    read_frames,
)
from pixio_ros.quantization.gate import GateResult, score_outputs
from pixio_ros.quantization.scope import DEFAULT_KEEP_FLOAT, check_groups, float_nodes

__all__ = [
    'DEFAULT_FRAMES',
    'DEFAULT_IMAGE_TOPIC',
    'DEFAULT_MAX_ABS_REL',
    'DEFAULT_MIN_FEATURE_COS',
    'DEFAULT_VALIDATE_FRAMES',
    'GateRefusedError',
    'QuantizeRequest',
    'QuantizeResult',
    'quantize_artifact',
]

DEFAULT_FRAMES = 64
"""Calibration frames (NNCF's statistics settle well before its default 300 on these models)."""
DEFAULT_VALIDATE_FRAMES = 16
DEFAULT_MAX_ABS_REL = 0.01
DEFAULT_MIN_FEATURE_COS = 0.99
DEFAULT_IMAGE_TOPIC = '/camera/color/image_raw'
"""realsense2_camera's colour topic (and the sample bag's)."""
SCHEME = 'post-training, model_type transformer, preset performance, target CPU'
QUANTIZE_EXTRA_HINT = "pip install 'pixio_ros[quantize]' (nncf, with the onnx extra)"
NNCF_LOGGER = 'nncf'
NYU_CALIBRATION_SPLIT = 'train'
"""The labeled NYUv2 .mat's split calibration reads by default (its test split is for eval)."""


class GateRefusedError(QuantizationError):
    """The INT8 artifact is beyond the gate's tolerances; nothing was written."""


@dataclass(frozen=True)
class QuantizeRequest:
    """What `pixio-ros quantize` was asked.

    Attributes:
        artifact: The fp32 ONNX artifact.
        output: Where the INT8 artifact goes.
        calibrate: Bags (or, with ``dataset``, the dataset's PATH) to calibrate on.
        image_topic: The colour topic of the bags.
        dataset: Read ``calibrate`` as this public dataset instead of bags.
        split: The dataset split (NYUv2's labeled .mat).
        validate: Bags for the gate; empty = held-out frames of ``calibrate``.
        frames: Calibration frames.
        validate_frames: Held-out frames the gate scores.
        max_abs_rel: The gate's largest depth AbsRel against fp32.
        min_feature_cos: The gate's smallest patch-feature and embedding cosine.
        keep_float: Layer groups left in floating point (`pixio_ros.quantization.scope`).
        force: Replace an existing ``output``.
    """

    artifact: Path
    output: Path
    calibrate: tuple[Path, ...]
    image_topic: str = DEFAULT_IMAGE_TOPIC
    dataset: str | None = None
    split: str | None = None
    validate: tuple[Path, ...] = ()
    frames: int = DEFAULT_FRAMES
    validate_frames: int = DEFAULT_VALIDATE_FRAMES
    max_abs_rel: float = DEFAULT_MAX_ABS_REL
    min_feature_cos: float = DEFAULT_MIN_FEATURE_COS
    keep_float: tuple[str, ...] = DEFAULT_KEEP_FLOAT
    force: bool = False


@dataclass(frozen=True)
class QuantizeResult:
    """A written INT8 artifact: its path, metadata (with the record) and the gate's result."""

    path: Path
    metadata: ArtifactMetadata
    gate: GateResult


def _check_request(request: QuantizeRequest) -> ArtifactMetadata:
    """The source's metadata, or one line for a request that must fail before any work."""
    if request.frames < 1 or request.validate_frames < 1:
        raise QuantizationError(
            f'--frames {request.frames} and --validate-frames {request.validate_frames} must be '
            'at least 1'
        )
    if not (request.max_abs_rel > 0 and 0 < request.min_feature_cos <= 1):
        raise QuantizationError(
            f'--max-absrel {request.max_abs_rel} must be > 0 and --min-feature-cos '
            f'{request.min_feature_cos} in (0, 1]'
        )
    if not request.calibrate:
        raise QuantizationError('--calibrate needs at least one bag (or the --dataset PATH)')
    if request.dataset is not None and (len(request.calibrate) != 1 or request.validate):
        raise QuantizationError(
            f'--dataset {request.dataset} reads one PATH given to --calibrate, and its own '
            'held-out frames (no --validate)'
        )
    check_groups(request.keep_float)
    try:
        metadata = read_metadata(request.artifact)
    except ArtifactError as err:
        raise QuantizationError(str(err)) from err
    if metadata.format != 'onnx':
        raise QuantizationError(
            f'{request.artifact} is a {metadata.format} artifact; quantize reads ONNX artifacts: '
            'export one with `pixio-ros export ... -o model.onnx`'
        )
    if metadata.dtype != 'fp32':
        raise QuantizationError(
            f'{request.artifact} is {metadata.dtype} already; quantize its fp32 source'
        )
    if request.output.resolve() == request.artifact.resolve():
        raise QuantizationError(
            f'-o {request.output} is the source artifact; write the INT8 one beside it '
            '(e.g. model.int8.onnx)'
        )
    if request.output.exists() and not request.force:
        raise OutputExistsError(
            f'{request.output} exists already, not overwriting; pass --force to replace it'
        )
    missing = [name for name in ('nncf', 'onnx', 'onnxruntime') if not _importable(name)]
    if missing:
        raise QuantizationError(
            f'quantize needs {", ".join(missing)}, which is not installed; {QUANTIZE_EXTRA_HINT}'
        )
    return metadata


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _sources(request: QuantizeRequest) -> tuple[list[FrameSource], list[FrameSource]]:
    """(calibration sources, validation sources; empty = held out of the calibration ones)."""
    if request.dataset is not None:
        path, split = request.calibrate[0], request.split
        if split is None and request.dataset == 'nyuv2' and path.suffix.lower() == '.mat':
            split = NYU_CALIBRATION_SPLIT
        return [DatasetFrames(request.dataset, path, split)], []
    calibration: list[FrameSource] = [BagFrames(p, request.image_topic) for p in request.calibrate]
    validation: list[FrameSource] = [BagFrames(p, request.image_topic) for p in request.validate]
    return calibration, validation


def pick_frames(
    request: QuantizeRequest, input_size: tuple[int, int]
) -> tuple[Frames, Frames, str]:
    """(calibration frames, held-out frames, where the held-out ones came from)."""
    calibration, validation = _sources(request)
    if validation:
        everything = check_counts(calibration, request.frames, 'calibration', option='--frames')
        held = check_counts(
            validation, request.validate_frames, '--validate', option='--validate-frames'
        )
        calibrated = read_frames(calibration, evenly(everything, request.frames), input_size)
        held_out = read_frames(validation, evenly(held, request.validate_frames), input_size)
        return calibrated, held_out, ', '.join(source.name for source in validation)
    needed = request.frames + request.validate_frames
    everything = check_counts(
        calibration,
        needed,
        f'calibration ({request.frames}) plus held-out ({request.validate_frames})',
        option='--frames / --validate-frames (or pass --validate BAG)',
    )
    picks = evenly(everything, request.frames)
    chosen = set(picks)
    rest = [index for index in everything if index not in chosen]
    calibrated = read_frames(calibration, picks, input_size)
    held_out = read_frames(calibration, evenly(rest, request.validate_frames), input_size)
    return calibrated, held_out, 'held-out frames of the calibration recordings'


def _check_decoded(frames: Frames, what: str) -> None:
    if not frames.inputs:
        raise QuantizationError(
            f'none of the {what} frames picked from {", ".join(frames.sources)} could be decoded '
            f'({frames.skipped} failed); check --image-topic'
        )


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF's progress bars and INFO lines off (the command prints its own summary)."""
    logger = logging.getLogger(NNCF_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_model(model: Any, frames: Frames, groups: Sequence[str]) -> tuple[Any, list[str]]:
    """(quantised onnx.ModelProto, groups that matched nodes): NNCF on the calibration frames."""
    import nncf

    nodes = float_nodes(model, groups)
    names = [name for group in nodes.values() for name in group]
    dataset = nncf.Dataset(frames.inputs, lambda frame: {'image': frame})
    with _quiet_nncf():
        quantized = nncf.quantize(
            model,
            dataset,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            target_device=nncf.TargetDevice.CPU,
            subset_size=len(frames.inputs),
            model_type=nncf.ModelType.TRANSFORMER,
            ignored_scope=nncf.IgnoredScope(names=names, validate=False),
        )
    return quantized, [group for group, found in nodes.items() if found]


def run_frames(backend: Any, frames: Frames) -> list[dict[str, torch.Tensor]]:
    """Each frame's outputs on ``backend`` (copies, as float32 on the CPU)."""
    outputs = []
    with torch.inference_mode():
        for frame in frames.inputs:
            result = backend(torch.from_numpy(frame))
            outputs.append({name: value.float().cpu().clone() for name, value in result.items()})
    return outputs


def _save(model: Any, path: Path, metadata_json: str) -> None:
    import onnx

    entries = [entry for entry in model.metadata_props if entry.key != METADATA_FILE]
    del model.metadata_props[:]
    model.metadata_props.extend(entries)
    model.metadata_props.add(key=METADATA_FILE, value=metadata_json)
    onnx.save(model, str(path))


def quantize_artifact(request: QuantizeRequest) -> QuantizeResult:
    """Quantise, gate and write ``request.output`` (untouched unless the gate passes).

    Raises:
        QuantizationError: A bad request (not ONNX, a bag without the topic, too few frames,
            missing nncf), each one line.
        GateRefusedError: The INT8 artifact is beyond the gate; the line gives the figures.
        OutputExistsError: ``output`` exists and ``force`` is not set.
    """
    import nncf
    import onnx

    from pixio_ros.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    metadata = _check_request(request)
    calibrated, held_out, validation_source = pick_frames(request, metadata.input_size)
    _check_decoded(calibrated, 'calibration')
    _check_decoded(held_out, 'held-out')
    source_sha = file_sha256(request.artifact)
    quantized, kept = quantize_model(
        onnx.load(str(request.artifact)), calibrated, request.keep_float
    )
    cpu = torch.device('cpu')
    source = OnnxRuntimeBackend(
        request.artifact, metadata, source_sha, device=cpu, precision='fp32'
    )
    reference = run_frames(source, held_out)
    record_base = QuantizationRecord(
        tool=f'nncf {nncf.__version__}',
        scheme=SCHEME,
        source_sha256=source_sha,
        calibration_source=calibrated.sources,
        calibration_frames=len(calibrated.inputs),
        calibration_sha256=frames_sha256(calibrated.inputs),
        source_sha256s={str(p): path_sha256(p) for p in request.calibrate},
        validation_source=validation_source,
        validation_frames=len(held_out.inputs),
        kept_float=tuple(kept),
        max_abs_rel=request.max_abs_rel,
        min_feature_cos=request.min_feature_cos,
    )
    outcome: dict[str, Any] = {}

    def save_and_gate(temp: Path) -> None:
        """Write the INT8 graph, score it from the file as the Engine runs it, then embed."""
        _save(quantized, temp, metadata.to_json())
        candidate = OnnxRuntimeBackend(temp, metadata, '', device=cpu, precision=INT8)
        gate = score_outputs(
            reference,
            run_frames(candidate, held_out),
            max_abs_rel=request.max_abs_rel,
            min_feature_cos=request.min_feature_cos,
        )
        if not gate.passed:
            raise GateRefusedError(
                f'INT8 {request.artifact.name} refused, not writing {request.output}: '
                f'{"; ".join(gate.failures)} ({gate.line()}; {len(held_out.inputs)} held-out '
                'frames); calibrate on more or more varied frames, keep more layers float '
                '(--keep-float), or use the fp32 artifact'
            )
        record = replace(record_base, figures=dict(gate.figures))
        final = replace(metadata, dtype=INT8, quantization=record, parity_max_abs_diff=None)
        _save(quantized, temp, final.to_json())
        if read_metadata(temp) != final:
            raise QuantizationError(f'{temp} did not read back the metadata it was written with')
        outcome['metadata'], outcome['gate'] = final, gate

    write_atomically(request.output, save_and_gate)
    return QuantizeResult(request.output, outcome['metadata'], outcome['gate'])
