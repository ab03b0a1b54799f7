"""`pixio-ros bench` on a tiny artifact: prints latency and throughput; bad input is one line."""

from __future__ import annotations

import re

import pytest

from pixio_ros.cli import main


def test_bench_prints_latency_and_throughput(tiny_artifact, capsys):
    artifact = tiny_artifact(head_kind='points', input_size=(64, 96))
    assert main(['bench', str(artifact), '--device', 'cpu', '--size', '96x144', '--runs', '3']) == 0
    out = capsys.readouterr().out
    assert 'image 96x144' in out and 'input 64x96' in out
    assert re.search(r'latency p50 \d+\.\d ms  p95 \d+\.\d ms  \(3 runs\)', out)
    assert re.search(r'throughput \d+\.\d\d frames/s', out)


def test_bench_missing_artifact_is_one_line(tmp_path, capsys):
    assert main(['bench', str(tmp_path / 'none.ts')]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'pixio-ros export' in err


def test_bench_refuses_a_bad_size(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['bench', str(tmp_path / 'none.ts'), '--size', '12'])
    assert 'HEIGHTxWIDTH' in capsys.readouterr().err
