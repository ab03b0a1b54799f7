"""The parity suite: every available backend x precision against eager torch fp32.

For the tiny size at two input sizes (64x96 and 96x128; the vitb16 rows come from
`benchmarks/backends.py`, too slow for a 2-core CI), each backend runs the exported artifact
(TorchScript for torch, ONNX for the others) on a batch of two images and every output is
compared with the eager PixioNet in fp32, within the per-output tolerances of
`pixio_ros.runtime.backends.parity` (its module docstring states them): depth and points in
metres, confidence absolute, features and embedding relative to their range. A combination this
machine cannot run is skipped with the reason; one a backend cannot compute natively is refused
at start-up (test_backends.py checks those refusals).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pixio_ros.model import build_network
from pixio_ros.runtime.backends import backend_available, open_backend
from pixio_ros.runtime.backends.parity import compare_outputs, probe_batch
from pixio_ros.runtime.engine import RandomInitWarning
from pixio_ros.runtime.precision import cpu_precision

SIZES = [(64, 96), (96, 128)]
SEED = 0  # test/conftest.py's TINY_ARTIFACT_SEED
HAS_CUDA = torch.cuda.is_available()
COMBINATIONS = [
    ('torch', 'fp32'),
    ('torch', 'bf16'),
    ('torch', 'fp16'),
    ('onnxruntime', 'fp32'),
    ('openvino', 'fp32'),
    ('openvino', 'bf16'),
    ('openvino', 'fp16'),
    ('tensorrt', 'fp32'),
    ('tensorrt', 'fp16'),
]


def openvino_cpu_has(capability: str) -> bool:
    import openvino

    return capability in openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def skip_reason(backend: str, precision: str) -> str | None:
    """Why this machine cannot run the combination, or None."""
    if backend != 'torch' and not backend_available('onnxruntime'):
        return "the onnx extra is not installed (pip install 'pixio_ros[onnx]')"
    if backend == 'tensorrt':
        if not HAS_CUDA:
            return 'TensorRT needs an NVIDIA GPU with CUDA; this machine has none'
        if not backend_available('tensorrt'):
            return 'onnxruntime-gpu with TensorRT is not installed'
    if backend == 'openvino':
        if not backend_available('openvino'):
            return "OpenVINO is not installed (pip install 'pixio_ros[openvino]')"
        if precision == 'bf16' and not openvino_cpu_has('BF16'):
            return f'this CPU has {cpu_precision().describe()}; OpenVINO bf16 needs it'
        if precision == 'fp16' and not openvino_cpu_has('FP16'):
            return 'this CPU has no native fp16 for OpenVINO'
    return None


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))


@pytest.fixture(scope='module')
def eager():
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return build_network('tiny', 'points')


def images(size: tuple[int, int]) -> torch.Tensor:
    """Noise (the start-up probe) and a smooth scene-like gradient, as one batch of two."""
    height, width = size
    rows = np.linspace(0, 255, height)[:, None, None]
    cols = np.linspace(0, 255, width)[None, :, None]
    gradient = np.concatenate(
        [
            np.broadcast_to(rows, (height, width, 1)),
            np.broadcast_to(cols, (height, width, 1)),
            np.full((height, width, 1), 90.0),
        ],
        axis=2,
    ).astype(np.uint8)
    return torch.cat([probe_batch(size), torch.from_numpy(gradient)[None]])


@pytest.mark.parametrize('size', SIZES, ids=lambda size: f'{size[0]}x{size[1]}')
@pytest.mark.parametrize(('backend', 'precision'), COMBINATIONS, ids=lambda v: v)
def test_backend_matches_eager_fp32_within_the_stated_tolerances(
    tiny_artifact, eager, size, backend, precision
):
    reason = skip_reason(backend, precision)
    if reason:
        pytest.skip(reason)
    fmt = 'torchscript' if backend == 'torch' else 'onnx'
    artifact = tiny_artifact(head_kind='points', input_size=size, fmt=fmt)
    device = 'cuda' if backend == 'tensorrt' else 'cpu'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        runner = open_backend(artifact, backend=backend, device=device, precision=precision)
    batch = images(size)
    with torch.inference_mode():
        reference = eager(batch)
        candidate = runner(batch.to(runner.device))
    results = compare_outputs(reference, candidate, precision, runner.metadata.max_depth)
    assert set(results) == set(reference)
    beyond = {
        name: f'{result.max_abs:.3g} > {result.tolerance:.3g} {result.unit}'
        for name, result in results.items()
        if not result.ok
    }
    assert not beyond, f'{backend} {precision} beyond tolerance: {beyond}'
    if precision == 'fp32':
        assert max(result.max_abs for result in results.values()) < 1e-4
