"""`pixio-ros demo --tiny` end to end: its own node process, DDS playback, recording, report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.timeout(240)
def test_tiny_demo_delivers_frames_and_writes_its_products(tmp_path):
    out = tmp_path / 'run'
    result = subprocess.run(
        [sys.executable, '-m', 'pixio_ros.cli', 'demo', '--tiny', '--cache-dir',
         str(tmp_path / 'cache'), '--out', str(out)],
        capture_output=True, text=True, timeout=220, check=False,
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
    for name in ('depth_colormap.png', 'points.ply', 'node.log', 'eval/report.md',
                 'eval/metrics.json', 'recording/metadata.yaml'):
        assert (out / name).is_file(), name
    # a second run reuses the cached bag and artifact and refuses to overwrite the results
    again = subprocess.run(
        [sys.executable, '-m', 'pixio_ros.cli', 'demo', '--tiny', '--cache-dir',
         str(tmp_path / 'cache'), '--out', str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert again.returncode == 1
    assert 'exists already, not overwriting; pass --force' in again.stderr


def test_missing_model_is_refused_before_anything_runs(tmp_path, capsys):
    from pixio_ros.cli import main

    code = main(['demo', '--model', str(tmp_path / 'none.ts'), '--cache-dir', str(tmp_path)])
    assert code == 1
    assert 'none.ts does not exist; make one with `pixio-ros export' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
