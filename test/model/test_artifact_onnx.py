"""ONNX artifacts: export, metadata in metadata_props, detection by content, one-line refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pixio_ros.cli import main
from pixio_ros.files import file_sha256
from pixio_ros.model import ModelError, build_network, export_artifact
from pixio_ros.model.artifact import ONNX_OPSET
from pixio_ros.model.artifact_format import (
    METADATA_FILE,
    ArtifactError,
    detect_format,
    load_artifact,
    read_metadata,
    suffix_conflict,
    suffix_format,
)

onnx = pytest.importorskip('onnx', reason='the onnx extra is not installed (pixio_ros[onnx])')
ort = pytest.importorskip('onnxruntime', reason='the onnx extra is not installed')

INPUT_SIZE = (64, 96)
SEED = 0  # test/conftest.py's TINY_ARTIFACT_SEED: the eager network of the tiny artifacts

# Runs an ONNX artifact with onnxruntime alone (no pixio_ros) and reads its metadata the standard
# way: what a C++ or non-ROS consumer does. Arguments: artifact, inputs .npy, outputs .npz.
CONSUMER = """
import json, sys
import numpy as np
import onnxruntime as ort
path, inputs_path, outputs_path = sys.argv[1:]
session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
meta = json.loads(session.get_modelmeta().custom_metadata_map['pixio_metadata.json'])
names = [output.name for output in session.get_outputs()]
values = session.run(None, {'image': np.load(inputs_path)})
np.savez(outputs_path, **dict(zip(names, values)))
loaded = sorted(name for name in sys.modules if name.startswith('pixio_ros'))
print(json.dumps({'metadata': meta, 'inputs': [i.name for i in session.get_inputs()],
                  'shape': [str(d) for d in session.get_inputs()[0].shape], 'loaded': loaded}))
"""


@pytest.fixture(scope='module')
def onnx_path(tiny_artifact) -> Path:
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt='onnx')


@pytest.fixture(scope='module')
def eager():
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return build_network('tiny', 'points')


def test_metadata_round_trips_and_a_plain_onnxruntime_reads_it(onnx_path, eager, tmp_path):
    metadata = read_metadata(onnx_path)
    assert metadata.format == 'onnx' and metadata.dtype == 'fp32'
    assert metadata.input_size == INPUT_SIZE and metadata.size == 'tiny'
    assert metadata.outputs == ('depth', 'points', 'confidence', 'features', 'embedding')
    assert metadata.parity_max_abs_diff is not None and metadata.parity_max_abs_diff < 1e-4
    # A batch of 3 at another size than the export's: batch, height and width are dynamic.
    images = np.random.default_rng(4).integers(0, 256, (3, 96, 128, 3), dtype=np.uint8)
    np.save(tmp_path / 'in.npy', images)
    result = subprocess.run(
        [sys.executable, '-c', CONSUMER, str(onnx_path), tmp_path / 'in.npy', tmp_path / 'o.npz'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    consumer = json.loads(result.stdout)
    assert consumer['loaded'] == []
    assert consumer['metadata'] == metadata.as_dict()
    assert consumer['inputs'] == ['image'] and consumer['shape'][3] == '3'
    assert not any(side.isdigit() for side in consumer['shape'][:3])  # B, H, W symbolic
    outputs = np.load(tmp_path / 'o.npz')
    with torch.no_grad():
        reference = eager(torch.from_numpy(images))
    for name, value in reference.items():
        assert outputs[name].shape == tuple(value.shape), name
        np.testing.assert_allclose(outputs[name], value.numpy(), atol=1e-4, err_msg=name)


def test_the_file_is_a_checked_onnx_model_of_opset_18(onnx_path):
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    assert opsets.get('', opsets.get('ai.onnx')) >= ONNX_OPSET >= 18
    props = {entry.key: entry.value for entry in model.metadata_props}
    assert json.loads(props[METADATA_FILE]) == read_metadata(onnx_path).as_dict()
    assert [output.name for output in model.graph.output] == list(read_metadata(onnx_path).outputs)


@pytest.mark.parametrize('name', ['model.onnx', 'model.ts', 'model.bin', 'model'])
def test_format_is_read_from_the_content_whatever_the_name(onnx_path, tmp_path, name):
    copy = shutil.copy(onnx_path, tmp_path / name)
    assert detect_format(copy) == 'onnx'
    assert read_metadata(copy) == read_metadata(onnx_path)


def test_torch_does_not_load_it_and_says_which_backends_do(onnx_path):
    with pytest.raises(ArtifactError, match='which torch does not run.*openvino') as info:
        load_artifact(onnx_path)
    assert '\n' not in str(info.value)


def test_reading_the_metadata_needs_neither_onnx_nor_the_weights_in_memory(onnx_path):
    script = (
        'import sys\n'
        "sys.modules['onnx'] = sys.modules['onnxruntime'] = None  # importing them would fail\n"
        'from pixio_ros.model.artifact_format import detect_format, read_metadata\n'
        f'print(detect_format({str(onnx_path)!r}), read_metadata({str(onnx_path)!r}).size)\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['onnx', 'tiny']


# --- refusals: truncated, foreign, old, damaged metadata -----------------------------------------


def foreign_model(opset: int = ONNX_OPSET, props: dict[str, str] | None = None):
    """A valid ONNX model that is not a Pixio artifact (an Identity), produced elsewhere."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])],
        'other',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, producer_name='someone-else', opset_imports=[helper.make_opsetid('', opset)]
    )
    for key, value in (props or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


@pytest.mark.parametrize('fraction', [0.001, 0.5, 0.9995])
def test_a_truncated_onnx_is_one_line(onnx_path, tmp_path, fraction):
    data = onnx_path.read_bytes()
    path = tmp_path / 'cut.onnx'
    path.write_bytes(data[: max(2, int(len(data) * fraction))])
    for reader in (detect_format, read_metadata):
        with pytest.raises(ArtifactError, match=r'cut\.onnx is a truncated ONNX model') as info:
            reader(path)
        assert '\n' not in str(info.value) and 'pixio-ros export' in str(info.value)


def test_a_foreign_onnx_is_one_line(tmp_path):
    path = tmp_path / 'other.onnx'
    onnx.save(foreign_model(), str(path))
    assert detect_format(path) == 'onnx'
    with pytest.raises(
        ArtifactError,
        match=r"other\.onnx is an ONNX model \(producer 'someone-else'\) without "
        r'pixio_metadata\.json.*not written by `pixio-ros export`',
    ) as info:
        read_metadata(path)
    assert '\n' not in str(info.value)


def test_an_onnx_of_an_old_opset_is_refused(tmp_path):
    path = tmp_path / 'old.onnx'
    onnx.save(foreign_model(opset=13), str(path))
    with pytest.raises(ArtifactError, match=r'old\.onnx is an ONNX model of opset 13, older'):
        read_metadata(path)


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        (b'not a model at all', r'not a Pixio artifact \(not a zip archive.*not an ONNX model'),
        (b'\x08\x09\x12\x03abc', r'not a Pixio artifact \(a protobuf without an ONNX graph\)'),
        (b'\x08\x09\x0f', r'not a Pixio artifact \(it starts like an ONNX model but is not'),
    ],
)
def test_bytes_that_are_not_onnx_are_one_line(tmp_path, content, message):
    path = tmp_path / 'model.onnx'
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=message) as info:
        read_metadata(path)
    assert '\n' not in str(info.value)


@pytest.mark.parametrize(
    ('props', 'message'),
    [
        ({METADATA_FILE: '{not json'}, r'has corrupt pixio_metadata\.json'),
        ({METADATA_FILE: '[1, 2]'}, 'holding a list, not a JSON object'),
    ],
)
def test_damaged_metadata_is_one_line(tmp_path, props, message):
    path = tmp_path / 'damaged.onnx'
    onnx.save(foreign_model(props=props), str(path))
    with pytest.raises(ArtifactError, match=message):
        read_metadata(path)


def test_metadata_of_another_format_inside_an_onnx_is_refused(onnx_path, tmp_path):
    wrong = replace(read_metadata(onnx_path), format='torchscript')
    path = tmp_path / 'wrong.onnx'
    onnx.save(foreign_model(props={METADATA_FILE: wrong.to_json()}), str(path))
    with pytest.raises(ArtifactError, match="is an ONNX model but its metadata says format 'torch"):
        read_metadata(path)


# --- export options ------------------------------------------------------------------------------


def test_suffixes_name_the_onnx_format():
    assert suffix_format('a/model.onnx') == 'onnx' and suffix_format('M.ONNX') == 'onnx'
    assert suffix_conflict('model.onnx', 'torchscript') == (
        'model.onnx has the ONNX suffix .onnx but --format torchscript writes a TorchScript '
        'archive; name it model.ts or pass --format onnx'
    )
    assert suffix_conflict('model.ts', 'onnx') == (
        'model.ts has the TorchScript suffix .ts but --format onnx writes an ONNX model; name it '
        'model.onnx or pass --format torchscript'
    )


@pytest.mark.parametrize('dtype', ['bf16', 'fp16'])
def test_onnx_is_exported_in_fp32_only(tmp_path, dtype):
    net = build_network('tiny', 'none')
    with pytest.raises(ModelError, match=f'ONNX artifact is exported in fp32, not {dtype}'):
        export_artifact(
            net,
            tmp_path / 'm.onnx',
            input_size=INPUT_SIZE,
            fmt='onnx',
            dtype=dtype,
            encoder_pretrained=False,
            head_trained=False,
        )
    assert not list(tmp_path.iterdir())


def test_export_command_writes_onnx_from_the_suffix_and_info_lists_the_backends(tmp_path, capsys):
    out = tmp_path / 'features.onnx'
    argv = ['export', '--random-init', '--size', 'tiny', '--head-kind', 'none']
    assert main([*argv, '--input-size', '32x48', '-o', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'wrote' in printed and '(onnx, tiny, head none, 32x48, fp32)' in printed
    assert detect_format(out) == 'onnx'
    assert [p.name for p in tmp_path.iterdir()] == ['features.onnx']  # no temporary left
    assert main(['info', str(out), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['format'] == 'onnx' and info['sha256'] == file_sha256(out)
    assert main(['info', str(out)]) == 0
    assert 'backends: tensorrt, onnxruntime, openvino read it; installed here:' in (
        capsys.readouterr().out
    )


def test_export_command_refuses_onnx_to_a_ts_name_before_building(tmp_path, capsys):
    out = tmp_path / 'model.ts'
    assert main(['export', '--random-init', '--size', 'vitb16', '--format', 'onnx', '-o', str(out)])
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'writes an ONNX model; name it model.onnx' in err
    assert not out.exists()
