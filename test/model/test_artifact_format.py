"""The artifact format module on real TorchScript / torch.export artifacts: by content, one line."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pixio_ros.model.artifact_format import (
    FORMAT_VERSION,
    METADATA_FILE,
    ArtifactError,
    ArtifactMetadata,
    detect_format,
    load_artifact,
    random_init_message,
    random_init_parts,
    read_metadata,
    suffix_conflict,
    suffix_format,
)

INPUT_SIZE = (64, 96)


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a zip member by member; ``change(name, data)`` returns new bytes, or None to drop."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, 'w') as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return target


def with_metadata(source: Path, target: Path, edit: Callable[[dict], object]) -> Path:
    """A copy of a real artifact whose embedded metadata JSON is ``edit(metadata)``."""

    def change(name: str, data: bytes) -> bytes:
        if name.endswith(f'/extra/{METADATA_FILE}'):
            return json.dumps(edit(json.loads(data))).encode()
        return data

    return rewrite(source, target, change)


@pytest.fixture(scope='module')
def ts_path(tiny_artifact) -> Path:
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE)


@pytest.fixture(scope='module')
def pt2_path(tiny_artifact) -> Path:
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt='export')


@pytest.mark.parametrize('name', ['model.ts', 'model.pt2', 'model.bin', 'model'])
def test_format_is_read_from_the_content_whatever_the_name(ts_path, pt2_path, tmp_path, name):
    for source, expected in ((ts_path, 'torchscript'), (pt2_path, 'export')):
        renamed = shutil.copy(source, tmp_path / name)
        assert detect_format(renamed) == expected
        assert read_metadata(renamed).format == expected


@pytest.mark.parametrize('fmt', ['torchscript', 'export'])
def test_renamed_artifact_loads_and_runs(ts_path, pt2_path, tmp_path, fmt):
    source, wrong_name = (ts_path, 'model.pt2') if fmt == 'torchscript' else (pt2_path, 'model.ts')
    renamed = shutil.copy(source, tmp_path / wrong_name)
    loaded = load_artifact(renamed)
    assert loaded.format == fmt and loaded.metadata == read_metadata(source)
    image = torch.zeros((1, *INPUT_SIZE, 3), dtype=torch.uint8)
    with torch.no_grad():
        outputs = loaded.module(image)
    assert list(outputs) == list(loaded.metadata.outputs)


def test_metadata_round_trips_through_dict_and_json(ts_path):
    metadata = read_metadata(ts_path)
    assert ArtifactMetadata.from_dict(metadata.as_dict()) == metadata
    assert ArtifactMetadata.from_dict(json.loads(metadata.to_json())) == metadata
    # The node publishes the dict with sha256 added: extra keys are ignored.
    assert ArtifactMetadata.from_dict({**metadata.as_dict(), 'sha256': 'ab'}) == metadata
    assert metadata.input_size == INPUT_SIZE and metadata.format_version == FORMAT_VERSION
    assert metadata.outputs == ('depth', 'points', 'confidence', 'features', 'embedding')


@pytest.mark.parametrize(
    ('encoder_pretrained', 'head_trained', 'head_kind', 'parts'),
    [
        (False, False, 'points', ('encoder', 'head')),
        (True, False, 'depth', ('head',)),
        (False, True, 'depth', ('encoder',)),
        (True, True, 'points', ()),
        (False, False, 'none', ('encoder',)),  # features of a random encoder are random too
        (True, False, 'none', ()),  # no head, so an untrained head does not matter
    ],
)
def test_random_init_rule(ts_path, encoder_pretrained, head_trained, head_kind, parts):
    metadata = replace(
        read_metadata(ts_path),
        encoder_pretrained=encoder_pretrained,
        head_trained=head_trained,
        head_kind=head_kind,
    )
    assert random_init_parts(metadata) == parts


def test_random_init_message_says_what_is_meaningless():
    assert random_init_message(('encoder',)).startswith('random-init encoder weights: features')
    head_only = random_init_message(('head',))
    assert 'depth and points are NOT meaningful' in head_only
    assert 'pixio-ros train-head' in head_only


@pytest.mark.parametrize(
    ('name', 'fmt', 'expected'),
    [
        (
            'model.ts',
            'export',
            'model.ts has the TorchScript suffix .ts but --format export writes '
            'a torch.export archive; name it model.pt2 or pass --format torchscript',
        ),
        (
            'm.PT2',
            'torchscript',
            'm.PT2 has the torch.export suffix .PT2 but --format torchscript '
            'writes a TorchScript archive; name it m.ts or pass --format export',
        ),
        ('model.ts', 'torchscript', None),
        ('model.pt2', 'export', None),
        ('model.bin', 'export', None),
        ('model', 'torchscript', None),
    ],
)
def test_suffix_conflicts(name, fmt, expected):
    assert suffix_conflict(name, fmt) == expected


def test_suffix_format():
    assert suffix_format('a/b.pt2') == 'export' and suffix_format('b.TS') == 'torchscript'
    assert suffix_format('b.pt') is None


def scripted_without_metadata(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    return path


def exported_without_metadata(path: Path) -> Path:
    program = torch.export.export(torch.nn.Identity(), (torch.zeros(1, 2),))
    with path.open('wb') as stream:
        torch.export.save(program, stream)
    return path


def plain_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'hello')
        archive.writestr('other/data.bin', b'\0')
    return path


def torch_checkpoint(path: Path) -> Path:
    torch.save({'w': torch.zeros(1)}, path)
    return path


def truncated(source: Path) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        data = source.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return make


def damaged_program(source: Path) -> Callable[[Path], Path]:
    """A torch.export archive missing a weight: torch.export.load logs a traceback, then fails."""

    def make(path: Path) -> Path:
        def change(name: str, data: bytes) -> bytes | None:
            return None if name.endswith('data/weights/weight_0') else data

        return rewrite(source, path, change)

    return make


CASES = {
    'missing': (lambda p: p, 'model.ts', r'model\.ts does not exist; make one with `pixio-ros'),
    'directory': (
        lambda p: (p.mkdir(), p)[1],
        'models',
        r'models is a directory, not an artifact file; pass the file written by `pixio-ros export',
    ),
    'text': (
        lambda p: (p.write_text('not a model'), p)[1],
        'notes.pt2',
        r'notes\.pt2 is not a Pixio artifact \(not a zip archive.*pixio-ros export',
    ),
    'plain zip': (plain_zip, 'x.ts', r'x\.ts is a zip archive but not a torch archive'),
    'checkpoint named .pt2': (
        torch_checkpoint,
        'weights.pt2',
        r'weights\.pt2 is a torch\.save checkpoint \(weights\), not a compiled.*pixio-ros export',
    ),
    'torchscript without metadata': (
        scripted_without_metadata,
        'plain.ts',
        r'plain\.ts is a TorchScript archive without pixio_metadata\.json.*pixio-ros export',
    ),
    'torch.export without metadata': (
        exported_without_metadata,
        'plain.pt2',
        r'plain\.pt2 is a torch\.export archive without pixio_metadata\.json.*pixio-ros export',
    ),
}


@pytest.mark.parametrize('case', list(CASES))
def test_non_artifacts_are_one_line(tmp_path, capfd, caplog, case):
    make, name, message = CASES[case]
    path = make(tmp_path / name)
    capfd.readouterr()
    caplog.clear()
    for reader in (read_metadata, detect_format, load_artifact):
        if reader is detect_format and 'without metadata' in case:
            continue  # those are real torch archives: detection succeeds
        with pytest.raises(ArtifactError, match=message) as info:
            reader(path)
        assert '\n' not in str(info.value)
    assert 'Traceback' not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize('fmt', ['torchscript', 'export'])
def test_truncated_artifact_is_one_line(ts_path, pt2_path, tmp_path, fmt):
    source = ts_path if fmt == 'torchscript' else pt2_path
    path = truncated(source)(tmp_path / source.name)
    with pytest.raises(ArtifactError, match=r'is not a Pixio artifact.*truncated') as info:
        load_artifact(path)
    assert '\n' not in str(info.value)


def test_archive_torch_cannot_load_is_one_line_without_torch_log(pt2_path, tmp_path, capfd, caplog):
    path = damaged_program(pt2_path)(tmp_path / 'damaged.pt2')
    assert read_metadata(path).format == 'export'  # the metadata is fine; the program is not
    caplog.set_level(logging.DEBUG, logger='torch.export')
    message = r'damaged\.pt2 is a torch\.export archive that torch'
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    assert 'weight_0' in str(info.value) and '\n' not in str(info.value)  # the cause, not "above"
    assert 'Traceback' not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ('edit', 'message'),
    [
        (lambda m: {**m, 'format_version': 2}, r'format_version 2, this pixio_ros reads format_'),
        (lambda m: {k: v for k, v in m.items() if k != 'format_version'}, r'format_version None'),
        (lambda m: {**m, 'format_version': '1'}, r"format_version '1'"),
        (lambda m: [1, 2], r'pixio_metadata\.json holding a list, not a JSON object'),
        (lambda m: {**m, 'format': 'export'}, r'a TorchScript archive but its metadata says form'),
        (lambda m: {**m, 'input_size': [60, 96]}, r'input_size 60x96 is not a multiple of patch'),
        (
            lambda m: {k: v for k, v in m.items() if k != 'input_size'},
            r"field 'input_size' is missing, expected \[H, W\]",
        ),
        (lambda m: {**m, 'outputs': ['depth', 'normals']}, r"provides outputs \['depth', 'norm"),
        (lambda m: {**m, 'head_trained': 'no'}, r"field 'head_trained' is 'no', expected true"),
        (lambda m: {**m, 'dtype': 'int4'}, r"field 'dtype' is 'int4', expected one of fp32"),
        (lambda m: {**m, 'dtype': 'int8'}, r'dtype int8 without a quantization record'),
        (lambda m: {**m, 'max_depth': -1}, r"field 'max_depth' is -1, expected null or a pos"),
        (lambda m: {**m, 'embed_dim': True}, r"field 'embed_dim' is True, expected a positive"),
    ],
)
def test_bad_metadata_is_refused_naming_the_field(ts_path, tmp_path, edit, message):
    path = with_metadata(ts_path, tmp_path / 'odd.ts', edit)
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    assert str(info.value).startswith(str(path)) and '\n' not in str(info.value)
    assert 'pixio-ros export' in str(info.value) or 'update pixio_ros' in str(info.value)


@pytest.mark.parametrize(
    ('record', 'message'),
    [
        ({'figures': {}}, r'quantization\.tool is None, expected a non-empty string'),
        ({'figures': {'depth': 1}}, r'quantization\.figures is .*, expected an object of numbers'),
        ('yes', r'quantization\. is .yes., expected an object'),
    ],
)
def test_a_bad_quantization_record_is_refused_naming_the_field(ts_path, tmp_path, record, message):
    path = with_metadata(ts_path, tmp_path / 'odd.ts', lambda m: {**m, 'quantization': record})
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    assert str(info.value).startswith(str(path)) and 'pixio-ros quantize' in str(info.value)


def test_corrupt_metadata_json(ts_path, tmp_path):
    def change(name: str, data: bytes) -> bytes:
        return b'{"format_version": 1,' if name.endswith(METADATA_FILE) else data

    path = rewrite(ts_path, tmp_path / 'corrupt.ts', change)
    with pytest.raises(ArtifactError, match=r'corrupt\.ts has corrupt pixio_metadata\.json'):
        read_metadata(path)


# Loads an artifact through the format module and the Engine and lists what got imported.
INDEPENDENCE = """
import sys, warnings
from pixio_ros.model.artifact_format import load_artifact
from pixio_ros.runtime.engine import Engine
load_artifact(sys.argv[1])
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    Engine(sys.argv[1], device='cpu', warmup_runs=1)
print(' '.join(sorted(name for name in sys.modules if name.startswith('pixio_ros.model'))))
"""


def test_loading_never_imports_the_model_code(ts_path):
    result = subprocess.run(
        [sys.executable, '-c', INDEPENDENCE, str(ts_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(result.stdout.split())
    assert loaded == {
        'pixio_ros.model',
        'pixio_ros.model.artifact_format',
        'pixio_ros.model.errors',
        'pixio_ros.model.quantization_record',
    }
