"""`pixio-ros eval` under torchrun writes the files of one process (timings aside)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import warnings

import pytest
import torch
from distributed_launch import RANK_THREADS, error_lines, launch, torchrun_command, torchrun_env

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import (
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    DEPTH_TOPIC,
    SampleBagSpec,
    write_sample_bag,
)

TIMING_COLUMNS = ('inference_ms', 'frame_ms')
TIMING_LINES = ('- Engine inference:', '- replay throughput:')


def without_timings(name: str, data: bytes) -> object:
    """A result file with what is measured (not computed) left out; other files as bytes."""
    if name == 'per_frame.csv':
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]
    if name == 'metrics.json':
        document = json.loads(data)
        speed = document['summary'].pop('speed')
        return document, sorted(speed)
    if name == 'report.md':
        return [line for line in data.decode().splitlines() if not line.startswith(TIMING_LINES)]
    return data


def eval_argv(bag, model) -> list[str]:
    argv = ['eval', str(bag), '--model', str(model), '--device', 'cpu']
    argv += ['--image-topic', COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC]
    return [*argv, '--camera-info-topic', COLOR_INFO_TOPIC, '--out', 'eval']


def results(directory) -> dict[str, object]:
    return {p.name: without_timings(p.name, p.read_bytes()) for p in sorted(directory.iterdir())}


@pytest.mark.timeout(300)
def test_two_ranks_write_the_one_process_result(
    sample_bag, tiny_artifact, tmp_path, monkeypatch, capsys
):
    argv = eval_argv(sample_bag, tiny_artifact('depth', (64, 96)))  # the same relative DIR
    (tmp_path / 'two').mkdir()
    launched = subprocess.run(
        torchrun_command(argv, 2),
        cwd=tmp_path / 'two',
        env=torchrun_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count('frames: ') == 1  # rank 0 prints the summary, once
    (tmp_path / 'one').mkdir()
    monkeypatch.chdir(tmp_path / 'one')
    threads = torch.get_num_threads()
    torch.set_num_threads(int(RANK_THREADS))  # the ranks' threads: the same kernels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the random-weights warning
            assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    one, two = results(tmp_path / 'one' / 'eval'), results(tmp_path / 'two' / 'eval')
    assert list(two) == list(one)
    assert {'per_frame.csv', 'metrics.json', 'report.md', 'panel_best.png'} <= set(one)
    for name in one:
        assert two[name] == one[name], name
    document = json.loads((tmp_path / 'two' / 'eval' / 'metrics.json').read_text())
    assert document['summary']['speed']['processes'] == 2
    assert document['summary']['frames']['evaluated'] == document['summary']['frames']['paired']
    assert document['summary']['points_3d'] is not None


@pytest.mark.timeout(300)
def test_ranks_that_plan_other_frames_are_refused_with_one_line(
    sample_bag, sample_spec, tiny_artifact, tmp_path
):
    dirs = [tmp_path / f'rank{rank}' for rank in range(2)]
    for directory in dirs:
        directory.mkdir()
    (dirs[0] / 'bag').symlink_to(sample_bag)  # the same relative PATH, another recording
    other = SampleBagSpec(frames=sample_spec.frames + 2, height=48, width=64)
    write_sample_bag(dirs[1] / 'bag', other)
    ranks = launch(eval_argv('bag', tiny_artifact('depth', (64, 96))), dirs)
    assert [rank.returncode for rank in ranks] == [1, 1], ranks[0].stderr[-3000:]
    (line,) = [line for rank in ranks for line in error_lines(rank.stderr, 'eval')]
    assert line in ranks[0].stderr
    assert line.startswith(
        'pixio-ros eval: error: rank 1 of 2 was started with other inputs than rank 0: '
        f"frame_counts is {{'image_messages': {other.frames}, "
    ), line
    assert f"on rank 1, {{'image_messages': {sample_spec.frames}, " in line
    assert '(set by the frames at PATH and the pairing options)' in line
    assert not (dirs[0] / 'eval').exists()
