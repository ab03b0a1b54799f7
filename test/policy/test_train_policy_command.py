"""`pixio-ros train-policy`: the scores it prints and its one-line refusals."""

from __future__ import annotations

import re

import pytest
from task_features import ACTION

from pixio_ros.cli import main


def test_trains_and_prints_the_policy_beside_the_baseline(task_dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    code = main(
        ['train-policy', str(task_dataset), '--action', ACTION, '-o', str(out), '--epochs', '2',
         '--quiet', '--device', 'cpu']
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert 'held-out action MSE' in printed and 'mean-action baseline' in printed
    assert f'policy_path:={out / "best.safetensors"}' in printed
    assert (out / 'best.safetensors').is_file()


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (['--action', 'cmd_vel:linear.x'], 'not a column of'),
        (['--action', f'{ACTION},{ACTION}'], 'names a column twice'),
        (['--action', ACTION, '--dim', '30', '--heads', '4'], 'must be a positive multiple'),
        (['--action', ACTION, '--val-fraction', '1.5'], r'--val-fraction 1.5 must be in \[0, 1\)'),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    task_dataset, tmp_path, capsys, arguments, message
):
    out = tmp_path / 'run'
    code = main(['train-policy', str(task_dataset), '-o', str(out), '--quiet', *arguments])
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith('pixio-ros train-policy: error: ')
    assert re.search(message, error[0])
    assert not out.exists()


def test_a_missing_dataset_names_the_command_that_writes_one(tmp_path, capsys):
    missing = str(tmp_path / 'nope')
    assert main(['train-policy', missing, '--action', ACTION, '-o', str(tmp_path / 'r')]) == 1
    error = capsys.readouterr().err
    assert 'does not exist; write a feature dataset with `pixio-ros features' in error
