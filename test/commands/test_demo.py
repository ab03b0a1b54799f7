"""`pixio-ros demo --tiny` end to end: its own node process, DDS playback, recording, report."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


def _recorded_diagnostic_ages_ms(recording) -> list[float]:
    """Every 'message age ms' value of the node's /diagnostics in the demo's recording."""
    from pixio_ros.data.bag import BagReader

    with BagReader(recording) as bag:
        return [
            float(kv.value)
            for message in bag.messages('/diagnostics')
            for status in message.msg.status
            for kv in status.values
            if kv.key.startswith('message age ms') and kv.value not in ('nan', '')
        ]


@pytest.mark.timeout(240)
def test_tiny_demo_delivers_frames_and_writes_its_products(tmp_path):
    out = tmp_path / 'run'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pixio_ros.cli',
            'demo',
            '--tiny',
            '--cache-dir',
            str(tmp_path / 'cache'),
            '--out',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'frames out (depth):' in result.stdout
    assert 'RANDOM weights' in result.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['frames_in'] == 20
    # the tiny model keeps up with 30 Hz on an idle machine; under load some frames are dropped
    assert 1 <= summary['frames_out'] <= summary['frames_in']
    assert summary['topics']['/pixio/depth'] == summary['frames_out']
    assert summary['topics']['/pixio/points'] >= 1 and summary['ply_points'] > 0
    assert summary['eval']['evaluated'] == summary['frames_out']
    assert summary['missing_outputs'] == []
    for name in (
        'depth_colormap.png',
        'points.ply',
        'node.log',
        'eval/report.md',
        'eval/metrics.json',
        'recording/metadata.yaml',
    ):
        assert (out / name).is_file(), name
    # the node ran on the bag's /clock (sim time): its own message age is the pipeline's latency
    # in milliseconds, not the ~1113 days between the bag's 2023 stamps and today
    ages = _recorded_diagnostic_ages_ms(out / 'recording')
    assert ages and all(-1000.0 < age < 60_000.0 for age in ages), ages
    # a second run reuses the cached bag and artifact and refuses to overwrite the results
    again = subprocess.run(
        [
            sys.executable,
            '-m',
            'pixio_ros.cli',
            'demo',
            '--tiny',
            '--cache-dir',
            str(tmp_path / 'cache'),
            '--out',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert 'exists already, not overwriting; pass --force' in again.stderr


@pytest.mark.timeout(240)
def test_outputs_that_never_arrive_fail_the_demo(tmp_path, tiny_artifact):
    model = tiny_artifact(head_kind='none', input_size=(64, 96))
    out = tmp_path / 'run'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pixio_ros.cli',
            'demo',
            '--tiny',
            '--model',
            str(model),
            '--cache-dir',
            str(tmp_path / 'cache'),
            '--out',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(
        r'never published depth, depth/camera_info, points under /pixio '
        r'\(an artifact without a depth head.*--head-kind depth',
        result.stderr,
    )
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['missing_outputs'] == ['depth', 'depth/camera_info', 'points']
    assert summary['topics']['/pixio/features'] >= 1
    assert summary['topics']['/pixio/embedding'] >= 1
    node_log = (out / 'node.log').read_text()
    assert node_log.count('has no depth head') == 1  # one start-up warning, not one per frame
    assert 'input 64x96 (HxW)' in node_log


def test_missing_model_is_refused_before_anything_runs(tmp_path, capsys):
    from pixio_ros.cli import main

    code = main(['demo', '--model', str(tmp_path / 'none.ts'), '--cache-dir', str(tmp_path)])
    assert code == 1
    assert 'none.ts does not exist; make one with `pixio-ros export' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
