"""Head training end to end on the synthetic bag with a tiny random encoder."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC
from pixio_ros.model import PixioEncoder, PixioNet, get_size, load_head_checkpoint
from pixio_ros.model.checkpoints import load_encoder_checkpoint
from pixio_ros.training import (
    HeadTrainer,
    RGBDSample,
    TrainConfig,
    TrainingError,
    split_by_time,
    train_head,
)
from pixio_ros.training.augment import make_example
from pixio_ros.training.validation import validate

INPUT_SIZE = (64, 96)
SMALL_INPUT = (32, 48)


def config(encoder, out, **changes) -> TrainConfig:
    base = TrainConfig(
        encoder=encoder,
        head_kind='depth',
        out=out,
        input_size=INPUT_SIZE,
        epochs=4,
        batch=3,
        lr=2e-3,
        progress=False,
    )
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
    assert names >= {
        'run_config.json',
        'best.safetensors',
        'best.json',
        'last.safetensors',
        'last.json',
        'last_state.pt',
        'train_log.csv',
        'curves.png',
    }
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
    argv = [
        'eval',
        str(bag),
        '--model',
        str(artifact),
        '--image-topic',
        COLOR_TOPIC,
        '--depth-topic',
        DEPTH_TOPIC,
        '--out',
        str(out),
        '--device',
        'cpu',
    ]
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


def test_an_unreadable_cached_file_is_refused_with_its_name(tiny_encoder, split, tmp_path):
    train, val = split
    cache = tmp_path / 'features'
    run = config(
        tiny_encoder,
        tmp_path / 'first',
        cache_features=True,
        cache_dir=cache,
        epochs=1,
        input_size=SMALL_INPUT,
    )
    train_head(run, train[:3], val[:1])
    damaged = sorted(cache.glob('*.safetensors'))[1]
    damaged.write_bytes(damaged.read_bytes()[:20])  # cut short
    rerun = replace(run, out=tmp_path / 'second')
    with pytest.raises(TrainingError, match=rf'cached features {damaged} cannot be read .*delete'):
        train_head(rerun, train[:3], val[:1])
    assert not rerun.out.exists()


def test_cache_over_the_limit_is_refused(tiny_encoder, split, tmp_path):
    run = config(
        tiny_encoder,
        tmp_path / 'run',
        cache_features=True,
        cache_limit_gb=1e-6,
        epochs=1,
        input_size=SMALL_INPUT,
    )
    with pytest.raises(TrainingError, match=r'--cache-features needs .* above --cache-limit-gb'):
        train_head(run, *split)
    assert not (tmp_path / 'run').exists()
    train, val = split
    rerun = train_head(replace(run, cache_features=False), train[:3], val[:1])
    assert len(rerun.history) == 1


@pytest.mark.parametrize('resume', [False, True])
def test_run_that_never_finished_an_epoch_starts_again(tiny_encoder, split, tmp_path, resume):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'run_config.json').write_text(json.dumps({'batch': 99}))
    run = config(tiny_encoder, run_dir, epochs=1, input_size=SMALL_INPUT, resume=resume)
    train, val = split
    result = train_head(run, train[:3], val[:1])
    assert len(result.history) == 1
    assert json.loads((run_dir / 'run_config.json').read_text())['batch'] == 3
    assert (run_dir / 'last_state.pt').is_file()


@pytest.fixture(scope='module')
def stopped_run(tiny_encoder, split, tmp_path_factory):
    """A two-epoch run stopped after its first epoch, to resume."""
    run = config(
        tiny_encoder,
        tmp_path_factory.mktemp('runs') / 'stopped',
        epochs=2,
        input_size=SMALL_INPUT,
        stop_after_epochs=1,
    )
    train_head(run, *split)
    return replace(run, resume=True, stop_after_epochs=None)


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'batch': 4}, r'batch: was 3, now 4 \(set by --batch\)'),
        ({'lr': 1e-3}, r'learning_rate: was 0\.002, now 0\.001 \(set by --lr\)'),
        ({'seed': 1}, r'seed: was 0, now 1 \(set by --seed\)'),
        ({'crop': False}, r'crop: was True, now False \(set by --no-crop\)'),
        ({'flip': False}, r'flip: was True, now False \(set by --no-flip\)'),
        ({'min_depth': 0.1}, r'min_depth: was 0\.001, now 0\.1 \(set by --min-depth\)'),
        ({'cache_features': True}, r'cache_features: was False, now True'),
        ({'amp': 'bf16'}, r"amp: was 'none', now 'bf16' \(set by --amp\)"),
    ],
)
def test_resume_refuses_changed_settings(stopped_run, split, changes, message):
    with pytest.raises(TrainingError, match=r'trained with other settings \(.*' + message):
        train_head(replace(stopped_run, **changes), *split)


def test_resume_refuses_other_data(stopped_run, split):
    train, val = split
    with pytest.raises(TrainingError, match=r'train_frames: was 9, now 8 .*use a new --out'):
        train_head(stopped_run, train[:-1], val)
    with pytest.raises(TrainingError, match=r'train_data: was .* \(set by the training data'):
        train_head(stopped_run, list(reversed(train)), val)


@pytest.mark.parametrize('cached', [False, True], ids=['batch', 'cache'])
def test_amp_covers_the_encoder(tiny_encoder, split, tmp_path, cached):
    train, val = split
    run = config(
        tiny_encoder,
        tmp_path / 'run',
        input_size=SMALL_INPUT,
        amp='bf16',
        crop=False,
        flip=False,
        cache_features=cached,
    )
    trainer = HeadTrainer(run, train, val)
    if cached:
        trainer.build_cache()
    maps = trainer.make_batch([0]).maps
    image = make_example(
        train[0], SMALL_INPUT, crop=False, flip=False, generator=torch.Generator()
    ).image[None]
    with torch.no_grad():
        full = trainer.net.head_inputs(image)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            reduced = trainer.net.head_inputs(image)
    for got, low, high in zip(maps, reduced, full, strict=True):
        torch.testing.assert_close(got, low.float(), rtol=0, atol=0)
        assert not torch.equal(got, high)


def test_amp_covers_validation(tiny_encoder, split, tmp_path):
    train, val = split
    run = config(tiny_encoder, tmp_path / 'run', input_size=SMALL_INPUT)
    trainer = HeadTrainer(run, train, val)
    full = validate(trainer.net, val, run, trainer.device)
    reduced = validate(trainer.net, val, replace(run, amp='bf16'), trainer.device)
    assert full['abs_rel'] != reduced['abs_rel']
    assert abs(full['abs_rel'] - reduced['abs_rel']) < 0.05 * full['abs_rel']


def test_nan_validation_never_counts_as_best(tiny_encoder, split, tmp_path, caplog):
    train, val = split
    no_truth = [RGBDSample(s.rgb, s.depth * np.nan, s.camera, s.source, s.index) for s in val]
    run = config(tiny_encoder, tmp_path / 'run', epochs=2, input_size=SMALL_INPUT)
    with caplog.at_level(logging.WARNING, logger='pixio_ros.training'):
        result = train_head(run, train[:3], no_truth)
    err = '\n'.join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert err.count('validation abs_rel is NaN at epoch 1') == 1
    assert 'NaN at epoch 2' not in err
    assert result.best == {}
    assert not (tmp_path / 'run' / 'best.safetensors').exists()
    assert (tmp_path / 'run' / 'last.safetensors').is_file()


def test_without_validation_the_last_epoch_is_best(tiny_encoder, split, tmp_path):
    train, _ = split
    run = config(tiny_encoder, tmp_path / 'run', epochs=1, input_size=SMALL_INPUT)
    result = train_head(run, train[:3], [])
    assert result.best == result.history[-1]
    best = load_file(str(tmp_path / 'run' / 'best.safetensors'))
    last = load_file(str(tmp_path / 'run' / 'last.safetensors'))
    assert all(torch.equal(best[key], last[key]) for key in last)


def test_non_empty_run_dir_without_resume(tiny_encoder, split, tmp_path):
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'notes.txt').write_text('mine')
    with pytest.raises(TrainingError, match=r'exists and is not empty; pass --resume'):
        train_head(config(tiny_encoder, tmp_path / 'run', epochs=1), *split)
    assert [p.name for p in (tmp_path / 'run').iterdir()] == ['notes.txt']


def test_resume_with_another_encoder(tiny_encoder, split, tmp_path):
    run = config(
        tiny_encoder, tmp_path / 'run', epochs=2, input_size=SMALL_INPUT, stop_after_epochs=1
    )
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
    empty = [RGBDSample(s.rgb, s.depth * np.nan, s.camera, s.source, s.index) for s in train]
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
        ({'stop_after_epochs': 0}, r'--stop-after-epochs 0 must be >= 1'),
    ],
)
def test_bad_options(tiny_encoder, split, tmp_path, changes, message):
    with pytest.raises(TrainingError, match=message):
        train_head(config(tiny_encoder, tmp_path / 'run', **changes), *split)
    assert not (tmp_path / 'run').exists()


def test_library_reports_through_logging_not_print(tiny_encoder, split, tmp_path, capsys, caplog):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'run_config.json').write_text('{}')  # a run that never finished an epoch
    run = config(
        tiny_encoder, run_dir, epochs=1, input_size=SMALL_INPUT, resume=True, cache_features=True
    )
    train, val = split
    with caplog.at_level(logging.INFO, logger='pixio_ros.training'):
        train_head(run, train[:3], val[:1])
    assert tuple(capsys.readouterr()) == ('', '')
    messages = [record.getMessage() for record in caplog.records]
    assert any('holds no finished epoch' in message for message in messages)
    assert any(message.startswith('feature cache: 3 frames') for message in messages)
