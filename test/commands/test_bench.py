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


@pytest.mark.parametrize(
    ('size', 'shown'), [('96x144', '96x144'), ('96', '96x96'), ('96X144', '96x144')]
)
def test_bench_accepts_what_export_accepts(tiny_artifact, capsys, size, shown):
    artifact = tiny_artifact(head_kind='points', input_size=(64, 96))
    assert main(['bench', str(artifact), '--device', 'cpu', '--size', size, '--runs', '1']) == 0
    assert f'image {shown}' in capsys.readouterr().out


@pytest.mark.parametrize('size', ['240by320', '0x32', 'x', '12x', '-16'])
def test_bench_and_export_refuse_the_same_sizes_alike(tmp_path, capsys, size):
    errors = []
    for argv in (
        ['bench', str(tmp_path / 'none.ts'), '--size', size],
        ['export', '--random-init', '--size', 'tiny', '--input-size', size, '-o', 'x.ts'],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        errors.append(capsys.readouterr().err.splitlines()[-1].split(': ')[-1])
    assert errors[0] == errors[1] and 'is not HEIGHTxWIDTH' in errors[0]
