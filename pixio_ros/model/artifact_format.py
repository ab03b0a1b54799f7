"""The artifact format: its constants, typed metadata, detection and loading by content.

This is the one place that knows what a Pixio artifact file is, shared by export, `pixio-ros info`,
the Engine (and so the node), evaluation and the demo. It needs torch alone, never the model
code (encoder, heads, network), so any consumer with torch can use it.

Three container formats hold the same contract (uint8 ``[B, H, W, 3]`` RGB in, a dict of float32
maps out, the same metadata JSON embedded):

- ``torchscript`` (conventionally ``.ts``): a TorchScript zip (``code/``, ``constants.pkl``),
  metadata in ``extra/pixio_metadata.json``. ``torch.jit`` is deprecated upstream but is what
  older torch and libtorch consumers load.
- ``export`` (conventionally ``.pt2``): a torch.export archive (``archive_format`` = ``pt2``),
  metadata in ``extra/pixio_metadata.json``.
- ``onnx`` (conventionally ``.onnx``): an ONNX ``ModelProto`` protobuf (opset >= 18, dynamic
  batch, height and width), metadata in the model's ``metadata_props`` under the key
  ``pixio_metadata.json``. Torch cannot run it; the ONNX Runtime, OpenVINO and TensorRT
  backends of `pixio_ros.runtime.backends` do.

The format is always read from the content, never from the file name: a file renamed to another
suffix still loads. Metadata is read straight from the zip or, for ONNX, from the protobuf's
top-level fields (the graph is skipped, not parsed, and the ``onnx`` package is not needed), so
inspecting a file never runs or unpickles it. Every failure is one `ArtifactError` line naming
the file, what is wrong and the fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
import zipfile
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Literal, TypeVar

import torch

from pixio_ros.files import file_sha256
from pixio_ros.model.errors import ModelError
from pixio_ros.model.quantization_record import QuantizationRecord

__all__ = [
    'DENSE_OUTPUTS',
    'DTYPES',
    'EXPORT_HINT',
    'FORMATS',
    'FORMAT_SUFFIXES',
    'FORMAT_TITLES',
    'FORMAT_VERSION',
    'INT8',
    'METADATA_FILE',
    'ONNX_MIN_OPSET',
    'NO_HEAD',
    'OUTPUT_NAMES',
    'PRECISIONS',
    'ArtifactError',
    'ArtifactFormat',
    'ArtifactMetadata',
    'LoadedArtifact',
    'Precision',
    'RandomInitWarning',
    'TORCH_FORMATS',
    'detect_format',
    'load_artifact',
    'quiet_torchscript',
    'random_init_message',
    'random_init_parts',
    'read_metadata',
    'suffix_conflict',
    'suffix_format',
]

METADATA_FILE = 'pixio_metadata.json'
"""Name of the metadata member, under ``<archive root>/extra/`` (the metadata_props key in ONNX)."""
ONNX_MIN_OPSET = 18
"""Oldest default-domain opset an ONNX artifact may use (what `pixio-ros export` writes)."""
FORMAT_VERSION = 1
"""Metadata layout written by this pixio_ros; any other version is refused (re-export)."""

ArtifactFormat = Literal['torchscript', 'export', 'onnx']
FORMATS: tuple[ArtifactFormat, ...] = ('torchscript', 'export', 'onnx')
TORCH_FORMATS: tuple[ArtifactFormat, ...] = ('torchscript', 'export')
"""The formats torch loads (`load_artifact`); ``onnx`` runs on the ONNX backends instead."""
FORMAT_SUFFIXES: dict[ArtifactFormat, str] = {
    'torchscript': '.ts',
    'export': '.pt2',
    'onnx': '.onnx',
}
"""Conventional file suffix of each format (a naming convention; loading reads the content)."""
FORMAT_TITLES: dict[ArtifactFormat, str] = {
    'torchscript': 'TorchScript',
    'export': 'torch.export',
    'onnx': 'ONNX',
}
_FORMAT_NOUNS: dict[ArtifactFormat, str] = {
    'torchscript': 'a TorchScript archive',
    'export': 'a torch.export archive',
    'onnx': 'an ONNX model',
}

Precision = Literal['fp32', 'fp16', 'bf16', 'int8']
PRECISIONS: tuple[Precision, ...] = ('fp32', 'fp16', 'bf16', 'int8')
"""What an artifact is compiled in and a backend computes in. ``int8`` is an ONNX artifact with
quantise / dequantise pairs, written by `pixio-ros quantize` (never by export), that carries a
`QuantizationRecord`."""
INT8: Precision = 'int8'
DTYPES: dict[Precision, torch.dtype] = {
    'fp32': torch.float32,
    'fp16': torch.float16,
    'bf16': torch.bfloat16,
}
"""The precisions torch computes and exports in, with their torch dtypes (export and Engine)."""

OUTPUT_NAMES: tuple[str, ...] = ('depth', 'points', 'confidence', 'features', 'embedding')
"""Every output an artifact may provide (a subset, named in its metadata ``outputs``)."""
DENSE_OUTPUTS: tuple[str, ...] = ('depth', 'points', 'confidence')
"""Outputs at image resolution (resized with the image; the others are per patch / per image)."""
NO_HEAD = 'none'
"""``head_kind`` of a features-only artifact: it has no head whose training could matter."""

EXPORT_HINT = (
    'make one with `pixio-ros export --encoder PIXIO_WEIGHTS --head HEAD_CHECKPOINT -o model.ts` '
    '(or `pixio-ros export --random-init --size tiny -o model.ts` for a test artifact)'
)
REEXPORT_HINT = 're-export it with this pixio_ros: `pixio-ros export ... -o model.ts`'
REEXPORT_HINT_ONNX = 're-export it with this pixio_ros: `pixio-ros export ... -o model.onnx`'

_PT2_ARCHIVE_FORMAT = 'pt2'
"""Content of a torch.export archive's ``archive_format`` member."""
_TORCH_EXPORT_LOGGER = 'torch.export'
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    zlib.error,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
"""What reading a damaged, truncated or encrypted zip member raises."""
_IMAGE_DIMS = 2
_SHOWN_CHARS = 80
"""Longest metadata value quoted in an error message."""
_CHANNELS = 3


class ArtifactError(ModelError):
    """An artifact file that cannot be read or loaded; the message names the file and the fix."""


class RandomInitWarning(UserWarning):
    """The artifact has random-init weights: its depth / points / features carry no meaning."""


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch.jit's deprecation warnings for the calls inside this block only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore', message=r'.*torch\.jit.*deprecated', category=DeprecationWarning
        )
        yield


class _LoggedErrors(logging.Handler):
    """Collects the exceptions torch logs (with their tracebacks) instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


@contextlib.contextmanager
def _torch_export_errors() -> Iterator[list[BaseException]]:
    """Keep torch.export.load from logging a traceback; yields what it would have logged.

    On a damaged archive torch.export.load logs the real cause with its traceback, then raises
    a generic "check the warnings above"; the cause is what our one line should name.
    """
    logger = logging.getLogger(_TORCH_EXPORT_LOGGER)
    collector = _LoggedErrors()
    handlers, propagate = logger.handlers, logger.propagate
    logger.handlers = [collector]  # torch's logging setup gives this logger handlers of its own
    logger.propagate = False
    try:
        yield collector.errors
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__


# --- metadata ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactMetadata:
    """The metadata embedded in an artifact: what a consumer needs without the model code.

    Attributes:
        format_version: Layout version, `FORMAT_VERSION`.
        format: The container format the file was written as.
        size: Encoder size name (vitb16, ..., tiny).
        embed_dim: Token width C of ``features`` and ``embedding``.
        patch_size: Pixels per patch side (features grid = input size / patch size).
        input_size: (H, W) the consumer resizes images to; multiples of ``patch_size``.
        mean: ImageNet RGB mean applied inside the artifact (documentation for consumers).
        std: ImageNet RGB std applied inside the artifact.
        head_kind: depth, points, linear or none (`NO_HEAD`, features only).
        outputs: Names the artifact returns, a subset of `OUTPUT_NAMES`, in its order.
        max_depth: Depth range of the head, metres; None without a depth head.
        encoder_pretrained: False for a random-init encoder.
        head_trained: False for a random-init head (or no head).
        feature_layout: Human-readable layout of ``features`` and ``embedding``.
        dtype: Precision the artifact was compiled in.
        torch_version: torch that wrote the file.
        sources: sha256 of each named source checkpoint (encoder, head).
        parity_max_abs_diff: Max |compiled - eager| measured at export; None before the check.
        quantization: How an ``int8`` artifact was quantised and gated; None for the others.
    """

    format_version: int
    format: ArtifactFormat
    size: str
    embed_dim: int
    patch_size: int
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    head_kind: str
    outputs: tuple[str, ...]
    max_depth: float | None
    encoder_pretrained: bool
    head_trained: bool
    feature_layout: str
    dtype: Precision
    torch_version: str
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    parity_max_abs_diff: float | None = None
    quantization: QuantizationRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-shaped dict (lists for tuples), as embedded in the file and published.

        ``quantization`` appears only in INT8 artifacts, so other artifacts' JSON is unchanged.
        """
        quantization = (
            {} if self.quantization is None else {'quantization': self.quantization.as_dict()}
        )
        return {
            'format_version': self.format_version,
            'format': self.format,
            'size': self.size,
            'embed_dim': self.embed_dim,
            'patch_size': self.patch_size,
            'input_size': list(self.input_size),
            'mean': list(self.mean),
            'std': list(self.std),
            'head_kind': self.head_kind,
            'outputs': list(self.outputs),
            'max_depth': self.max_depth,
            'encoder_pretrained': self.encoder_pretrained,
            'head_trained': self.head_trained,
            'feature_layout': self.feature_layout,
            'dtype': self.dtype,
            'torch_version': self.torch_version,
            'sources': dict(self.sources),
            'parity_max_abs_diff': self.parity_max_abs_diff,
            **quantization,
        }

    def to_json(self) -> str:
        """The JSON text written into the archive (sorted keys, so equal metadata is equal text)."""
        return json.dumps(self.as_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = 'artifact') -> ArtifactMetadata:
        """Check and type a metadata dict; keys this layout does not define are ignored.

        Args:
            data: Parsed metadata JSON (``sha256`` and other extra keys are allowed).
            source: What the data came from (a file name), named in errors.

        Raises:
            ArtifactError: Wrong format_version, or a field missing or of the wrong type /
                value; the message names the field, what it holds and the fix.
        """
        fields = _Fields(data, source)
        version = data.get('format_version')
        if type(version) is not int or version != FORMAT_VERSION:
            raise ArtifactError(
                f'{source} has metadata format_version {version!r}, this pixio_ros reads '
                f'format_version {FORMAT_VERSION}; {REEXPORT_HINT}'
            )
        metadata = cls(
            format_version=version,
            format=fields.choice('format', FORMATS),
            size=fields.text('size'),
            embed_dim=fields.positive_int('embed_dim'),
            patch_size=fields.positive_int('patch_size'),
            input_size=fields.hxw('input_size'),
            mean=fields.rgb('mean'),
            std=fields.rgb('std'),
            head_kind=fields.text('head_kind'),
            outputs=fields.outputs('outputs'),
            max_depth=fields.optional_positive_float('max_depth'),
            encoder_pretrained=fields.flag('encoder_pretrained'),
            head_trained=fields.flag('head_trained'),
            feature_layout=fields.text('feature_layout'),
            dtype=fields.choice('dtype', PRECISIONS),
            torch_version=fields.text('torch_version'),
            sources=fields.sha_map('sources'),
            parity_max_abs_diff=fields.optional_non_negative_float('parity_max_abs_diff'),
            quantization=_quantization(data, source),
        )
        if (metadata.dtype == INT8) != (metadata.quantization is not None):
            raise ArtifactError(
                f'{source} metadata has dtype {metadata.dtype} '
                f'{"without" if metadata.dtype == INT8 else "with"} a quantization record; an '
                'int8 artifact comes from `pixio-ros quantize` and only it carries one; '
                f'{REEXPORT_HINT}'
            )
        if metadata.dtype == INT8 and metadata.format != 'onnx':
            raise ArtifactError(
                f'{source} metadata says an int8 {metadata.format} artifact; only ONNX artifacts '
                f'are quantised (`pixio-ros quantize MODEL.onnx ...`); {REEXPORT_HINT}'
            )
        height, width = metadata.input_size
        if height % metadata.patch_size or width % metadata.patch_size:
            raise ArtifactError(
                f'{source} metadata input_size {height}x{width} is not a multiple of patch_size '
                f'{metadata.patch_size}; {REEXPORT_HINT}'
            )
        return metadata


def _quantization(data: Mapping[str, Any], source: str) -> QuantizationRecord | None:
    """The typed ``quantization`` record, None when absent."""
    if data.get('quantization') is None:
        return None
    try:
        return QuantizationRecord.from_dict(data['quantization'], source=source)
    except ModelError as err:
        raise ArtifactError(str(err)) from err


_T = TypeVar('_T', bound=str)


class _Fields:
    """Typed getters over a metadata dict; each failure names the field and the source."""

    def __init__(self, data: Mapping[str, Any], source: str):
        self.data = data
        self.source = source

    def _bad(self, name: str, expected: str) -> ArtifactError:
        shown = repr(self.data[name]) if name in self.data else 'missing'
        if len(shown) > _SHOWN_CHARS:
            shown = shown[: _SHOWN_CHARS - 3] + '...'
        return ArtifactError(
            f'{self.source} metadata field {name!r} is {shown}, expected {expected}; '
            f'{REEXPORT_HINT}'
        )

    def choice(self, name: str, choices: tuple[_T, ...]) -> _T:
        value = self.data.get(name)
        for choice in choices:
            if value == choice:
                return choice
        raise self._bad(name, f'one of {", ".join(choices)}')

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise self._bad(name, 'a non-empty string')
        return value

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        if not isinstance(value, bool):
            raise self._bad(name, 'true or false')
        return value

    def positive_int(self, name: str) -> int:
        value = self.data.get(name)
        if type(value) is not int or value <= 0:
            raise self._bad(name, 'a positive integer')
        return value

    def _optional_float(self, name: str, *, positive: bool) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number_ok or not (value > 0 if positive else value >= 0):
            raise self._bad(name, f'null or a {"positive" if positive else "non-negative"} number')
        return float(value)

    def optional_positive_float(self, name: str) -> float | None:
        return self._optional_float(name, positive=True)

    def optional_non_negative_float(self, name: str) -> float | None:
        return self._optional_float(name, positive=False)

    def hxw(self, name: str) -> tuple[int, int]:
        value = self.data.get(name)
        if (
            not isinstance(value, (list, tuple))
            or len(value) != _IMAGE_DIMS
            or not all(type(side) is int and side > 0 for side in value)
        ):
            raise self._bad(name, '[H, W] with positive integers')
        return value[0], value[1]

    def rgb(self, name: str) -> tuple[float, float, float]:
        value = self.data.get(name)
        if (
            not isinstance(value, (list, tuple))
            or len(value) != _CHANNELS
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self._bad(name, 'three numbers (R, G, B)')
        return float(value[0]), float(value[1]), float(value[2])

    def outputs(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if not isinstance(value, (list, tuple)) or not value:
            raise self._bad(name, f'a non-empty list from {", ".join(OUTPUT_NAMES)}')
        unknown = [v for v in value if v not in OUTPUT_NAMES]
        if unknown or len(set(value)) != len(value):
            raise ArtifactError(
                f'{self.source} provides outputs {list(value)!r}, this pixio_ros knows '
                f'{", ".join(OUTPUT_NAMES)} (each once); update pixio_ros or re-export it'
            )
        return tuple(value)

    def sha_map(self, name: str) -> Mapping[str, str]:
        value = self.data.get(name)
        if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(sha, str) for key, sha in value.items()
        ):
            raise self._bad(name, 'an object of source name -> sha256')
        return MappingProxyType(dict(value))


# --- the random-init rule ------------------------------------------------------------------------


def random_init_parts(metadata: ArtifactMetadata) -> tuple[str, ...]:
    """The parts of an artifact whose weights are random: ``'encoder'`` and / or ``'head'``.

    The one rule for export, info, the Engine, evaluation and the demo. A random encoder makes
    every output meaningless, with or without a head (a ``head_kind`` none artifact with a
    random encoder is still random); a head that was never trained matters only when there is
    a head (`NO_HEAD` artifacts have no depth to be wrong).
    """
    parts: list[str] = []
    if not metadata.encoder_pretrained:
        parts.append('encoder')
    if not metadata.head_trained and metadata.head_kind != NO_HEAD:
        parts.append('head')
    return tuple(parts)


def random_init_message(parts: Sequence[str]) -> str:
    """One sentence for `random_init_parts`' result, for warnings, notes and reports."""
    if 'encoder' in parts:
        meaning = 'features, embedding, depth and points are all NOT meaningful'
    else:
        meaning = 'depth and points are NOT meaningful (features come from the trained encoder)'
    return (
        f'random-init {" and ".join(parts)} weights: {meaning}; for real use train a head with '
        '`pixio-ros train-head` and export with `--encoder WEIGHTS --head HEAD`'
    )


# --- naming convention ---------------------------------------------------------------------------


def suffix_format(path: str | os.PathLike[str]) -> ArtifactFormat | None:
    """The format whose conventional suffix ``path`` has (case-insensitive), else None."""
    suffix = Path(path).suffix.lower()
    for fmt, conventional in FORMAT_SUFFIXES.items():
        if suffix == conventional:
            return fmt
    return None


def suffix_conflict(path: str | os.PathLike[str], fmt: ArtifactFormat) -> str | None:
    """Why naming a ``fmt`` artifact ``path`` would mislead, or None when the name is fine.

    Only a suffix that belongs to ANOTHER format is a conflict; any other suffix (or none) is
    allowed, since loading reads the content and never the name.
    """
    path = Path(path)
    named = suffix_format(path)
    if named is None or named == fmt:
        return None
    return (
        f'{path.name} has the {FORMAT_TITLES[named]} suffix {path.suffix} but --format {fmt} '
        f'writes {_FORMAT_NOUNS[fmt]}; name it {path.stem}{FORMAT_SUFFIXES[fmt]} or '
        f'pass --format {named}'
    )


# --- reading the archive -------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    """An ArtifactError when ``path`` is missing or a directory."""
    if path.is_dir():
        raise ArtifactError(
            f'{path} is a directory, not an artifact file; pass the file written by '
            '`pixio-ros export` (e.g. DIR/model.ts)'
        )
    if not path.exists():
        raise ArtifactError(f'{path} does not exist; {EXPORT_HINT}')


@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[zipfile.ZipFile]:
    """The artifact's zip archive, or an ArtifactError saying why it is not one."""
    _check_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as err:
        raise ArtifactError(
            f'{path} is not a Pixio artifact (not a zip archive, so neither TorchScript nor '
            f'torch.export, and not an ONNX model; it may be truncated: {_first_line(err)}); '
            f'pass a file written by `pixio-ros export`, or {EXPORT_HINT}'
        ) from err
    with archive:
        yield archive


def _archive_root_and_format(path: Path, archive: zipfile.ZipFile) -> tuple[str, ArtifactFormat]:
    """The archive's root folder and its format, read from the member names (and one member)."""
    names = archive.namelist()
    roots = {name.split('/', 1)[0] for name in names}
    if len(roots) != 1 or not all('/' in name for name in names):
        raise ArtifactError(
            f'{path} is a zip archive but not a torch archive (no single root folder); pass a '
            f'file written by `pixio-ros export`, or {EXPORT_HINT}'
        )
    root = roots.pop()
    members = set(names)
    if f'{root}/archive_format' in members:
        try:
            marker = archive.read(f'{root}/archive_format').decode('utf-8', 'replace').strip()
        except _ZIP_ERRORS as err:
            raise ArtifactError(
                f'{path} is a damaged torch.export archive ({_first_line(err)}); {REEXPORT_HINT}'
            ) from err
        if marker == _PT2_ARCHIVE_FORMAT:
            return root, 'export'
    has_code = any(name.startswith(f'{root}/code/') for name in names)
    if has_code and {f'{root}/data.pkl', f'{root}/constants.pkl'} <= members:
        return root, 'torchscript'
    if f'{root}/data.pkl' in members:
        raise ArtifactError(
            f'{path} is a torch.save checkpoint (weights), not a compiled TorchScript or '
            'torch.export artifact; export one from it: `pixio-ros export --encoder '
            f'{path.name} ... -o model.ts`'
        )
    raise ArtifactError(
        f'{path} is a zip archive but neither a TorchScript nor a torch.export archive; pass a '
        f'file written by `pixio-ros export`, or {EXPORT_HINT}'
    )


def detect_format(path: str | os.PathLike[str]) -> ArtifactFormat:
    """'torchscript', 'export' or 'onnx', read from the content (never from the name).

    Raises:
        ArtifactError: Missing file, directory, a file that is neither a zip nor an ONNX model,
            a truncated ONNX model, or a zip that is neither torch format.
    """
    path = Path(path)
    if _is_onnx(path):
        _scan_onnx(path)
        return 'onnx'
    with _open_archive(path) as archive:
        return _archive_root_and_format(path, archive)[1]


def read_metadata(path: str | os.PathLike[str]) -> ArtifactMetadata:
    """The checked metadata of an artifact, read without running or unpickling it.

    Raises:
        ArtifactError: The file is not a Pixio artifact of this format version, or its
            metadata contradicts its content; the message says which and how to fix it.
    """
    path = Path(path)
    if _is_onnx(path):
        return _metadata_from_text(path, _onnx_metadata_text(path), 'onnx')
    with _open_archive(path) as archive:
        root, fmt = _archive_root_and_format(path, archive)
        member = f'{root}/extra/{METADATA_FILE}'
        if member not in set(archive.namelist()):
            raise ArtifactError(
                f'{path} is a {FORMAT_TITLES[fmt]} archive without {METADATA_FILE}; it was not '
                f'written by `pixio-ros export`. {EXPORT_HINT[0].upper()}{EXPORT_HINT[1:]}'
            )
        try:
            raw = archive.read(member)
        except _ZIP_ERRORS as err:
            raise ArtifactError(
                f'{path} is a damaged archive ({_first_line(err)}); {REEXPORT_HINT}'
            ) from err
    return _metadata_from_text(path, raw, fmt)


def _metadata_from_text(path: Path, raw: bytes, fmt: ArtifactFormat) -> ArtifactMetadata:
    """Parse and check the embedded metadata JSON of a ``fmt`` file."""
    try:
        data = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(
            f'{path} has corrupt {METADATA_FILE} ({_first_line(err)}); {REEXPORT_HINT}'
        ) from err
    if not isinstance(data, dict):
        raise ArtifactError(
            f'{path} has {METADATA_FILE} holding a {type(data).__name__}, not a JSON object; '
            f'{REEXPORT_HINT}'
        )
    metadata = ArtifactMetadata.from_dict(data, source=str(path))
    if metadata.format != fmt:
        raise ArtifactError(
            f'{path} is {_FORMAT_NOUNS[fmt]} but its metadata says format '
            f'{metadata.format!r}; {REEXPORT_HINT}'
        )
    return metadata


# --- reading an ONNX model -----------------------------------------------------------------------
# An ONNX file is a protobuf ModelProto. Its top-level fields are walked here with the protobuf
# wire format alone (tag varint, then a varint, a fixed 4 / 8 bytes or a length-prefixed body):
# the graph body (hundreds of MB of weights) is skipped with a seek, and only the small fields
# (ir_version, producer, opset_import, metadata_props) are read. So detection and `info` need
# neither the onnx package nor the memory for the weights, and a cut-off file is recognised
# exactly: a length that runs past the end of the file.

_ZIP_MAGIC = b'PK'
_ONNX_IR_VERSION_TAG = 0x08
"""Field 1 (ir_version), wire type 0 (varint): the first byte of every ONNX file."""
_MODEL_IR_VERSION = 1
_MODEL_PRODUCER_NAME = 2
_MODEL_GRAPH = 7
_MODEL_OPSET_IMPORT = 8
_MODEL_METADATA_PROPS = 14
_READ_FIELDS = frozenset({_MODEL_PRODUCER_NAME, _MODEL_OPSET_IMPORT, _MODEL_METADATA_PROPS})
"""Top-level length-delimited fields read into memory; the others (the graph) are skipped."""
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5
_FIXED_SIZES = {_WIRE_FIXED64: 8, _WIRE_FIXED32: 4}
_SMALL_FIELD_LIMIT = 1 << 24
"""Largest opset_import / metadata_props entry read (16 MiB); a larger one is refused."""
_VARINT_MAX_BYTES = 10
_VARINT_PAYLOAD_BITS = 7
_VARINT_MORE = 0x80
_FIELD_SHIFT = 3
_WIRE_MASK = 7


class _TruncatedError(Exception):
    """The protobuf stream ended inside a field."""


class _NotProtobufError(Exception):
    """Bytes that are not a protobuf message."""


def _read_varint(stream: BinaryIO) -> int | None:
    """The next varint, or None at a clean end of the stream."""
    value = 0
    for index in range(_VARINT_MAX_BYTES):
        byte = stream.read(1)
        if not byte:
            if index == 0:
                return None
            raise _TruncatedError
        value |= (byte[0] & (_VARINT_MORE - 1)) << (_VARINT_PAYLOAD_BITS * index)
        if not byte[0] & _VARINT_MORE:
            return value
    raise _NotProtobufError('a varint longer than 10 bytes')


def _protobuf_fields(
    stream: BinaryIO, size: int, read: Collection[int] | None = None
) -> Iterator[tuple[int, int | bytes | None]]:
    """(field number, value) of each field of the protobuf message in ``stream``.

    Varints come as ints and length-delimited fields as bytes when their number is in ``read``
    (every one when ``read`` is None), else as None after a seek past them; fixed-size fields
    come as None.

    Raises:
        _TruncatedError: The stream ends inside a field (``size`` is the stream's length).
        _NotProtobufError: A wire type protobuf does not have, or an oversized field to read.
    """
    while True:
        tag = _read_varint(stream)
        if tag is None:
            return
        number, wire = tag >> _FIELD_SHIFT, tag & _WIRE_MASK
        if wire == _WIRE_VARINT:
            value = _read_varint(stream)
            if value is None:
                raise _TruncatedError
            yield number, value
        elif wire == _WIRE_BYTES:
            length = _read_varint(stream)
            if length is None or stream.tell() + length > size:
                raise _TruncatedError
            if read is not None and number not in read:
                stream.seek(length, os.SEEK_CUR)
                yield number, None
                continue
            if length > _SMALL_FIELD_LIMIT:
                raise _NotProtobufError(f'field {number} holds {length} bytes')
            yield number, stream.read(length)
        elif wire in _FIXED_SIZES:
            if len(stream.read(_FIXED_SIZES[wire])) != _FIXED_SIZES[wire]:
                raise _TruncatedError
            yield number, None
        else:
            raise _NotProtobufError(f'wire type {wire} in field {number}')


def _submessage(body: int | bytes | None) -> dict[int, int | bytes | None]:
    """The fields of an embedded message (later fields of the same number win)."""
    if not isinstance(body, bytes):
        raise _NotProtobufError('a scalar where a message belongs')
    return dict(_protobuf_fields(io.BytesIO(body), len(body)))


def _text(value: int | bytes | None) -> str:
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else ''


@dataclass(frozen=True)
class _OnnxScan:
    """What the top-level fields of an ONNX file say."""

    ir_version: int
    producer: str
    opsets: Mapping[str, int]
    metadata_props: Mapping[str, str]


def _is_onnx(path: Path) -> bool:
    """Whether the file starts as an ONNX ModelProto does (field ir_version), so is read as one.

    A zip (TorchScript / torch.export) starts with ``PK``; anything else that does not start
    like a ModelProto goes the zip way and gets its "not a zip archive" message.
    """
    _check_file(path)
    with path.open('rb') as stream:
        head = stream.read(len(_ZIP_MAGIC))
    return bool(head) and head[0] == _ONNX_IR_VERSION_TAG and head != _ZIP_MAGIC


def _scan_onnx(path: Path) -> _OnnxScan:
    """The checked top-level fields of an ONNX file; the graph is skipped, not read.

    Raises:
        ArtifactError: A truncated file, bytes that are not an ONNX ModelProto, no graph, or a
            default-domain opset older than `ONNX_MIN_OPSET`.
    """
    size = path.stat().st_size
    ir_version: int | None = None
    has_graph = False
    producer = ''
    opsets: dict[str, int] = {}
    props: dict[str, str] = {}
    try:
        with path.open('rb') as stream:
            for number, value in _protobuf_fields(stream, size, _READ_FIELDS):
                if number == _MODEL_IR_VERSION and isinstance(value, int):
                    ir_version = value
                elif number == _MODEL_GRAPH:
                    has_graph = True
                elif number == _MODEL_PRODUCER_NAME:
                    producer = _text(value)
                elif number == _MODEL_OPSET_IMPORT:
                    entry = _submessage(value)  # OperatorSetIdProto: domain 1, version 2
                    version = entry.get(2)
                    if isinstance(version, int):
                        opsets[_text(entry.get(1))] = version
                elif number == _MODEL_METADATA_PROPS:
                    entry = _submessage(value)  # StringStringEntryProto: key 1, value 2
                    props[_text(entry.get(1))] = _text(entry.get(2))
    except _TruncatedError as err:
        raise ArtifactError(
            f'{path} is a truncated ONNX model (a field runs past its end at {size} bytes); '
            f'copy it again or {REEXPORT_HINT_ONNX}'
        ) from err
    except (_NotProtobufError, OSError) as err:
        raise ArtifactError(
            f'{path} is not a Pixio artifact (it starts like an ONNX model but is not an ONNX '
            f'protobuf: {err}); pass a file written by `pixio-ros export`, or {EXPORT_HINT}'
        ) from err
    if ir_version is None or not has_graph:
        missing = 'ir_version' if ir_version is None else 'graph'
        raise ArtifactError(
            f'{path} is not a Pixio artifact (a protobuf without an ONNX {missing}); pass a '
            f'file written by `pixio-ros export`, or {EXPORT_HINT}'
        )
    opset = opsets.get('', opsets.get('ai.onnx'))
    if opset is None or opset < ONNX_MIN_OPSET:
        raise ArtifactError(
            f'{path} is an ONNX model of opset {opset}, older than the {ONNX_MIN_OPSET} that '
            f'pixio_ros exports and reads; {REEXPORT_HINT_ONNX}'
        )
    return _OnnxScan(ir_version, producer, MappingProxyType(opsets), MappingProxyType(props))


def _onnx_metadata_text(path: Path) -> bytes:
    """The embedded metadata JSON of an ONNX artifact, from its metadata_props."""
    scan = _scan_onnx(path)
    text = scan.metadata_props.get(METADATA_FILE)
    if text is None:
        producer = f' (producer {scan.producer!r})' if scan.producer else ''
        raise ArtifactError(
            f'{path} is an ONNX model{producer} without {METADATA_FILE} in its metadata_props; '
            f'it was not written by `pixio-ros export`. {EXPORT_HINT[0].upper()}{EXPORT_HINT[1:]}'
        )
    return text.encode('utf-8')


# --- loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedArtifact:
    """A loaded artifact: the callable module and what describes it.

    Attributes:
        module: uint8 ``(B, H, W, 3)`` RGB -> dict of float tensors (`OUTPUT_NAMES`).
        metadata: The checked embedded metadata.
        path: The file it came from.
        sha256: The file's sha256 (what the node publishes on model_info).
    """

    module: torch.nn.Module
    metadata: ArtifactMetadata
    path: Path
    sha256: str

    @property
    def format(self) -> ArtifactFormat:
        """The container format, as read from the content."""
        return self.metadata.format


def _load_module(path: Path, fmt: ArtifactFormat, device: torch.device) -> torch.nn.Module:
    if fmt == 'export':
        # From a stream: torch.export.load wants a .pt2 suffix on paths, and any name must work.
        with path.open('rb') as stream:
            module: torch.nn.Module = torch.export.load(stream).module()
        return module.to(device) if device.type != 'cpu' else module
    with quiet_torchscript():
        scripted = torch.jit.load(str(path), map_location=device)
    return scripted.eval()


def load_artifact(
    path: str | os.PathLike[str], *, device: str | torch.device = 'cpu'
) -> LoadedArtifact:
    """Load a TorchScript or torch.export artifact onto ``device``, by its content.

    ONNX artifacts run on the backends of `pixio_ros.runtime.backends`, not on torch.

    Raises:
        ArtifactError: Anything `read_metadata` refuses, an ONNX artifact, or torch failing to
            load the archive (one line with torch's first line; never torch's traceback).
    """
    path = Path(path)
    metadata = read_metadata(path)
    if metadata.format not in TORCH_FORMATS:
        raise ArtifactError(
            f'{path} is {_FORMAT_NOUNS[metadata.format]}, which torch does not run; load it '
            "with an ONNX backend (Engine backend 'auto', 'onnxruntime', 'openvino' or "
            "'tensorrt'), or export a TorchScript artifact: `pixio-ros export ... -o model.ts`"
        )
    target = torch.device(device)
    with _torch_export_errors() as logged:
        try:
            module = _load_module(path, metadata.format, target)
        except Exception as err:  # torch raises RuntimeError, ValueError, KeyError, zip errors...
            cause = logged[0] if logged else err
            raise ArtifactError(
                f'{path} is a {FORMAT_TITLES[metadata.format]} archive that torch '
                f'{torch.__version__} cannot load on {target} ({_first_line(cause)}); '
                f'{REEXPORT_HINT}'
            ) from err
    return LoadedArtifact(module=module, metadata=metadata, path=path, sha256=file_sha256(path))
