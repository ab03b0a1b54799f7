"""Exported artifacts: reload without the model code, match eager, carry their metadata."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import torch
from torch import Tensor

from pixio_ros.model import (
    LinearDepthHead,
    ModelError,
    PixioEncoder,
    PixioNet,
    build_network,
    export_artifact,
    file_sha256,
    get_size,
)
from pixio_ros.model.artifact_format import detect_format, load_artifact, read_metadata

INPUT_SIZE = (64, 96)
CONTRACT_KEYS = {
    'format_version',
    'size',
    'embed_dim',
    'patch_size',
    'input_size',
    'mean',
    'std',
    'head_kind',
    'outputs',
    'max_depth',
    'encoder_pretrained',
    'head_trained',
    'feature_layout',
    'dtype',
    'torch_version',
    'sources',
}

# Loads an artifact the way the node does, with torch alone, and proves it never imported
# pixio_ros. Arguments: artifact path, format, inputs file, outputs file. Prints the metadata.
CONSUMER = """
import json, sys, torch
path, fmt, inputs_path, outputs_path = sys.argv[1:]
files = {'pixio_metadata.json': ''}
if fmt == 'torchscript':
    module = torch.jit.load(path, map_location='cpu', _extra_files=files)
else:
    module = torch.export.load(path, extra_files=files).module()
inputs = torch.load(inputs_path, weights_only=True)
with torch.no_grad():
    outputs = [module(image) for image in inputs]
loaded = sorted(name for name in sys.modules if name.startswith('pixio_ros'))
if loaded:
    raise SystemExit(f'consumer imported {loaded}')
torch.save(outputs, outputs_path)
print(files['pixio_metadata.json'].decode() if isinstance(files['pixio_metadata.json'], bytes)
      else files['pixio_metadata.json'])
"""


def rgb(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, generator=generator)


def tiny_net(kind: str = 'points'):
    torch.manual_seed(0)
    return build_network('tiny', kind)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(('fmt', 'suffix'), [('torchscript', '.ts'), ('export', '.pt2')])
def test_reloads_without_model_code_and_matches_eager(tmp_path, fmt, suffix):
    net = tiny_net()
    path = tmp_path / f'tiny{suffix}'
    metadata = export_artifact(
        net, path, input_size=INPUT_SIZE, fmt=fmt, encoder_pretrained=False, head_trained=False
    )
    inputs = [rgb(1, *INPUT_SIZE), rgb(2, 96, 128, seed=1)]
    torch.save(inputs, tmp_path / 'inputs.pt')
    result = subprocess.run(
        [
            sys.executable,
            '-c',
            CONSUMER,
            str(path),
            fmt,
            str(tmp_path / 'inputs.pt'),
            str(tmp_path / 'outputs.pt'),
        ],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == metadata.as_dict() == read_metadata(path).as_dict()
    outputs = torch.load(tmp_path / 'outputs.pt', weights_only=True)
    with torch.no_grad():
        for image, got in zip(inputs, outputs, strict=True):
            expected = net(image)
            assert list(got) == list(expected)
            for key in expected:
                torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-4)


def test_metadata_describes_the_artifact(tmp_path):
    source = tmp_path / 'encoder.pth'
    source.write_bytes(b'pretend checkpoint bytes')
    metadata = export_artifact(
        tiny_net('depth'),
        tmp_path / 'depth.ts',
        input_size=(32, 48),
        sources={'encoder': source},
        encoder_pretrained=True,
        head_trained=False,
    ).as_dict()
    assert CONTRACT_KEYS <= set(metadata)
    assert metadata['format_version'] == 1
    assert metadata['size'] == 'tiny' and metadata['embed_dim'] == 64
    assert metadata['patch_size'] == 16 and metadata['input_size'] == [32, 48]
    assert metadata['mean'] == pytest.approx([0.485, 0.456, 0.406])
    assert metadata['std'] == pytest.approx([0.229, 0.224, 0.225])
    assert metadata['head_kind'] == 'depth' and metadata['max_depth'] == 10.0
    assert metadata['outputs'] == ['depth', 'features', 'embedding']
    assert metadata['encoder_pretrained'] is True and metadata['head_trained'] is False
    assert metadata['dtype'] == 'fp32' and metadata['torch_version'] == torch.__version__
    assert metadata['sources'] == {
        'encoder': hashlib.sha256(b'pretend checkpoint bytes').hexdigest()
    }
    assert 0 <= metadata['parity_max_abs_diff'] <= 1e-4


def test_fixture_artifact_is_a_random_init_point_map(tiny_artifact):
    path = tiny_artifact()
    assert tiny_artifact('points', (64, 96), 'torchscript') == path
    metadata = read_metadata(path)
    assert metadata.head_kind == 'points' and metadata.input_size == (64, 96)
    assert metadata.encoder_pretrained is False and metadata.head_trained is False


def test_existing_output_is_not_overwritten(tmp_path):
    path = tmp_path / 'taken.ts'
    path.write_bytes(b'keep me')
    with pytest.raises(
        ModelError, match=r'taken\.ts exists already, not overwriting; pass --force'
    ):
        export_artifact(
            tiny_net(), path, input_size=INPUT_SIZE, encoder_pretrained=False, head_trained=False
        )
    assert path.read_bytes() == b'keep me'
    export_artifact(
        tiny_net(),
        path,
        input_size=INPUT_SIZE,
        encoder_pretrained=False,
        head_trained=False,
        force=True,
    )
    assert read_metadata(path).head_kind == 'points'
    assert [p.name for p in tmp_path.iterdir()] == ['taken.ts']


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({'input_size': (60, 96)}, r'input size 60x96 must be positive multiples of 16'),
        ({'fmt': 'tflite'}, r"unknown format 'tflite'; expected one of torchscript, export, onnx"),
        ({'dtype': 'int8'}, r"unknown dtype 'int8'; expected one of fp32, fp16, bf16"),
        ({'sources': {'encoder': '/nonexistent/x.pth'}}, r"source 'encoder' .* does not exist"),
    ],
)
def test_bad_export_options(tmp_path, options, message):
    kwargs = {'input_size': INPUT_SIZE, **options}
    with pytest.raises(ModelError, match=message):
        export_artifact(
            tiny_net(), tmp_path / 'x.ts', encoder_pretrained=False, head_trained=False, **kwargs
        )
    assert not (tmp_path / 'x.ts').exists()


@pytest.mark.parametrize(
    ('name', 'fmt', 'message'),
    [
        (
            'model.ts',
            'export',
            r'model\.ts has the TorchScript suffix \.ts but --format export '
            r'writes a torch\.export archive; name it model\.pt2 or pass --format torchscript',
        ),
        (
            'model.pt2',
            'torchscript',
            r'model\.pt2 has the torch\.export suffix \.pt2 but --format '
            r'torchscript writes a TorchScript archive; name it model\.ts or pass --format export',
        ),
    ],
)
def test_suffix_of_the_other_format_is_refused_before_writing(tmp_path, name, fmt, message):
    with pytest.raises(ModelError, match=message):
        export_artifact(
            tiny_net(),
            tmp_path / name,
            input_size=INPUT_SIZE,
            fmt=fmt,
            encoder_pretrained=False,
            head_trained=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_any_other_name_is_written_and_loads_by_content(tmp_path):
    path = tmp_path / 'model.bin'
    metadata = export_artifact(
        tiny_net(), path, input_size=INPUT_SIZE, encoder_pretrained=False, head_trained=False
    )
    assert detect_format(path) == 'torchscript'
    assert load_artifact(path).metadata == metadata


class CompiledDiffersHead(LinearDepthHead):
    """A linear head whose compiled form adds a metre: what the parity check exists to catch."""

    def forward(self, maps: list[Tensor], height: int, width: int) -> dict[str, Tensor]:
        """The linear probe's depth, plus 1 m when running as TorchScript."""
        raw = self.conv(self.norm(maps[0]))
        depth = torch.nn.functional.interpolate(
            raw, size=[height, width], mode='bilinear', align_corners=True
        )
        if torch.jit.is_scripting():
            depth = depth + 1.0
        return {'depth': depth}


def test_compiled_model_that_differs_is_not_written(tmp_path):
    size = get_size('tiny')
    torch.manual_seed(0)
    head = CompiledDiffersHead(2 * size.embed_dim, block_index=size.last_block_index)
    net = PixioNet(PixioEncoder(size), head)
    path = tmp_path / 'skewed.ts'
    with pytest.raises(ModelError, match=r'differs from the eager model by 1 .*not writing'):
        export_artifact(
            net, path, input_size=(32, 48), encoder_pretrained=False, head_trained=False
        )
    assert list(tmp_path.iterdir()) == []


def test_file_sha256(tmp_path):
    path = tmp_path / 'blob'
    path.write_bytes(bytes(range(256)) * 5000)
    assert file_sha256(path) == hashlib.sha256(bytes(range(256)) * 5000).hexdigest()


@pytest.mark.parametrize('kind', ['depth', 'linear', 'none'])
def test_every_head_kind_exports(tmp_path, kind):
    path = tmp_path / f'{kind}.ts'
    metadata = export_artifact(
        tiny_net(kind), path, input_size=(32, 48), encoder_pretrained=False, head_trained=False
    )
    module = torch.jit.load(str(path), map_location='cpu')
    with torch.no_grad():
        outputs = module(rgb(1, 48, 32))
    assert list(outputs) == list(metadata.outputs)
    assert outputs['features'].shape == (1, 64, 3, 2)
