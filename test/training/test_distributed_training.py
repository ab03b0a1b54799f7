"""`pixio-ros train-head` on two gloo ranks against one process: same run, one writer, one line.

The ranks are real processes in a real torch.distributed process group, started as torchrun
starts them (`distributed_launch.launch`, each rank in its own working directory with a
relative --out, so anything a rank other than 0 wrote would show up in its directory), or by
torchrun itself for the killed-rank test. The runs are tiny (32x48, 10 frames, 2 epochs of 4
steps): start-up dominates, so each run serves several assertions.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import signal
import subprocess
import time

import psutil
import pytest
import torch
from distributed_launch import error_lines, launch, torchrun_command, torchrun_env
from safetensors import safe_open
from safetensors.torch import load_file

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC, SampleBagSpec, write_sample_bag
from pixio_ros.model import build_head, get_size

RANKS = 2
# 12 bag frames -> 10 training / 2 validation; a global batch of 3 gives steps of 3, 3, 3, 1
# examples, so in the last step of each epoch rank 1 has none (it must still take part).
TRAINING = ['--input-size', '32x48', '--batch', '3', '--lr', '2e-3', '--quiet']
# Two ranks compute the same sums in another order than one process: each encodes and sums its
# own examples (other matmul shapes, two partial sums, then one all-reduce), so fp32 rounding
# differs by ~1e-7 relative per step, and AdamW's normalised steps carry it on. Measured over
# these 8 steps (2 ranks x 1 thread against 1 process x 2 threads, 2026-12-07): weights differ
# by at most 1.3e-6, while training moved them by up to 1.0e-2. WEIGHT_ATOL leaves ~8x for other
# CPUs' kernels and is still 1000x below what the steps changed (checked, so the test can fail).
WEIGHT_ATOL = 1e-5
TRAINED_CHANGE = 1000 * WEIGHT_ATOL
METRIC_RTOL = 1e-5
RUN_FILES = {
    'run_config.json',
    'best.safetensors',
    'best.json',
    'last.safetensors',
    'last.json',
    'last_state.pt',
    'train_log.csv',
    'curves.png',
}


def train_argv(encoder, bag, *extra: str) -> list[str]:
    argv = ['train-head', '--encoder', str(encoder), '--bag', str(bag)]
    argv += ['--image-topic', COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC, *TRAINING]
    return [*argv, *extra]


def rank_dirs(base):
    dirs = [base / f'rank{rank}' for rank in range(RANKS)]
    for directory in dirs:
        directory.mkdir(parents=True)
    return dirs


def run_ranks(argv, dirs):
    """Train on one rank per directory; checks rank 1 wrote and printed nothing."""
    results = launch(argv, dirs)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    assert list(dirs[1].iterdir()) == []
    assert (results[1].stdout, results[1].stderr) == ('', '')
    return results


def log_rows(run_dir):
    with (run_dir / 'train_log.csv').open() as stream:
        return [{k: v for k, v in row.items() if k != 'seconds'} for row in csv.DictReader(stream)]


def assert_heads_close(a, b, atol):
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=atol)


def one_process(argv, out, capsys):
    with torch.random.fork_rng():
        code = main([*argv, '--out', str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


@pytest.fixture(scope='module')
def two_ranks(tiny_encoder, sample_bag, tmp_path_factory):
    """A straight 2-epoch run on two ranks (relative --out: it lands in rank 0's directory)."""
    dirs = rank_dirs(tmp_path_factory.mktemp('two_ranks'))
    argv = [*train_argv(tiny_encoder, sample_bag), '--epochs', '2', '--out', 'run']
    return dirs[0] / 'run', run_ranks(argv, dirs)


@pytest.mark.timeout(300)
def test_two_ranks_train_the_one_process_run_and_only_rank_0_writes(
    two_ranks, tiny_encoder, sample_bag, tmp_path, capsys
):
    run_dir, results = two_ranks
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    assert '10 training / 2 validation frames' in results[0].stderr
    assert 'best epoch' in results[0].stdout
    assert json.loads((run_dir / 'run_config.json').read_text())['processes'] == RANKS
    one_process(train_argv(tiny_encoder, sample_bag, '--epochs', '2'), tmp_path / 'one', capsys)
    one_dir = tmp_path / 'one'
    assert_heads_close(run_dir / 'last.safetensors', one_dir / 'last.safetensors', WEIGHT_ATOL)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the trainer's head initialisation (--seed 0)
        initial = build_head(get_size('tiny'), 'depth', max_depth=10.0).state_dict()
    trained = load_file(str(one_dir / 'last.safetensors'))
    assert max(float((trained[k] - initial[k]).abs().max()) for k in initial) > TRAINED_CHANGE
    two, one = log_rows(run_dir), log_rows(one_dir)
    assert [row['step'] for row in two] == [row['step'] for row in one] == ['4', '8']
    for row_two, row_one in zip(two, one, strict=True):
        for key in row_one:
            assert float(row_two[key]) == pytest.approx(float(row_one[key]), rel=METRIC_RTOL), key


@pytest.mark.timeout(300)
def test_resume_needs_the_same_ranks_and_continues_bit_for_bit(
    two_ranks, tiny_encoder, sample_bag, tmp_path, capsys
):
    straight, _ = two_ranks
    dirs = rank_dirs(tmp_path)
    argv = [*train_argv(tiny_encoder, sample_bag), '--epochs', '2', '--out', 'run']
    run_ranks([*argv, '--stop-after-epochs', '1'], dirs)
    run_dir = dirs[0] / 'run'
    stopped = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    with torch.random.fork_rng():
        assert main([*argv[:-1], str(run_dir), '--resume']) == 1
    (line,) = error_lines(capsys.readouterr().err, 'train-head')
    assert 'processes: was 2, now 1' in line and 'torchrun --nproc-per-node' in line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == stopped  # refused, untouched
    run_ranks([*argv, '--resume'], dirs)
    first = load_file(str(straight / 'last.safetensors'))
    second = load_file(str(run_dir / 'last.safetensors'))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert log_rows(run_dir) == log_rows(straight)


@pytest.mark.timeout(300)
def test_cached_features_on_two_ranks_are_reused_by_one_process(
    tiny_encoder, sample_bag, tmp_path, capsys, caplog
):
    cache = tmp_path / 'features'
    dirs = rank_dirs(tmp_path / 'ranks')
    cached = [*train_argv(tiny_encoder, sample_bag, '--epochs', '2', '--cache-features')]
    run_ranks([*cached, '--cache-dir', str(cache), '--out', 'run'], dirs)
    assert len(list(cache.glob('*.safetensors'))) == 10  # one file per training frame
    one_process(cached, tmp_path / 'fresh', capsys)
    with caplog.at_level(logging.INFO, logger='pixio_ros.training'):
        one_process([*cached, '--cache-dir', str(cache)], tmp_path / 'reused', capsys)
    assert any('0 frames encoded, 10 reused' in r.getMessage() for r in caplog.records)
    two = dirs[0] / 'run' / 'last.safetensors'
    assert_heads_close(two, tmp_path / 'fresh' / 'last.safetensors', WEIGHT_ATOL)
    assert_heads_close(two, tmp_path / 'reused' / 'last.safetensors', WEIGHT_ATOL)


def refused(results, command):
    """The one error line of a run every rank left with exit code 1 (printed by rank 0)."""
    assert [result.returncode for result in results] == [1] * RANKS, results[0].stderr[-3000:]
    (line,) = [line for result in results for line in error_lines(result.stderr, command)]
    assert error_lines(results[0].stderr, command) == [line]
    return line


@pytest.mark.timeout(300)
def test_ranks_given_other_frames_are_refused_with_one_line(tiny_encoder, sample_bag, tmp_path):
    dirs = rank_dirs(tmp_path)
    (dirs[0] / 'bag').symlink_to(sample_bag)  # 12 frames: 10 train / 2 validation
    write_sample_bag(dirs[1] / 'bag', SampleBagSpec(frames=8, height=96, width=128))
    results = launch(train_argv(tiny_encoder, 'bag', '--epochs', '1', '--out', 'run'), dirs)
    line = refused(results, 'train-head')
    expected = (
        r'rank 1 of 2 was started with other inputs than rank 0: train_frames is \d+ on rank '
        r'1, 10 on rank 0 \(set by the training data .*\(\d+ more values differ too\); start '
        'every rank with the same command'
    )
    assert re.search(expected, line), line
    assert not (dirs[0] / 'run').exists()
    assert [p.name for p in dirs[1].iterdir()] == ['bag']


@pytest.mark.timeout(300)
def test_a_cache_dir_the_ranks_do_not_share_is_refused_before_encoding(
    tiny_encoder, sample_bag, tmp_path
):
    dirs = rank_dirs(tmp_path)  # the same relative --cache-dir is another directory per rank
    cached = train_argv(tiny_encoder, sample_bag, '--epochs', '1', '--cache-features')
    results = launch([*cached, '--cache-dir', 'features', '--out', 'run'], dirs)
    line = refused(results, 'train-head')
    assert line.startswith(
        'pixio-ros train-head: error: rank 0 of 2 failed checking the feature cache directory: '
        '--cache-dir features is not shared between the ranks: it lacks what rank 1 wrote there'
    ), line
    assert 'give --cache-dir a directory every rank can read' in line
    assert line.endswith('; every rank stopped.')
    for directory in dirs:  # nothing encoded, no probe left behind, no run directory
        assert [p.name for p in directory.iterdir()] == ['features']
        assert list((directory / 'features').iterdir()) == []


def _rank_pid(launcher: psutil.Process, rank: int) -> int | None:
    for child in launcher.children(recursive=True):
        try:
            if child.environ().get('RANK') == str(rank):
                return child.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


@pytest.mark.timeout(300)
def test_a_killed_rank_stops_the_run_with_one_line_and_the_last_complete_checkpoint(
    tiny_encoder, sample_bag, tmp_path
):
    run_dir = tmp_path / 'run'
    argv = train_argv(tiny_encoder, sample_bag, '--epochs', '500', '--out', str(run_dir))
    launcher = subprocess.Popen(
        torchrun_command(argv, RANKS),
        cwd=tmp_path,
        env=torchrun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / 'last_state.pt').exists():
            assert launcher.poll() is None and time.monotonic() < deadline, 'no first epoch'
            time.sleep(0.05)
        pid = _rank_pid(psutil.Process(launcher.pid), 1)
        assert pid is not None
        psutil.Process(pid).send_signal(signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    (line,) = error_lines(err, 'train-head')
    assert f'rank 1 (pid {pid}) of 2 is gone (killed or crashed' in line, err[-3000:]
    state = torch.load(run_dir / 'last_state.pt', map_location='cpu', weights_only=True)
    with safe_open(str(run_dir / 'last.safetensors'), framework='pt') as head:
        head_epoch = int(head.metadata()['epoch'])
    epochs = len(log_rows(run_dir))
    assert 1 <= state['epoch'] == head_epoch == epochs < 500
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith('.')) == []
