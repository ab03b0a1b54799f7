"""Engine on real tiny TorchScript / torch.export artifacts: outputs, resizing, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest
import torch

from pixio_ros.model.artifact_format import ArtifactError
from pixio_ros.runtime.engine import Engine, EngineError, RandomInitWarning

INPUT_SIZE = (64, 96)
EMBED_DIM = 64  # the tiny size's width
GRID = (INPUT_SIZE[0] // 16, INPUT_SIZE[1] // 16)


def make_engine(path, **kwargs) -> Engine:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        return Engine(path, device='cpu', **kwargs)


@pytest.fixture(scope='module')
def points_engine(tiny_artifact) -> Engine:
    return make_engine(tiny_artifact(head_kind='points', input_size=INPUT_SIZE))


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (*INPUT_SIZE, 3), dtype=np.uint8)


def test_metadata_size_outputs_and_sha256(points_engine, tiny_artifact):
    path = tiny_artifact(head_kind='points', input_size=INPUT_SIZE)
    assert points_engine.input_size == INPUT_SIZE
    assert set(points_engine.outputs) == {'depth', 'points', 'confidence', 'features', 'embedding'}
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    assert points_engine.sha256 == sha256
    assert points_engine.metadata.head_kind == 'points' and points_engine.patch_size == 16
    info = points_engine.model_info()
    assert info['sha256'] == sha256 and info['input_size'] == list(INPUT_SIZE)
    assert json.loads(json.dumps(info)) == info
    assert points_engine.device == torch.device('cpu')
    assert points_engine.backend == 'torch' and info['backend']['name'] == 'torch'
    assert points_engine.device_memory_bytes() is None


def test_infer_matches_the_artifact_run_directly(points_engine, tiny_artifact, image):
    module = torch.jit.load(str(tiny_artifact(head_kind='points', input_size=INPUT_SIZE)))
    with torch.inference_mode():
        reference = module(torch.from_numpy(image)[None])
    prediction = points_engine.infer(image)
    np.testing.assert_allclose(prediction.depth, reference['depth'][0, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(
        prediction.points, reference['points'][0].permute(1, 2, 0).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        prediction.features, reference['features'][0].permute(1, 2, 0).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(prediction.embedding, reference['embedding'][0].numpy(), atol=1e-5)
    assert prediction.depth.shape == INPUT_SIZE
    assert prediction.points.shape == (*INPUT_SIZE, 3)
    assert prediction.confidence.shape == INPUT_SIZE
    assert prediction.features.shape == (*GRID, EMBED_DIM)
    assert prediction.embedding.shape == (EMBED_DIM,)
    assert all(
        array.dtype == np.float32
        for array in (prediction.depth, prediction.points, prediction.features)
    )
    assert prediction.inference_ms > 0


def test_strided_views_give_the_same_result(points_engine, image):
    bgr = np.ascontiguousarray(image[..., ::-1])
    from_view = points_engine.infer(bgr[..., ::-1], outputs={'embedding'})
    from_copy = points_engine.infer(image, outputs={'embedding'})
    np.testing.assert_array_equal(from_view.embedding, from_copy.embedding)


def test_camera_sized_input_and_output(points_engine):
    camera_image = np.full((120, 160, 3), 90, dtype=np.uint8)
    at_input = points_engine.infer(np.full((*INPUT_SIZE, 3), 90, dtype=np.uint8))
    prediction = points_engine.infer(camera_image, output_size=(120, 160))
    assert prediction.depth.shape == (120, 160)
    assert prediction.points.shape == (120, 160, 3)
    assert prediction.features.shape == (*GRID, EMBED_DIM)
    # A uniform image resizes to the same uniform input, so the embedding must not change.
    np.testing.assert_allclose(prediction.embedding, at_input.embedding, atol=1e-5)
    assert np.nanmean(prediction.depth) == pytest.approx(np.nanmean(at_input.depth), rel=0.05)


def test_only_requested_outputs_are_returned(points_engine, image):
    prediction = points_engine.infer(image, outputs={'embedding'})
    assert prediction.embedding is not None
    assert prediction.depth is None and prediction.points is None and prediction.features is None


@pytest.mark.parametrize(
    ('head_kind', 'present', 'absent'),
    [
        ('depth', {'depth', 'features', 'embedding'}, {'points', 'confidence'}),
        ('none', {'features', 'embedding'}, {'depth', 'points', 'confidence'}),
    ],
)
def test_head_kinds_provide_their_outputs(tiny_artifact, image, head_kind, present, absent):
    engine = make_engine(tiny_artifact(head_kind=head_kind, input_size=INPUT_SIZE), warmup_runs=0)
    prediction = engine.infer(image)
    assert {name for name in present if getattr(prediction, name) is None} == set()
    assert {name for name in absent if getattr(prediction, name) is not None} == set()


def test_torch_export_artifact_matches_torchscript(tiny_artifact, points_engine, image):
    exported = make_engine(
        tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt='export'), warmup_runs=0
    )
    assert exported.input_size == INPUT_SIZE
    np.testing.assert_allclose(
        exported.infer(image).depth, points_engine.infer(image).depth, atol=1e-4
    )


@pytest.mark.parametrize(
    ('fmt', 'wrong_name'), [('export', 'model.ts'), ('torchscript', 'model.pt2')]
)
def test_artifact_with_the_other_suffix_loads_by_content(
    tiny_artifact, points_engine, image, tmp_path, fmt, wrong_name
):
    source = tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt=fmt)
    engine = make_engine(shutil.copy(source, tmp_path / wrong_name), warmup_runs=0)
    assert engine.metadata.format == fmt
    np.testing.assert_allclose(
        engine.infer(image).depth, points_engine.infer(image).depth, atol=1e-4
    )


@pytest.mark.parametrize('head_kind', ['points', 'none'])
def test_random_init_artifact_warns_once(tiny_artifact, head_kind):
    path = tiny_artifact(head_kind=head_kind, input_size=INPUT_SIZE)
    with pytest.warns(RandomInitWarning, match='random-init encoder.*NOT meaningful') as record:
        Engine(path, device='cpu', warmup_runs=0)
    assert len([w for w in record if issubclass(w.category, RandomInitWarning)]) == 1


@pytest.mark.parametrize('precision', ['bf16'])
def test_half_precision_outputs_float32(tiny_artifact, image, precision):
    engine = make_engine(
        tiny_artifact(head_kind='points', input_size=INPUT_SIZE), precision=precision, warmup_runs=0
    )
    prediction = engine.infer(image)
    assert prediction.depth.dtype == np.float32
    assert np.isfinite(prediction.depth).all()


@pytest.mark.parametrize(
    ('array', 'match'),
    [
        (np.zeros((*INPUT_SIZE, 3), dtype=np.float32), 'float32.*uint8'),
        (np.zeros(INPUT_SIZE, dtype=np.uint8), r'\(64, 96\).*\(H, W, 3\)'),
        (np.zeros((0, 96, 3), dtype=np.uint8), 'non-empty'),
        (np.zeros((*INPUT_SIZE, 4), dtype=np.uint8), r'\(H, W, 3\)'),
    ],
)
def test_bad_images_raise(points_engine, array, match):
    with pytest.raises(EngineError, match=match):
        points_engine.infer(array)


def test_unknown_output_name_raises(points_engine, image):
    with pytest.raises(EngineError, match="unknown outputs \\['normals'\\]"):
        points_engine.infer(image, outputs={'normals'})


def test_missing_artifact_says_how_to_make_one(tmp_path):
    with pytest.raises(ArtifactError, match='absent.ts does not exist.*pixio-ros export'):
        Engine(tmp_path / 'absent.ts')


def test_directory_is_named_as_such(tmp_path):
    with pytest.raises(ArtifactError, match='is a directory, not an artifact file'):
        Engine(tmp_path)


def not_a_zip(path):
    path.write_bytes(b'not a zip archive at all')


def zip_of_notes(path):
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('notes/readme.txt', 'hello')


def checkpoint(path):
    torch.save({'w': torch.zeros(1)}, path)


def plain_torchscript(path):
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))


@pytest.mark.parametrize(
    ('make', 'name', 'match'),
    [
        (not_a_zip, 'garbage.ts', r'garbage\.ts is not a Pixio artifact \(not a zip'),
        (zip_of_notes, 'notes.pt2', r'notes\.pt2 is a zip archive but neither a TorchScript nor'),
        (checkpoint, 'weights.pt2', r'weights\.pt2 is a torch\.save checkpoint'),
        (plain_torchscript, 'plain.ts', r'plain\.ts is a TorchScript archive without pixio_meta'),
    ],
)
def test_files_that_are_not_artifacts_are_one_line(tmp_path, make, name, match):
    path = tmp_path / name
    make(path)
    with pytest.raises(ArtifactError, match=match) as info:
        Engine(path, device='cpu')
    assert '\n' not in str(info.value) and 'pixio-ros export' in str(info.value)


def test_truncated_artifact_is_one_line(tiny_artifact, tmp_path):
    data = tiny_artifact(head_kind='points', input_size=INPUT_SIZE).read_bytes()
    path = tmp_path / 'cut.ts'
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r'cut\.ts is not a Pixio artifact.*truncated') as info:
        Engine(path, device='cpu')
    assert '\n' not in str(info.value)


def with_metadata(tiny_artifact, path, edit) -> None:
    """A copy of the tiny artifact whose embedded metadata is ``edit(metadata)``."""
    source = tiny_artifact(head_kind='points', input_size=INPUT_SIZE)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, 'w') as new:
        for name in old.namelist():
            data = old.read(name)
            if name.endswith('/extra/pixio_metadata.json'):
                data = json.dumps(edit(json.loads(data))).encode()
            new.writestr(name, data)


def test_metadata_without_input_size_is_refused(tiny_artifact, tmp_path):
    path = tmp_path / 'bad_meta.ts'
    with_metadata(tiny_artifact, path, lambda m: {k: v for k, v in m.items() if k != 'input_size'})
    with pytest.raises(ArtifactError, match="field 'input_size' is missing"):
        Engine(path, device='cpu')


@pytest.mark.parametrize(('version', 'shown'), [(None, 'None'), (2, '2'), ('1', "'1'")])
def test_other_artifact_format_versions_are_refused(tiny_artifact, tmp_path, version, shown):
    path = tmp_path / 'other_format.ts'
    with_metadata(tiny_artifact, path, lambda m: {**m, 'format_version': version})
    with pytest.raises(
        ArtifactError,
        match=rf'format_version {shown}, this pixio_ros reads '
        r'format_version 1; re-export.*pixio-ros export',
    ):
        Engine(path, device='cpu')


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'device': 'cuda'}, 'CUDA is not available'),
        ({'device': 'tpu'}, "device 'tpu'"),
        ({'precision': 'fp64'}, "precision 'fp64'"),
        ({'warmup_runs': -1}, 'warmup_runs'),
        ({'backend': 'jax'}, "backend 'jax' is not one of auto, torch, onnxruntime"),
        ({'backend': 'openvino'}, 'backend openvino does not read .*TorchScript artifact'),
    ],
)
def test_bad_options_raise(tiny_artifact, kwargs, match):
    if kwargs.get('device') == 'cuda' and torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    path = tiny_artifact(head_kind='points', input_size=INPUT_SIZE)
    options = {'device': 'cpu', **kwargs}
    with pytest.raises(EngineError, match=match):
        Engine(path, **options)
