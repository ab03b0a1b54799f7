"""Export a PixioNet as one artifact file with embedded metadata, checked against eager.

What an artifact file is (formats, metadata, detection, loading, the random-init rule) lives in
`pixio_ros.model.artifact_format`; this module only compiles, checks parity and saves, and its
reload check loads the file exactly as the Engine will: TorchScript and torch.export through
`artifact_format.load_artifact`, ONNX through the Engine's ONNX backend
(`pixio_ros.runtime.backends`, ONNX Runtime's CPU provider, the ONNX reference runtime).

ONNX artifacts come from the torch.onnx dynamo exporter (opset `ONNX_OPSET`, needs onnxscript:
the ``onnx`` extra) with dynamic batch, height and width, in fp32 only: the backends choose the
precision they compute in at run time (bf16 on OpenVINO, fp16 on TensorRT).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from pixio_ros.files import write_atomically
from pixio_ros.model.artifact_format import (
    DTYPES,
    FORMAT_VERSION,
    FORMATS,
    METADATA_FILE,
    ONNX_MIN_OPSET,
    ArtifactFormat,
    ArtifactMetadata,
    Precision,
    load_artifact,
    quiet_torchscript,
    suffix_conflict,
)
from pixio_ros.model.checkpoints import checkpoint_sha256
from pixio_ros.model.errors import ModelError
from pixio_ros.model.network import PixioNet
from pixio_ros.model.sizes import IMAGENET_MEAN, IMAGENET_STD, PATCH_SIZE

PARITY_TOLERANCE: dict[Precision, float] = {'fp32': 1e-4, 'fp16': 1e-2, 'bf16': 5e-2}
"""Largest allowed |compiled - eager| relative to max(1, |eager|), per dtype."""
FEATURE_LAYOUT = (
    'features: [B, C, H/16, W/16] float32, last-block patch tokens after the final LayerNorm, '
    'row-major patch grid; embedding: [B, C] float32, mean of the 8 class tokens after the final '
    'LayerNorm'
)
EXPORT_MAX_GRID = 512
"""Largest patch grid side (8192 px) a torch.export artifact accepts."""
EXPORT_MAX_BATCH = 64
CHECK_BATCH = 2
"""Batch of the random parity-check input (2 so that torch.export keeps the batch dynamic)."""
ONNX_OPSET = ONNX_MIN_OPSET
"""Opset of the ONNX artifacts (18: what the dynamo exporter targets, OpenVINO and ORT read)."""
ONNX_INPUT = 'image'
ONNX_MAX_BYTES = (2 << 30) - (64 << 20)
"""Largest weights of a single-file ONNX artifact: protobuf's 2 GiB, less room for the graph."""
ONNX_EXTRA_HINT = "pip install 'pixio_ros[onnx]' (onnx, onnxscript, onnxruntime)"
ONNX_EXPORT_LOGGERS = ('torch.onnx', 'onnx_ir', 'onnxscript')


def build_metadata(
    net: PixioNet,
    *,
    input_size: tuple[int, int],
    fmt: ArtifactFormat,
    dtype: Precision,
    sources: Mapping[str, str | os.PathLike[str]] | None,
    encoder_pretrained: bool,
    head_trained: bool,
) -> ArtifactMetadata:
    """The metadata embedded in an artifact: everything a consumer needs without the model code."""
    return ArtifactMetadata(
        format_version=FORMAT_VERSION,
        format=fmt,
        size=net.encoder.size_name,
        embed_dim=net.encoder.embed_dim,
        patch_size=net.encoder.patch_size,
        input_size=(int(input_size[0]), int(input_size[1])),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        head_kind=net.head_kind,
        outputs=tuple(net.output_keys),
        max_depth=net.max_depth,
        encoder_pretrained=bool(encoder_pretrained),
        head_trained=bool(head_trained),
        feature_layout=FEATURE_LAYOUT,
        dtype=dtype,
        torch_version=torch.__version__,
        sources={name: checkpoint_sha256(path) for name, path in (sources or {}).items()},
    )


def max_output_difference(
    reference: Mapping[str, Tensor], candidate: Mapping[str, Tensor]
) -> tuple[float, float]:
    """Max |candidate - reference| over all outputs, absolute and relative to max(1, |ref|)."""
    if set(reference) != set(candidate):
        raise ModelError(f'output keys differ: {sorted(reference)} vs {sorted(candidate)}.')
    worst_abs = 0.0
    worst_rel = 0.0
    for key, ref in reference.items():
        diff = (candidate[key].float() - ref.float()).abs().max().item()
        scale = max(1.0, ref.float().abs().max().item())
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / scale)
    return worst_abs, worst_rel


def _on(net: PixioNet, device: torch.device, dtype: torch.dtype) -> PixioNet:
    """``net`` in eval mode on ``device`` / ``dtype``; copied only when it must change.

    Copying a vit5b16 would double 20 GB of weights, so a network already in place is used as
    it is (and the caller's network is never converted in place).
    """
    params = list(net.parameters())
    in_place = all(p.device == device and p.dtype == dtype for p in params)
    if in_place:
        return net.eval()
    return copy.deepcopy(net).eval().to(device=device, dtype=dtype)


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    """Dynamic batch, and height and width in whole patches, for torch.export and ONNX."""
    grid_h = torch.export.Dim('grid_h', min=1, max=EXPORT_MAX_GRID)
    grid_w = torch.export.Dim('grid_w', min=1, max=EXPORT_MAX_GRID)
    batch = torch.export.Dim('batch', min=1, max=EXPORT_MAX_BATCH)
    return {ONNX_INPUT: {0: batch, 1: PATCH_SIZE * grid_h, 2: PATCH_SIZE * grid_w}}


@contextlib.contextmanager
def _quiet_onnx_export() -> Iterator[None]:
    """Keep the ONNX exporter's notes (optional torchvision ops, pytree deprecations) quiet."""
    loggers = [logging.getLogger(name) for name in ONNX_EXPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            warnings.simplefilter('ignore', DeprecationWarning)
            warnings.simplefilter('ignore', UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _compile(net: PixioNet, fmt: ArtifactFormat, example: Tensor) -> Any:
    """TorchScript module, ExportedProgram or ONNXProgram for ``net`` (dynamic B, H, W)."""
    if fmt == 'torchscript':
        with quiet_torchscript():
            return torch.jit.script(net)
    if fmt == 'onnx':
        with _quiet_onnx_export():
            return torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                opset_version=ONNX_OPSET,
                dynamic_shapes=_dynamic_shapes(),
                input_names=[ONNX_INPUT],
                output_names=list(net.output_keys),
                external_data=False,
                verbose=False,
            )
    return torch.export.export(net, (example,), dynamic_shapes=_dynamic_shapes())


def _runnable(compiled: Any, fmt: ArtifactFormat, names: list[str]) -> Callable[..., Any]:
    """The compiled network as a callable returning the output dict."""
    if fmt == 'torchscript':
        return compiled
    if fmt == 'export':
        return compiled.module()

    def run_onnx(image: Tensor) -> dict[str, Tensor]:
        with _quiet_onnx_export():
            return dict(zip(names, compiled(image), strict=True))

    return run_onnx


def _check_onnx_export(net: PixioNet, dtype: Precision) -> None:
    """Refuse what an ONNX artifact cannot be, before minutes of exporting."""
    if dtype != 'fp32':
        raise ModelError(
            f'an ONNX artifact is exported in fp32, not {dtype}: its backends choose the '
            'precision at run time (precision bf16 on OpenVINO with native bf16, fp16 on '
            'TensorRT); export with --dtype fp32'
        )
    weight_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    if weight_bytes > ONNX_MAX_BYTES:
        raise ModelError(
            f'a {net.encoder.size_name} network has {weight_bytes / (1 << 30):.1f} GiB of '
            'weights, more than one ONNX file holds (2 GiB protobuf limit); export it as '
            'TorchScript or torch.export (-o model.ts / model.pt2)'
        )
    missing = [name for name in ('onnx', 'onnxscript', 'onnxruntime') if not _importable(name)]
    if missing:
        raise ModelError(
            f'--format onnx needs {", ".join(missing)}, which is not installed; {ONNX_EXTRA_HINT}'
        )


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _save(compiled: Any, fmt: ArtifactFormat, path: Path, metadata_json: str) -> None:
    """Write through a stream, so that any file name works (torch.export wants .pt2 on paths)."""
    if fmt == 'onnx':
        compiled.model.metadata_props[METADATA_FILE] = metadata_json
        with _quiet_onnx_export():
            compiled.save(path, external_data=False)
        return
    extra = {METADATA_FILE: metadata_json}
    with path.open('wb') as stream:
        if fmt == 'torchscript':
            with quiet_torchscript():
                torch.jit.save(compiled, stream, _extra_files=extra)
        else:
            torch.export.save(compiled, stream, extra_files=extra)


_T = TypeVar('_T', bound=str)


def _one_of(value: str, choices: tuple[_T, ...], what: str) -> _T:
    for choice in choices:
        if value == choice:
            return choice
    raise ModelError(f'unknown {what} {value!r}; expected one of {", ".join(choices)}.')


def _check_request(
    net: PixioNet,
    path: Path,
    artifact_format: ArtifactFormat,
    precision: Precision,
    input_size: tuple[int, int],
    device: str,
    sources: Mapping[str, str | os.PathLike[str]] | None,
    *,
    force: bool,
) -> tuple[int, int]:
    """(H, W) of the export, or ModelError for a request that must fail before any work."""
    conflict = suffix_conflict(path, artifact_format)
    if conflict is not None:
        raise ModelError(f'{conflict}.')
    height, width = (int(side) for side in input_size)
    if height <= 0 or width <= 0 or height % PATCH_SIZE or width % PATCH_SIZE:
        raise ModelError(
            f'input size {height}x{width} must be positive multiples of {PATCH_SIZE}; '
            f'e.g. {max(PATCH_SIZE, height // PATCH_SIZE * PATCH_SIZE)}x'
            f'{max(PATCH_SIZE, width // PATCH_SIZE * PATCH_SIZE)}.'
        )
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ModelError(
            f'device {device!r} requested but CUDA is not available; use --device cpu.'
        )
    if path.exists() and not force:
        raise ModelError(f'{path} exists already, not overwriting; pass --force to replace it.')
    for name, source in (sources or {}).items():
        if not Path(source).exists():
            raise ModelError(f'source {name!r} ({source}) does not exist.')
    if artifact_format == 'onnx':
        _check_onnx_export(net, precision)
    return height, width


def export_artifact(
    net: PixioNet,
    path: str | os.PathLike[str],
    *,
    input_size: tuple[int, int],
    fmt: str = 'torchscript',
    dtype: str = 'fp32',
    device: str = 'cpu',
    sources: Mapping[str, str | os.PathLike[str]] | None = None,
    encoder_pretrained: bool,
    head_trained: bool,
    force: bool = False,
) -> ArtifactMetadata:
    """Compile ``net`` into one artifact file with embedded metadata, checked against eager.

    The file is written to a temporary name next to ``path``, reloaded as the Engine loads it
    (`artifact_format.load_artifact`; an ONNX file on the Engine's onnxruntime backend), run on
    a random uint8 batch at ``input_size`` and compared with the eager network; only an
    artifact within `PARITY_TOLERANCE` replaces ``path``.

    Args:
        net: The network to export (set to eval mode; converted on a copy if its device or
            dtype differ from ``device`` / ``dtype``).
        path: Output file. Loading reads the content, so any name works, except the
            conventional suffix of ANOTHER format (``.pt2``, ``.ts``, ``.onnx``), which would
            mislead people and is refused before anything is written.
        input_size: (H, W) the consumer should resize to; multiples of 16.
        fmt: 'torchscript', 'export' or 'onnx' (needs the ``onnx`` extra; fp32 only).
        dtype: 'fp32', 'fp16' or 'bf16' weights and activations.
        device: Device the artifact is compiled and checked on ('cpu', 'cuda').
        sources: Named source checkpoints (files or Hugging Face folders) whose sha256
            (`checkpoint_sha256`) goes into the metadata.
        encoder_pretrained: False for a random-init encoder (consumers then warn).
        head_trained: False for a random-init head (depth is then not meaningful).
        force: Overwrite an existing ``path``.

    Returns:
        The embedded metadata; ``parity_max_abs_diff`` holds the compiled-vs-eager check.

    Raises:
        ModelError: Bad option or output name, existing output without ``force``, or failed
            parity check.
    """
    path = Path(path)
    artifact_format = _one_of(fmt, FORMATS, 'format')
    precision = _one_of(dtype, tuple(DTYPES), 'dtype')
    height, width = _check_request(
        net, path, artifact_format, precision, input_size, device, sources, force=force
    )

    model = _on(net, torch.device(device), DTYPES[precision])
    metadata = build_metadata(
        model,
        input_size=(height, width),
        fmt=artifact_format,
        dtype=precision,
        sources=sources,
        encoder_pretrained=encoder_pretrained,
        head_trained=head_trained,
    )
    generator = torch.Generator().manual_seed(0)
    example = torch.randint(
        0, 256, (CHECK_BATCH, height, width, 3), dtype=torch.uint8, generator=generator
    ).to(device)
    try:
        with torch.no_grad():
            reference = model(example)
            compiled = _compile(model, artifact_format, example)
            runnable = _runnable(compiled, artifact_format, list(model.output_keys))
            max_abs, max_rel = max_output_difference(reference, runnable(example))
            _check_parity(path, max_abs, max_rel, precision)
            metadata = replace(metadata, parity_max_abs_diff=max_abs)

            def save_and_verify(temp_path: Path) -> None:
                """Write, reload as the Engine does and compare again before replacing path."""
                _save(compiled, artifact_format, temp_path, metadata.to_json())
                if artifact_format == 'onnx':
                    reloaded_metadata, candidate = _reload_onnx(temp_path, example)
                else:
                    reloaded = load_artifact(temp_path, device=device)
                    reloaded_metadata, candidate = reloaded.metadata, reloaded.module(example)
                if reloaded_metadata != metadata:
                    raise ModelError(f'{path} did not read back the metadata it was written with.')
                reloaded_abs, reloaded_rel = max_output_difference(reference, candidate)
                _check_parity(path, reloaded_abs, reloaded_rel, precision)

            write_atomically(path, save_and_verify)
    except ModelError:
        raise
    except Exception as err:  # compilation and export failures surface as user-facing errors
        raise ModelError(f'exporting {path} as {fmt}/{dtype} on {device} failed: {err}') from err
    return metadata


def _reload_onnx(path: Path, example: Tensor) -> tuple[ArtifactMetadata, dict[str, Tensor]]:
    """Metadata and outputs of an ONNX file as the Engine reads and runs it (onnxruntime CPU)."""
    from pixio_ros.runtime.backends import open_backend

    backend = open_backend(
        path, backend='onnxruntime', device='cpu', precision='fp32', parity_check=False
    )
    return backend.metadata, backend(example.cpu())


def _check_parity(path: Path, max_abs: float, max_rel: float, dtype: Precision) -> None:
    if not max_rel <= PARITY_TOLERANCE[dtype]:
        raise ModelError(
            f'exported artifact differs from the eager model by {max_abs:.3g} '
            f'(relative {max_rel:.3g} > tolerance {PARITY_TOLERANCE[dtype]:g}); '
            f'not writing {path}. Try --dtype fp32 or the other --format.'
        )
