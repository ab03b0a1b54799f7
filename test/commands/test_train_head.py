"""`pixio-ros train-head` from the command line."""

from __future__ import annotations

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC


def test_train_head_command(sample_bag, tiny_encoder, tmp_path, capsys):
    run_dir = tmp_path / 'run'
    argv = [
        'train-head',
        '--encoder',
        str(tiny_encoder),
        '--head',
        'points',
        '--bag',
        str(sample_bag),
        '--image-topic',
        COLOR_TOPIC,
        '--depth-topic',
        DEPTH_TOPIC,
        '--camera-info-topic',
        COLOR_INFO_TOPIC,
        '--out',
        str(run_dir),
        '--input-size',
        '32x48',
        '--epochs',
        '1',
        '--batch',
        '6',
        '--quiet',
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert '10 training / 2 validation frames' in captured.err
    assert 'best epoch 1: val AbsRel' in captured.out
    assert f'--head {run_dir / "best.safetensors"}' in captured.out
    assert main(argv) == 1
    assert 'exists and is not empty; pass --resume' in capsys.readouterr().err


def test_bag_needs_topics(sample_bag, tiny_encoder, tmp_path, capsys):
    argv = [
        'train-head',
        '--encoder',
        str(tiny_encoder),
        '--bag',
        str(sample_bag),
        '--out',
        str(tmp_path / 'run'),
    ]
    assert main(argv) == 1
    assert '--bag needs --image-topic and --depth-topic' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()
