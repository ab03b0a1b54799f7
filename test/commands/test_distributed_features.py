"""`pixio-ros features` under torchrun writes the dataset of one process, byte for byte."""

from __future__ import annotations

import subprocess

import pytest
import torch
from distributed_launch import RANK_THREADS, torchrun_command, torchrun_env
from test_features_command import FIRST_BURST_MS, SECOND_BURST_MS, SIGNALS, write_bag

from pixio_ros.cli import main

RANKS = 2


def files(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.timeout(300)
def test_two_ranks_write_the_one_process_dataset(tmp_path, tiny_artifact, capsys):
    # Three bags of 8, 5 and 3 frames: rank 0 extracts the first and the third, rank 1 the
    # second; with --batch-size 2 each bag ends on a short batch, and the first bag splits into
    # two episodes at its pause, so episode numbers carry over from bag to bag.
    bags = [
        write_bag(tmp_path / 'first'),
        write_bag(tmp_path / 'second', FIRST_BURST_MS, seed=1),
        write_bag(tmp_path / 'third', SECOND_BURST_MS, seed=2),
    ]
    argv = ['features', *map(str, bags), '--model', str(tiny_artifact('depth', (64, 96)))]
    argv += [*SIGNALS, '--episode-gap-s', '1', '--with-depth', '--batch-size', '2']
    argv += ['--device', 'cpu']
    (tmp_path / 'two').mkdir()
    launched = subprocess.run(
        torchrun_command([*argv, '-o', str(tmp_path / 'two' / 'ds')], RANKS),
        cwd=tmp_path / 'two',
        env=torchrun_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    (line,) = [line for line in launched.stdout.splitlines() if line.startswith('features: ')]
    assert line.startswith('features: 16 frames, 4 episodes, ')  # printed once, by rank 0
    assert sorted(p.name for p in (tmp_path / 'two').iterdir()) == ['ds']  # no staging left
    threads = torch.get_num_threads()
    torch.set_num_threads(int(RANK_THREADS))  # the ranks' threads: the same kernels
    try:
        assert main([*argv, '-o', str(tmp_path / 'one')]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    one, two = files(tmp_path / 'one'), files(tmp_path / 'two' / 'ds')
    assert list(two) == list(one)
    assert any(name.endswith('.arrow') for name in one)
    for name in one:
        assert two[name] == one[name], name
