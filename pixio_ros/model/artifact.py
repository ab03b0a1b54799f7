"""The compiled artifact: export a PixioNet with embedded metadata, read it back, check parity.

Two formats hold the same contract (uint8 [B,H,W,3] RGB in, dict of float32 maps out, metadata
JSON embedded as ``pixio_metadata.json``):

- ``torchscript`` (``.ts``), the default. ``torch.jit`` is deprecated upstream, but TorchScript is
  still what robots with an older torch and C++ (libtorch) consumers can load, so it is offered
  and its deprecation warnings are silenced around our own calls only.
- ``export`` (``.pt2``), written by ``torch.export`` with dynamic height, width and batch.

Metadata is read straight from the zip archive, so inspecting a file never runs or unpickles it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pixio_ros.files import write_atomically
from pixio_ros.model.checkpoints import checkpoint_sha256
from pixio_ros.model.errors import ModelError
from pixio_ros.model.network import PixioNet
from pixio_ros.model.sizes import IMAGENET_MEAN, IMAGENET_STD, PATCH_SIZE

METADATA_FILE = 'pixio_metadata.json'
FORMAT_VERSION = 1
FORMAT_SUFFIXES = {'torchscript': '.ts', 'export': '.pt2'}
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PARITY_TOLERANCE = {'fp32': 1e-4, 'fp16': 1e-2, 'bf16': 5e-2}
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


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch.jit's deprecation warnings for the calls inside this block only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore', message=r'.*torch\.jit.*deprecated', category=DeprecationWarning
        )
        yield


def build_metadata(
    net: PixioNet,
    *,
    input_size: tuple[int, int],
    fmt: str,
    dtype: str,
    sources: Mapping[str, str | os.PathLike[str]] | None,
    encoder_pretrained: bool,
    head_trained: bool,
) -> dict[str, Any]:
    """The JSON embedded in an artifact: everything a consumer needs without the model code."""
    return {
        'format_version': FORMAT_VERSION,
        'format': fmt,
        'size': net.encoder.size_name,
        'embed_dim': net.encoder.embed_dim,
        'patch_size': net.encoder.patch_size,
        'input_size': [int(input_size[0]), int(input_size[1])],
        'mean': list(IMAGENET_MEAN),
        'std': list(IMAGENET_STD),
        'head_kind': net.head_kind,
        'outputs': net.output_keys,
        'max_depth': net.max_depth,
        'encoder_pretrained': bool(encoder_pretrained),
        'head_trained': bool(head_trained),
        'feature_layout': FEATURE_LAYOUT,
        'dtype': dtype,
        'torch_version': torch.__version__,
        'sources': {name: checkpoint_sha256(path) for name, path in (sources or {}).items()},
        'parity_max_abs_diff': None,
    }


def read_artifact_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the embedded metadata of an artifact without loading the model.

    Raises:
        ModelError: If the file is missing, not a zip archive, or has no Pixio metadata.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(
            f'{path} is a directory; pass the artifact file written by `pixio-ros export`.'
        )
    if not path.is_file():
        raise ModelError(f'{path} does not exist; pass an artifact written by `pixio-ros export`.')
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f'extra/{METADATA_FILE}')]
            if not names:
                raise ModelError(
                    f'{path} is a torch archive without {METADATA_FILE}; it was not written by '
                    '`pixio-ros export`. Re-export it.'
                )
            metadata = json.loads(archive.read(names[0]).decode('utf-8'))
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelError(
            f'{path} is not a Pixio artifact (not a TorchScript or torch.export archive: {err}); '
            'pass a file written by `pixio-ros export`.'
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f'{path} has corrupt {METADATA_FILE} ({err}); re-export it.') from err
    if not isinstance(metadata, dict):
        raise ModelError(
            f'{path} has {METADATA_FILE} holding a {type(metadata).__name__}, not a JSON object; '
            're-export it with `pixio-ros export`.'
        )
    if metadata.get('format_version') != FORMAT_VERSION:
        raise ModelError(
            f'{path} has metadata format_version {metadata.get("format_version")!r} '
            f'(expected {FORMAT_VERSION}); re-export it with this version of pixio-ros.'
        )
    return metadata


def load_artifact(
    path: str | os.PathLike[str], *, device: str | torch.device = 'cpu'
) -> tuple[Callable[[Tensor], dict[str, Tensor]], dict[str, Any]]:
    """Load an artifact of either format onto ``device``; returns (callable module, metadata)."""
    metadata = read_artifact_metadata(path)
    fmt = metadata.get('format', 'torchscript')
    if fmt == 'export':
        # A buffer, so that any file name works (torch.export wants a .pt2 suffix for paths).
        with Path(path).open('rb') as stream:
            program = torch.export.load(stream)
        module = program.module()
        if str(device) != 'cpu':
            module = module.to(device)
        return module, metadata
    with quiet_torchscript():
        module = torch.jit.load(str(path), map_location=device)
    return module.eval(), metadata


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


def _compile(net: PixioNet, fmt: str, example: Tensor) -> Any:
    """TorchScript module or ExportedProgram for ``net`` (dynamic batch, height and width)."""
    if fmt == 'torchscript':
        with quiet_torchscript():
            return torch.jit.script(net)
    grid_h = torch.export.Dim('grid_h', min=1, max=EXPORT_MAX_GRID)
    grid_w = torch.export.Dim('grid_w', min=1, max=EXPORT_MAX_GRID)
    batch = torch.export.Dim('batch', min=1, max=EXPORT_MAX_BATCH)
    dynamic = {'image': {0: batch, 1: PATCH_SIZE * grid_h, 2: PATCH_SIZE * grid_w}}
    return torch.export.export(net, (example,), dynamic_shapes=dynamic)


def _save(compiled: Any, fmt: str, path: Path, metadata_json: str) -> None:
    extra = {METADATA_FILE: metadata_json}
    if fmt == 'torchscript':
        with quiet_torchscript():
            torch.jit.save(compiled, str(path), _extra_files=extra)
    else:
        torch.export.save(compiled, str(path), extra_files=extra)


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
) -> dict[str, Any]:
    """Compile ``net`` into one artifact file with embedded metadata, checked against eager.

    The file is written to a temporary name next to ``path``, reloaded, run on a random uint8
    batch at ``input_size`` and compared with the eager network; only an artifact within
    `PARITY_TOLERANCE` replaces ``path``.

    Args:
        net: The network to export (set to eval mode; converted on a copy if its device or
            dtype differ from ``device`` / ``dtype``).
        path: Output file (``.ts`` for TorchScript, ``.pt2`` for torch.export by convention).
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
        ModelError: Bad option, existing output without ``force``, or failed parity check.
    """
    path = Path(path)
    if fmt not in FORMAT_SUFFIXES:
        raise ModelError(f'unknown format {fmt!r}; expected one of {", ".join(FORMAT_SUFFIXES)}.')
    if dtype not in DTYPES:
        raise ModelError(f'unknown dtype {dtype!r}; expected one of {", ".join(DTYPES)}.')
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

    model = _on(net, torch.device(device), DTYPES[dtype])
    metadata = build_metadata(
        model,
        input_size=(height, width),
        fmt=fmt,
        dtype=dtype,
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
            compiled = _compile(model, fmt, example)
            runnable = compiled if fmt == 'torchscript' else compiled.module()
            max_abs, max_rel = max_output_difference(reference, runnable(example))
            _check_parity(path, max_abs, max_rel, dtype)
            metadata['parity_max_abs_diff'] = max_abs

            def save_and_verify(temp_path: Path) -> None:
                """Write, reload from disk and compare again before the file replaces path."""
                _save(compiled, fmt, temp_path, json.dumps(metadata, indent=2, sort_keys=True))
                reloaded, _ = load_artifact(temp_path, device=device)
                reloaded_abs, reloaded_rel = max_output_difference(reference, reloaded(example))
                _check_parity(path, reloaded_abs, reloaded_rel, dtype)

            write_atomically(path, save_and_verify)
    except ModelError:
        raise
    except Exception as err:  # compilation and export failures surface as user-facing errors
        raise ModelError(f'exporting {path} as {fmt}/{dtype} on {device} failed: {err}') from err
    return metadata


def _check_parity(path: Path, max_abs: float, max_rel: float, dtype: str) -> None:
    if not max_rel <= PARITY_TOLERANCE[dtype]:
        raise ModelError(
            f'exported artifact differs from the eager model by {max_abs:.3g} '
            f'(relative {max_rel:.3g} > tolerance {PARITY_TOLERANCE[dtype]:g}); '
            f'not writing {path}. Try --dtype fp32 or the other --format.'
        )
