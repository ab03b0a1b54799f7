"""Engine backends on tiny artifacts: choice, errors, caches, precision, the Engine contract."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch

from pixio_ros.model.artifact_format import ArtifactError, read_metadata
from pixio_ros.runtime import backends
from pixio_ros.runtime.backends import (
    backend_available,
    choose_backend,
    open_backend,
    parity,
)
from pixio_ros.runtime.backends.tensorrt_backend import (
    MAX_BATCH,
    NO_CUDA,
    provider_options,
    tensorrt_cache_dir,
)
from pixio_ros.runtime.engine import Engine, EngineError, RandomInitWarning
from pixio_ros.runtime.precision import cpu_precision, parse_cpu_flags

INPUT_SIZE = (64, 96)
EMBED_DIM = 64
GRID = (INPUT_SIZE[0] // 16, INPUT_SIZE[1] // 16)
HAS_ORT = backend_available('onnxruntime')
HAS_OPENVINO = backend_available('openvino')
HAS_CUDA = torch.cuda.is_available()
HAS_TENSORRT = backend_available('tensorrt')
NEEDS_ONNX = pytest.mark.skipif(
    not HAS_ORT, reason="onnxruntime is not installed (pip install 'pixio_ros[onnx]')"
)
NEEDS_CUDA = 'TensorRT needs an NVIDIA GPU with CUDA; this machine has none'
ONNX_BACKENDS = [
    pytest.param('onnxruntime', marks=NEEDS_ONNX),
    pytest.param(
        'openvino',
        marks=[
            NEEDS_ONNX,
            pytest.mark.skipif(not HAS_OPENVINO, reason="pip install 'pixio_ros[openvino]'"),
        ],
    ),
]


def make_engine(path, **kwargs) -> Engine:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        return Engine(path, **{'device': 'cpu', **kwargs})


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Compiled-model caches go to this test's directory, never the user's ~/.cache."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))


@pytest.fixture(scope='module')
def onnx_artifact(tiny_artifact):
    if not HAS_ORT:
        pytest.skip("the onnx extra is not installed (pip install 'pixio_ros[onnx]')")
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE, fmt='onnx')


@pytest.fixture(scope='module')
def ts_artifact(tiny_artifact):
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (*INPUT_SIZE, 3), dtype=np.uint8)


# --- the choice ----------------------------------------------------------------------------------


@pytest.mark.parametrize('fmt', ['torchscript', 'export'])
def test_auto_runs_torch_artifacts_on_torch(fmt):
    assert choose_backend(fmt, 'cpu')[0] == 'torch'
    assert choose_backend(fmt, 'auto')[0] == 'torch'


@pytest.mark.parametrize(
    ('installed', 'device', 'expected'),
    [
        ({'openvino', 'onnxruntime'}, 'cpu', 'openvino'),
        ({'onnxruntime'}, 'cpu', 'onnxruntime'),
        ({'openvino'}, 'auto', 'openvino'),
        ({'tensorrt', 'onnxruntime-cuda', 'openvino'}, 'cuda', 'tensorrt'),
        ({'onnxruntime-cuda', 'openvino'}, 'cuda:1', 'onnxruntime'),
        ({'tensorrt', 'openvino'}, 'auto', 'tensorrt'),
        ({'openvino'}, 'GPU', 'openvino'),
    ],
)
def test_auto_picks_the_fastest_installed_onnx_backend(monkeypatch, installed, device, expected):
    def available(name, *, cuda=False):
        return (f'{name}-cuda' if cuda and name == 'onnxruntime' else name) in installed

    monkeypatch.setattr(backends, 'backend_available', available)
    monkeypatch.setattr(
        torch.cuda, 'is_available', lambda: 'cuda' in device or 'tensorrt' in installed
    )
    name, why = choose_backend('onnx', device)
    assert name == expected and why.startswith(f'auto: {expected}')


def test_auto_without_any_onnx_backend_names_the_extras(monkeypatch):
    monkeypatch.setattr(backends, 'backend_available', lambda name, *, cuda=False: False)
    with pytest.raises(EngineError, match=r'needs an ONNX backend.*pixio_ros\[openvino\]'):
        choose_backend('onnx', 'cpu')


def test_an_explicit_cuda_device_without_a_gpu_backend_is_refused(monkeypatch):
    monkeypatch.setattr(backends, 'backend_available', lambda name, *, cuda=False: not cuda)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with pytest.raises(EngineError, match="device 'cuda' with an ONNX artifact needs backend"):
        choose_backend('onnx', 'cuda')


def test_a_backend_that_does_not_read_the_format_is_one_line(ts_artifact, onnx_artifact):
    with pytest.raises(
        EngineError, match=r'backend openvino does not read tiny_points.*TorchScript'
    ):
        make_engine(ts_artifact, backend='openvino')
    with pytest.raises(EngineError, match=r'backend torch does not read .*ONNX artifact') as info:
        make_engine(onnx_artifact, backend='torch')
    assert '\n' not in str(info.value)
    with pytest.raises(EngineError, match="backend 'jax' is not one of auto, torch"):
        make_engine(ts_artifact, backend='jax')


@pytest.mark.parametrize(
    ('name', 'module'), [('openvino', 'openvino'), ('onnxruntime', 'onnxruntime')]
)
def test_a_backend_not_installed_names_its_extra(onnx_artifact, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    with pytest.raises(EngineError, match=rf'backend {name} is not installed.*pip install') as info:
        open_backend(onnx_artifact, backend=name, device='cpu', parity_check=False)
    assert '\n' not in str(info.value)


# --- TensorRT ------------------------------------------------------------------------------------


@pytest.mark.skipif(HAS_CUDA, reason='this machine has CUDA')
@pytest.mark.parametrize('device', ['auto', 'cuda', 'cpu'])
def test_tensorrt_without_cuda_is_one_line_at_start_up(onnx_artifact, device):
    with pytest.raises(EngineError) as info:
        make_engine(onnx_artifact, backend='tensorrt', device=device)
    assert str(info.value) == NO_CUDA
    assert '\n' not in NO_CUDA and 'needs an NVIDIA GPU with CUDA' in NO_CUDA


def test_tensorrt_engines_are_cached_per_artifact_gpu_and_version(onnx_artifact, tmp_path):
    metadata = read_metadata(onnx_artifact)
    cache = tensorrt_cache_dir('ab' * 32, 'NVIDIA Jetson AGX Orin', '10.3.0')
    assert cache == tmp_path / 'cache' / 'pixio_ros' / 'tensorrt' / (
        'abababababababab-NVIDIA-Jetson-AGX-Orin-trt10.3.0'
    )
    options = provider_options(metadata, device_index=1, precision='fp16', cache=cache)
    assert options['trt_fp16_enable'] is True and options['device_id'] == 1
    assert options['trt_engine_cache_enable'] is True
    assert options['trt_engine_cache_path'] == str(cache)
    assert options['trt_profile_min_shapes'] == 'image:1x64x96x3'
    assert options['trt_profile_max_shapes'] == f'image:{MAX_BATCH}x64x96x3'
    assert (
        provider_options(metadata, device_index=0, precision='fp32', cache=cache)['trt_fp16_enable']
        is False
    )


@pytest.mark.skipif(not HAS_TENSORRT, reason='onnxruntime-gpu with TensorRT is not installed')
@pytest.mark.skipif(not HAS_CUDA, reason=NEEDS_CUDA)
@pytest.mark.parametrize('precision', ['fp16', 'fp32'])
def test_tensorrt_builds_caches_and_matches(onnx_artifact, image, precision, tmp_path):
    engine = make_engine(onnx_artifact, backend='tensorrt', device='cuda', precision=precision)
    assert engine.backend == 'tensorrt' and engine.device.type == 'cuda'
    assert all(result.ok for result in engine.backend_info.parity.values())
    assert list((tmp_path / 'cache' / 'pixio_ros' / 'tensorrt').iterdir())
    reference = make_engine(onnx_artifact, backend='onnxruntime')
    depth = engine.infer(image).depth
    np.testing.assert_allclose(depth, reference.infer(image).depth, atol=0.05 * 10)
    batch = engine.infer_batch([image, image[::-1].copy()])
    assert engine.batch_fallback is None and len(batch) == 2
    assert engine.device_memory_bytes() > 0


@pytest.mark.skipif(not HAS_CUDA, reason=NEEDS_CUDA)
def test_onnxruntime_on_cuda_keeps_tensors_on_the_gpu(onnx_artifact, image):
    if not backend_available('onnxruntime', cuda=True):
        pytest.skip('onnxruntime-gpu (CUDA provider) is not installed')
    engine = make_engine(onnx_artifact, backend='onnxruntime', device='cuda')
    cpu = make_engine(onnx_artifact, backend='onnxruntime')
    np.testing.assert_allclose(engine.infer(image).depth, cpu.infer(image).depth, atol=1e-3)


# --- the Engine contract on the ONNX backends ----------------------------------------------------


@pytest.mark.parametrize('backend', ONNX_BACKENDS)
def test_onnx_backends_keep_the_engine_contract(onnx_artifact, ts_artifact, image, backend):
    engine = make_engine(onnx_artifact, backend=backend)
    torch_engine = make_engine(ts_artifact)
    assert engine.backend == backend and torch_engine.backend == 'torch'
    assert engine.input_size == INPUT_SIZE and engine.device == torch.device('cpu')
    prediction = engine.infer(image)
    expected = torch_engine.infer(image)
    for name in ('depth', 'points', 'confidence', 'features', 'embedding'):
        ours, theirs = getattr(prediction, name), getattr(expected, name)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, atol=1e-4, err_msg=name)
    assert prediction.features.shape == (*GRID, EMBED_DIM)
    # On-device resize both ways, lazy outputs, as with torch.
    camera = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    resized = engine.infer(camera, output_size=(120, 160))
    assert resized.depth.shape == (120, 160) and resized.points.shape == (120, 160, 3)
    np.testing.assert_allclose(
        resized.depth, torch_engine.infer(camera, output_size=(120, 160)).depth, atol=1e-4
    )
    only = engine.infer(image, outputs={'embedding'})
    assert only.depth is None and only.features is None and only.embedding is not None
    # Outputs are the engine's own copies: the next frame does not overwrite them.
    kept = prediction.depth.copy()
    engine.infer(camera)
    np.testing.assert_array_equal(prediction.depth, kept)
    with pytest.raises(EngineError, match='float32.*uint8'):
        engine.infer(image.astype(np.float32))
    assert engine.device_memory_bytes() is None


@pytest.mark.parametrize('backend', ONNX_BACKENDS)
def test_batches_go_through_the_dynamic_batch_axis(onnx_artifact, backend):
    engine = make_engine(onnx_artifact, backend=backend)
    rng = np.random.default_rng(6)
    images = [
        rng.integers(0, 256, size, dtype=np.uint8)
        for size in [(64, 96, 3), (96, 144, 3), (48, 64, 3)]
    ]
    batched = engine.infer_batch(images, output_sizes=[None, (96, 144), None])
    assert engine.batch_fallback is None
    for index, rgb in enumerate(images):
        size = (96, 144) if index == 1 else None
        single = engine.infer(rgb, output_size=size)
        np.testing.assert_allclose(batched[index].depth, single.depth, atol=1e-4)
        np.testing.assert_allclose(batched[index].embedding, single.embedding, atol=1e-4)


@pytest.mark.parametrize('backend', ONNX_BACKENDS)
def test_model_info_and_diagnostics_name_the_backend(onnx_artifact, backend):
    engine = make_engine(onnx_artifact, backend=backend)
    info = engine.model_info()
    assert json.loads(json.dumps(info)) == info
    assert info['format'] == 'onnx' and info['backend']['name'] == backend
    assert info['backend']['precision'] == 'fp32' and info['backend']['selection'] == 'requested'
    summary = engine.backend_info.summary()
    assert summary.startswith(backend) and 'fp32' in summary


@pytest.mark.skipif(not HAS_OPENVINO, reason="pip install 'pixio_ros[openvino]'")
def test_auto_on_a_cpu_picks_openvino_and_says_why(onnx_artifact):
    engine = make_engine(onnx_artifact, backend='auto')
    assert engine.backend == 'openvino'
    assert engine.model_info()['backend']['selection'].startswith('auto: openvino')
    # Checked against the ONNX reference at start-up, within the fp32 tolerance.
    assert engine.backend_info.reference == 'onnxruntime fp32 on CPU'
    assert set(engine.backend_info.parity) == set(engine.outputs)
    assert all(result.max_abs < 1e-4 for result in engine.backend_info.parity.values())


@pytest.mark.skipif(not HAS_OPENVINO, reason="pip install 'pixio_ros[openvino]'")
def test_openvino_caches_the_compiled_model_by_sha256_and_version(onnx_artifact, tmp_path):
    import openvino

    engine = make_engine(onnx_artifact, backend='openvino')
    version = str(openvino.get_version()).split('-')[0]
    expected = (
        tmp_path / 'cache' / 'pixio_ros' / 'openvino' / (f'{engine.sha256[:16]}-openvino-{version}')
    )
    assert engine.backend_info.cache_dir == str(expected)
    assert any(expected.iterdir())  # the compiled blob
    assert make_engine(onnx_artifact, backend='openvino').backend_info.cache_dir == str(expected)


def test_auto_on_a_torchscript_artifact_is_torch_as_before(ts_artifact, image):
    engine = make_engine(ts_artifact)
    assert engine.backend == 'torch'
    assert engine.model_info()['backend']['selection'].startswith('auto: torch')
    assert engine.backend_info.parity == {}  # the reference itself: nothing to compare with


# --- precision -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('cpuinfo', 'model', 'flags'),
    [
        (
            'processor\t: 0\nmodel name\t: Intel Xeon 8480+\nflags\t\t: fpu avx2 avx512f '
            'avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n',
            'Intel Xeon 8480+',
            ('amx_bf16', 'avx512_bf16'),
        ),
        ('model name\t: AMD EPYC\nflags\t\t: fpu avx avx2\n', 'AMD EPYC', ()),
        ('processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU part\t: 0xd4f\n', '', ('bf16',)),
        ('', '', ()),
    ],
)
def test_native_bf16_is_read_from_cpuinfo_flags(cpuinfo, model, flags):
    assert parse_cpu_flags(cpuinfo) == (model, flags)


def test_this_cpu_is_described():
    cpu = cpu_precision()
    assert cpu.native_bf16 == bool(cpu.bf16_flags)
    assert ('native bf16' if cpu.native_bf16 else 'no native bf16') in cpu.describe()


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_onnxruntime_refuses_half_precision_on_a_cpu(onnx_artifact, precision):
    with pytest.raises(EngineError, match=f'fp32 only.*no {precision} kernels') as info:
        make_engine(onnx_artifact, backend='onnxruntime', precision=precision)
    assert '\n' not in str(info.value)


@pytest.mark.skipif(not HAS_OPENVINO, reason="pip install 'pixio_ros[openvino]'")
def test_openvino_bf16_only_where_the_cpu_has_it(onnx_artifact, image):
    if cpu_precision().native_bf16:
        engine = make_engine(onnx_artifact, backend='openvino', precision='bf16')
        assert engine.backend_info.precision == 'bf16'
        assert all(result.ok for result in engine.backend_info.parity.values())
        return
    with pytest.raises(EngineError, match='OpenVINO on CPU has no native bf16.*would compute fp32'):
        make_engine(onnx_artifact, backend='openvino', precision='bf16')


def test_torch_bf16_on_a_cpu_is_checked_and_says_whether_it_is_native(ts_artifact, image):
    engine = make_engine(ts_artifact, precision='bf16')
    info = engine.backend_info
    assert info.precision == 'bf16' and info.reference == 'torch fp32 (same artifact)'
    assert set(info.parity) == set(engine.outputs) and all(r.ok for r in info.parity.values())
    if not cpu_precision().native_bf16:
        assert 'bf16 emulated by torch, slower than fp32' in info.selection
    assert engine.infer(image).depth.dtype == np.float32


def test_a_backend_beyond_tolerance_is_refused_at_start_up(ts_artifact, monkeypatch):
    monkeypatch.setitem(
        parity.REDUCED_FRACTIONS, 'bf16', dict.fromkeys(('metric', 'confidence', 'range'), 1e-9)
    )
    with pytest.raises(
        EngineError,
        match=r'backend torch at bf16 on cpu differs from torch fp32 \(same artifact\) by .* '
        r'beyond the tolerance .* refused: use precision fp32',
    ) as info:
        make_engine(ts_artifact, precision='bf16')
    assert '\n' not in str(info.value)


def test_a_failing_forward_pass_is_one_engine_error(onnx_artifact, image):
    engine = make_engine(onnx_artifact, backend='onnxruntime')

    def broken(batch):
        raise RuntimeError('onnxruntime: Fail: out of memory')

    engine._module = broken
    with pytest.raises(EngineError, match='inference failed on cpu: onnxruntime: Fail'):
        engine.infer(image)


def test_an_unreadable_onnx_is_an_artifact_error_before_any_backend(tmp_path):
    path = tmp_path / 'cut.onnx'
    path.write_bytes(b'\x08\x09\x12\xff\xff\x03')
    with pytest.raises(ArtifactError, match='truncated ONNX model'):
        make_engine(path, backend='openvino')


# --- the commands --------------------------------------------------------------------------------


@pytest.mark.parametrize('backend', ONNX_BACKENDS)
def test_bench_and_eval_take_the_backend(onnx_artifact, tmp_path, capsys, backend):
    from pixio_ros.cli import main
    from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC, SampleBagSpec, write_sample_bag

    argv = ['bench', str(onnx_artifact), '--device', 'cpu', '--runs', '2', '--backend', backend]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f'  backend {backend} ' in printed and 'latency p50' in printed
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=2, height=48, width=64))
    out = tmp_path / 'out'
    argv = ['eval', str(bag), '--model', str(onnx_artifact), '--backend', backend]
    argv += ['--image-topic', COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC, '--device', 'cpu']
    assert main([*argv, '--max-frames', '1', '--out', str(out)]) == 0
    document = json.loads((out / 'metrics.json').read_text())
    assert document['model']['backend'].startswith(f'{backend} ')
    assert document['model']['metadata']['backend']['name'] == backend


def test_bench_refuses_a_backend_that_does_not_read_the_artifact(ts_artifact, capsys):
    from pixio_ros.cli import main

    assert main(['bench', str(ts_artifact), '--device', 'cpu', '--backend', 'openvino']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'backend openvino does not read' in err
