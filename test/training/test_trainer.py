"""Head training end to end on the synthetic bag with a tiny random encoder."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC
from pixio_ros.model import PixioEncoder, PixioNet, get_size, load_head_checkpoint
from pixio_ros.model.checkpoints import load_encoder_checkpoint
from pixio_ros.training import RGBDSample, TrainConfig, TrainingError, split_by_time, train_head

INPUT_SIZE = (64, 96)
SMALL_INPUT = (32, 48)


def config(encoder, out, **changes) -> TrainConfig:
    base = TrainConfig(encoder=encoder, head_kind='depth', out=out, input_size=INPUT_SIZE,
                       epochs=4, batch=3, lr=2e-3, progress=False)  # fmt: skip
    return replace(base, **changes)


@pytest.fixture(scope='module')
def split(bag_samples):
    return split_by_time([bag_samples], 0.25)


@pytest.fixture(scope='module')
def trained(tiny_encoder, split, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp('runs') / 'depth'
    return train_head(config(tiny_encoder, run_dir), *split)


def test_training_reduces_silog_by_a_third(trained):
    steps = trained.step_silog
    assert len(steps) == 12
    assert np.mean(steps[-3:]) <= 0.7 * np.mean(steps[:3])


def test_run_directory_contents(trained):
    names = {p.name for p in trained.run_dir.iterdir()}
    assert names >= {'run_config.json', 'best.safetensors', 'best.json', 'last.safetensors',
                     'last.json', 'last_state.pt', 'train_log.csv', 'curves.png'}  # fmt: skip
    log = (trained.run_dir / 'train_log.csv').read_text().splitlines()
    assert log[0].startswith('epoch,step,lr,train_loss,train_silog,val_abs_rel')
    assert len(log) == 1 + 4
    best = json.loads((trained.run_dir / 'best.json').read_text())
    assert best['metrics']['val_abs_rel'] == min(r['val_abs_rel'] for r in trained.history)
    assert (
        best['size'] == 'tiny'
        and best['head_kind'] == 'depth'
        and len(best['encoder_sha256']) == 64
    )


def eval_abs_rel(bag, artifact, out) -> float:
    argv = ['eval', str(bag), '--model', str(artifact), '--image-topic', COLOR_TOPIC,
            '--depth-topic', DEPTH_TOPIC, '--out', str(out), '--device', 'cpu']  # fmt: skip
    assert main(argv) == 0
    return json.loads((out / 'metrics.json').read_text())['summary']['depth']['abs_rel']


@pytest.mark.timeout(180)
def test_export_engine_and_eval(trained, tiny_encoder, sample_bag, bag_samples, tmp_path):
    from pixio_ros.runtime.engine import Engine

    trained_ts = tmp_path / 'trained.ts'
    untrained_ts = tmp_path / 'untrained.ts'
    common = ['export', '--encoder', str(tiny_encoder), '--input-size', '64x96']
    best = trained.run_dir / 'best.safetensors'
    assert main([*common, '--head', str(best), '-o', str(trained_ts)]) == 0
    assert main([*common, '--head-kind', 'depth', '-o', str(untrained_ts)]) == 0

    head, _ = load_head_checkpoint(best)
    net = PixioNet(load_encoder_checkpoint(tiny_encoder), head).eval()
    rgb = np.ascontiguousarray(bag_samples[-1].rgb[16:80, 16:112])
    with torch.no_grad():
        expected = net(torch.from_numpy(rgb)[None])['depth'][0, 0].numpy()
    prediction = Engine(trained_ts, device='cpu').infer(rgb, outputs=['depth'])
    np.testing.assert_allclose(prediction.depth, expected, rtol=0, atol=1e-4)

    trained_abs_rel = eval_abs_rel(sample_bag, trained_ts, tmp_path / 'eval_trained')
    untrained_abs_rel = eval_abs_rel(sample_bag, untrained_ts, tmp_path / 'eval_untrained')
    assert trained_abs_rel < untrained_abs_rel


def test_resume_is_bit_for_bit(tiny_encoder, split, tmp_path):
    short = {'epochs': 2, 'input_size': SMALL_INPUT}
    straight = train_head(config(tiny_encoder, tmp_path / 'straight', **short), *split)
    first = config(tiny_encoder, tmp_path / 'resumed', stop_after_epochs=1, **short)
    train_head(first, *split)
    resumed = train_head(replace(first, resume=True, stop_after_epochs=None), *split)
    assert resumed.step_silog == straight.step_silog[len(resumed.step_silog) :]
    a = load_file(str(tmp_path / 'straight' / 'last.safetensors'))
    b = load_file(str(tmp_path / 'resumed' / 'last.safetensors'))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-7)


def test_feature_cache_follows_the_same_trajectory(tiny_encoder, split, tmp_path):
    options = {'epochs': 2, 'input_size': SMALL_INPUT, 'crop': False, 'flip': False}
    plain = train_head(config(tiny_encoder, tmp_path / 'plain', **options), *split)
    cached = train_head(
        config(tiny_encoder, tmp_path / 'cached', cache_features=True, **options), *split
    )
    np.testing.assert_allclose(cached.step_silog, plain.step_silog, rtol=1e-4)


def test_cache_over_the_limit_is_refused(tiny_encoder, split, tmp_path):
    run = config(tiny_encoder, tmp_path / 'run', cache_features=True, cache_limit_gb=1e-6)
    with pytest.raises(TrainingError, match=r'--cache-features needs .* above --cache-limit-gb'):
        train_head(run, *split)
    assert not (tmp_path / 'run' / 'last.safetensors').exists()


def test_non_empty_run_dir_without_resume(tiny_encoder, split, tmp_path):
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'notes.txt').write_text('mine')
    with pytest.raises(TrainingError, match=r'exists and is not empty; pass --resume'):
        train_head(config(tiny_encoder, tmp_path / 'run', epochs=1), *split)
    assert [p.name for p in (tmp_path / 'run').iterdir()] == ['notes.txt']


def test_resume_with_another_encoder(tiny_encoder, split, tmp_path):
    run = config(tiny_encoder, tmp_path / 'run', epochs=2, input_size=SMALL_INPUT,
                 stop_after_epochs=1)  # fmt: skip
    train_head(run, *split)
    other = tmp_path / 'other.pth'
    torch.manual_seed(5)
    torch.save(PixioEncoder(get_size('tiny')).state_dict(), other)
    with pytest.raises(TrainingError, match=r'trained with other settings \(encoder_sha256'):
        train_head(replace(run, encoder=other, resume=True), *split)


def test_point_map_head_needs_intrinsics(tiny_encoder, split, tmp_path):
    train, val = split
    no_k = [RGBDSample(s.rgb, s.depth, None, s.source, s.index) for s in train]
    with pytest.raises(TrainingError, match=r'point-map head learns rays from the intrinsics'):
        train_head(config(tiny_encoder, tmp_path / 'run', head_kind='points'), no_k, val)


def test_all_invalid_ground_truth(tiny_encoder, split, tmp_path):
    train, val = split
    empty = [RGBDSample(s.rgb, s.depth * np.nan, s.k, s.source, s.index) for s in train]
    with pytest.raises(TrainingError, match=r'ground truth is invalid everywhere'):
        train_head(config(tiny_encoder, tmp_path / 'run'), empty, val)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'input_size': (60, 96)}, r'--input-size 60x96 must be multiples of 16'),
        ({'amp': 'fp16'}, r'--amp fp16 needs a CUDA device'),
        ({'epochs': 0}, r'--epochs 0 and --batch 3 must be >= 1'),
        ({'lr': -1.0}, r'--lr -1\.0 must be positive'),
    ],
)
def test_bad_options(tiny_encoder, split, tmp_path, changes, message):
    with pytest.raises(TrainingError, match=message):
        train_head(config(tiny_encoder, tmp_path / 'run', **changes), *split)
    assert not (tmp_path / 'run').exists()
