"""Policy training: loss falls, resume is bit for bit, held-out episodes beat the mean action."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from task_features import ACTION

from pixio_ros.policy import (
    FeatureDataset,
    PolicyConfig,
    load_policy,
    score_policy,
    split_episodes,
    train_policy,
)
from pixio_ros.training import TrainingError

EPOCHS = 40
# The trained head's error on held-out episodes must be below the mean action's by this factor
# (MSE halved at least; measured 2.8x with this data, a random tiny encoder and 15 episodes).
WIDE_MARGIN = 2.0


def config(dataset, out, **changes):
    options = {'epochs': EPOCHS, 'progress': False, 'val_fraction': 0.25}
    return PolicyConfig(dataset=dataset, actions=(ACTION,), out=out, **{**options, **changes})


@pytest.fixture(scope='module')
def trained(task_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp('policy') / 'run'
    return train_policy(config(task_dataset, out))


def test_training_loss_falls(trained):
    losses = [row['train_loss'] for row in trained.history]
    assert losses[-1] < 0.5 * losses[0]


def test_trained_policy_beats_the_mean_action_on_held_out_episodes(trained, task_dataset):
    run_config = json.loads((trained.run_dir / 'run_config.json').read_text())
    held_out = run_config['val_episodes']
    assert held_out and not set(held_out) & set(run_config['train_episodes'])
    # The last epoch's policy: best.safetensors was chosen on these episodes.
    policy = load_policy(trained.run_dir / 'last.safetensors')
    data = FeatureDataset(task_dataset, [ACTION], episodes=held_out).tensors()
    score = score_policy(policy, data)
    # Independent of the head: the baseline is the training episodes' mean command.
    train = FeatureDataset(task_dataset, [ACTION], episodes=run_config['train_episodes'])
    mean = train.tensors().action.double().mean()
    assert score.baseline_mse == pytest.approx(float(((data.action.double() - mean) ** 2).mean()))
    assert score.mse * WIDE_MARGIN < score.baseline_mse, score


def test_run_directory_holds_the_train_head_files(trained):
    names = {path.name for path in trained.run_dir.iterdir()}
    assert {
        'run_config.json',
        'best.safetensors',
        'last.safetensors',
        'last_state.pt',
        'train_log.csv',
        'curves.png',
        'best.json',
        'last.json',
    } <= names
    lines = (trained.run_dir / 'train_log.csv').read_text().strip().splitlines()
    assert len(lines) == EPOCHS + 1


def test_resume_continues_bit_for_bit(task_dataset, tmp_path):
    whole = train_policy(config(task_dataset, tmp_path / 'whole', epochs=4))
    first = train_policy(config(task_dataset, tmp_path / 'split', epochs=4, stop_after_epochs=2))
    assert len(first.history) == 2
    resumed = train_policy(config(task_dataset, tmp_path / 'split', epochs=4, resume=True))
    assert [row['train_loss'] for row in resumed.history] == [
        row['train_loss'] for row in whole.history
    ]
    expected = load_file(str(whole.run_dir / 'last.safetensors'))
    got = load_file(str(resumed.run_dir / 'last.safetensors'))
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_a_used_run_directory_is_refused_without_resume(trained, task_dataset):
    before = (trained.run_dir / 'last.safetensors').read_bytes()
    with pytest.raises(TrainingError, match='exists and is not empty; pass --resume'):
        train_policy(config(task_dataset, trained.run_dir))
    assert (trained.run_dir / 'last.safetensors').read_bytes() == before


def test_resume_with_other_settings_is_refused(trained, task_dataset):
    with pytest.raises(TrainingError, match=r'lr: was 0.001, now 0.01 \(set by --lr\)'):
        train_policy(config(task_dataset, trained.run_dir, lr=0.01, resume=True))


def test_unmatched_rows_are_skipped(task_dataset):
    everything = FeatureDataset(task_dataset, [ACTION])
    assert everything.unmatched == 2
    frames = everything.tensors().frame[everything.tensors().episode == 0].tolist()
    assert 3 not in frames and 4 not in frames
    assert torch.isfinite(everything.tensors().action).all()


@pytest.mark.parametrize(
    ('episodes', 'fraction', 'expected'),
    [
        ([0, 1, 2, 3], 0.25, ([0, 1, 2], [3])),
        ([3, 1, 2, 0, 1], 0.5, ([0, 1], [2, 3])),
        ([0, 1], 0.1, ([0], [1])),
        ([5], 0.5, ([5], [])),
        ([0, 1, 2], 0.0, ([0, 1, 2], [])),
    ],
)
def test_validation_takes_whole_episodes(episodes, fraction, expected):
    assert split_episodes(episodes, fraction) == expected
