"""Export a PixioNet as one artifact file with embedded metadata, checked against eager.

What an artifact file is (formats, metadata, detection, loading, the random-init rule) lives in
`pixio_ros.model.artifact_format`; this module only compiles, checks parity and saves, and its
reload check loads the file through that same module, exactly as the Engine will.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
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


def _compile(net: PixioNet, fmt: ArtifactFormat, example: Tensor) -> Any:
    """TorchScript module or ExportedProgram for ``net`` (dynamic batch, height and width)."""
    if fmt == 'torchscript':
        with quiet_torchscript():
            return torch.jit.script(net)
    grid_h = torch.export.Dim('grid_h', min=1, max=EXPORT_MAX_GRID)
    grid_w = torch.export.Dim('grid_w', min=1, max=EXPORT_MAX_GRID)
    batch = torch.export.Dim('batch', min=1, max=EXPORT_MAX_BATCH)
    dynamic = {'image': {0: batch, 1: PATCH_SIZE * grid_h, 2: PATCH_SIZE * grid_w}}
    return torch.export.export(net, (example,), dynamic_shapes=dynamic)


def _save(compiled: Any, fmt: ArtifactFormat, path: Path, metadata_json: str) -> None:
    """Write through a stream, so that any file name works (torch.export wants .pt2 on paths)."""
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

    The file is written to a temporary name next to ``path``, reloaded with
    `artifact_format.load_artifact` (the Engine's loader), run on a random uint8 batch at
    ``input_size`` and compared with the eager network; only an artifact within
    `PARITY_TOLERANCE` replaces ``path``.

    Args:
        net: The network to export (set to eval mode; converted on a copy if its device or
            dtype differ from ``device`` / ``dtype``).
        path: Output file. Loading reads the content, so any name works, except the
            conventional suffix of the OTHER format (``.pt2`` for TorchScript, ``.ts`` for
            torch.export), which would mislead people and is refused before anything is written.
        input_size: (H, W) the consumer should resize to; multiples of 16.
        fmt: 'torchscript' or 'export'.
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
            runnable = compiled if artifact_format == 'torchscript' else compiled.module()
            max_abs, max_rel = max_output_difference(reference, runnable(example))
            _check_parity(path, max_abs, max_rel, precision)
            metadata = replace(metadata, parity_max_abs_diff=max_abs)

            def save_and_verify(temp_path: Path) -> None:
                """Write, reload as the Engine does and compare again before replacing path."""
                _save(compiled, artifact_format, temp_path, metadata.to_json())
                reloaded = load_artifact(temp_path, device=device)
                if reloaded.metadata != metadata:
                    raise ModelError(f'{path} did not read back the metadata it was written with.')
                candidate = reloaded.module(example)
                reloaded_abs, reloaded_rel = max_output_difference(reference, candidate)
                _check_parity(path, reloaded_abs, reloaded_rel, precision)

            write_atomically(path, save_and_verify)
    except ModelError:
        raise
    except Exception as err:  # compilation and export failures surface as user-facing errors
        raise ModelError(f'exporting {path} as {fmt}/{dtype} on {device} failed: {err}') from err
    return metadata


def _check_parity(path: Path, max_abs: float, max_rel: float, dtype: Precision) -> None:
    if not max_rel <= PARITY_TOLERANCE[dtype]:
        raise ModelError(
            f'exported artifact differs from the eager model by {max_abs:.3g} '
            f'(relative {max_rel:.3g} > tolerance {PARITY_TOLERANCE[dtype]:g}); '
            f'not writing {path}. Try --dtype fp32 or the other --format.'
        )
