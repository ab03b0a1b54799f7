"""Engine.infer_batch: several camera images of different sizes in one forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.runtime.engine import Engine, EngineError

INPUT_SIZE = (64, 96)
# Images of three cameras: other sizes than the artifact input, and than each other.
SIZES = [(96, 144), (64, 80), (120, 160)]
# A batch and single forwards differ by float summation order only.
ATOL = 1e-4


@pytest.fixture(scope='module', params=['torchscript', 'export'])
def engine(request, tiny_artifact):
    return Engine(tiny_artifact('points', INPUT_SIZE, request.param), device='cpu', warmup_runs=0)


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (*size, 3), np.uint8) for size in SIZES]


def test_batch_equals_one_forward_per_image(engine):
    rgbs = images()
    batch = engine.infer_batch(rgbs, output_sizes=SIZES)
    assert engine.batch_fallback is None
    assert len(batch) == len(rgbs)
    for rgb, size, got in zip(rgbs, SIZES, batch, strict=True):
        single = engine.infer(rgb, output_size=size)
        assert got.depth is not None and got.depth.shape == size
        assert got.points is not None and got.points.shape == (*size, 3)
        for name in ('depth', 'points', 'confidence', 'features', 'embedding'):
            np.testing.assert_allclose(
                getattr(got, name), getattr(single, name), atol=ATOL, err_msg=name
            )
    assert len({prediction.inference_ms for prediction in batch}) == 1


def test_batch_of_one_is_identical_to_infer(engine):
    [rgb] = images()[:1]
    [got] = engine.infer_batch([rgb], outputs={'depth'}, output_sizes=[None])
    single = engine.infer(rgb, outputs={'depth'})
    assert got.depth is not None and got.depth.shape == INPUT_SIZE
    np.testing.assert_array_equal(got.depth, single.depth)
    assert got.features is None


def test_a_bad_image_names_its_index(engine):
    rgbs = images()
    rgbs[1] = np.zeros((4, 4), np.uint8)
    with pytest.raises(EngineError, match=r'batch image 1: input image is uint8 \(4, 4\)'):
        engine.infer_batch(rgbs)


def test_sizes_must_match_the_images(engine):
    with pytest.raises(EngineError, match='3 images but 2 output sizes'):
        engine.infer_batch(images(), output_sizes=SIZES[:2])
