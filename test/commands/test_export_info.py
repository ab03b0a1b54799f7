"""`pixio-ros export` and `pixio-ros info` end to end, in process."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from pixio_ros.cli import main
from pixio_ros.model import HeadInfo, build_head, get_size, save_head_checkpoint

EXPORT_TINY = ['export', '--random-init', '--size', 'tiny', '--input-size', '32x48']


def test_random_init_export_then_info(tmp_path, capsys):
    out = tmp_path / 'tiny.ts'
    assert main([*EXPORT_TINY, '--head-kind', 'depth', '-o', str(out)]) == 0
    captured = capsys.readouterr()
    assert 'max abs diff' in captured.out
    assert 'WARNING: random-init encoder and head weights' in captured.err
    assert main(['info', str(out), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['sha256'] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert info['head_kind'] == 'depth' and info['input_size'] == [32, 48]
    assert info['encoder_pretrained'] is False and info['head_trained'] is False
    assert main(['info', str(out)]) == 0
    assert 'note: random-init encoder and head weights' in capsys.readouterr().out


def test_encoder_and_trained_head(hf_tiny, tmp_path, capsys):
    _, folder = hf_tiny
    encoder_sha = hashlib.sha256((folder / 'model.safetensors').read_bytes()).hexdigest()
    torch.manual_seed(0)
    head_path = tmp_path / 'best.safetensors'
    head = build_head(get_size('tiny'), 'points', max_depth=5.0)
    save_head_checkpoint(head, head_path, HeadInfo('points', 'tiny', 5.0, encoder_sha))
    out = tmp_path / 'trained.ts'
    argv = [
        'export',
        '--encoder',
        str(folder),
        '--head',
        str(head_path),
        '--input-size',
        '32',
        '-o',
        str(out),
    ]
    assert main(argv) == 0
    assert 'WARNING' not in capsys.readouterr().err
    assert main(['info', str(out), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['encoder_pretrained'] is True and info['head_trained'] is True
    assert info['max_depth'] == 5.0 and info['format'] == 'torchscript'
    assert info['sources'] == {
        'encoder': encoder_sha,
        'head': hashlib.sha256(head_path.read_bytes()).hexdigest(),
    }


def test_head_from_another_encoder_is_refused(hf_tiny, tmp_path, capsys):
    head_path = tmp_path / 'other.safetensors'
    head = build_head(get_size('tiny'), 'depth')
    save_head_checkpoint(head, head_path, HeadInfo('depth', 'tiny', 10.0, '0' * 64))
    out = tmp_path / 'x.ts'
    argv = ['export', '--encoder', str(hf_tiny[1]), '--head', str(head_path), '-o', str(out)]
    assert main(argv) == 1
    assert 'was trained on encoder sha256 000000000000...' in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        (['--head-kind', 'depth'], "--head-kind depth but the head is 'points'"),
        (['--max-depth', '10'], '--max-depth 10 but the head was trained with 5 m'),
    ],
)
def test_options_contradicting_a_trained_head(hf_tiny, tmp_path, capsys, options, message):
    _, folder = hf_tiny
    head_path = tmp_path / 'best.safetensors'
    head = build_head(get_size('tiny'), 'points', max_depth=5.0)
    save_head_checkpoint(head, head_path, HeadInfo('points', 'tiny', 5.0))
    out = tmp_path / 'x.ts'
    argv = ['export', '--encoder', str(folder), '--head', str(head_path), *options, '-o', str(out)]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['export', '--random-init', '-o', 'x.ts'], '--random-init needs --size'),
        (['info', 'missing.ts'], 'missing.ts does not exist'),
        (['info', '.'], '. is a directory, not an artifact file; pass the file'),
        (['info', 'notes.pt2'], 'notes.pt2 is not a Pixio artifact (not a zip archive'),
    ],
)
def test_user_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'notes.pt2').write_text('not a model')
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / 'taken.ts'
    out.write_text('keep')
    assert main([*EXPORT_TINY, '-o', str(out)]) == 1
    assert 'exists already, not overwriting' in capsys.readouterr().err
    assert out.read_text() == 'keep'


@pytest.mark.parametrize('size', ['240by320', '0x32', 'x'])
def test_bad_input_size_is_a_usage_error(size, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*EXPORT_TINY[:-2], '--input-size', size, '-o', 'x.ts'])
    assert exit_info.value.code == 2
    assert 'is not HEIGHTxWIDTH' in capsys.readouterr().err


def test_export_to_the_other_formats_suffix_is_refused_before_building(tmp_path, capsys):
    out = tmp_path / 'model.ts'
    assert main([*EXPORT_TINY, '--format', 'export', '-o', str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        'model.ts has the TorchScript suffix .ts but --format export writes a torch.export '
        'archive; name it model.pt2 or pass --format torchscript.'
    ) in err
    assert err.count('\n') == 1 and list(tmp_path.iterdir()) == []


def test_random_encoder_without_head_warns(tmp_path, capsys):
    out = tmp_path / 'features.ts'
    assert main([*EXPORT_TINY, '--head-kind', 'none', '-o', str(out)]) == 0
    assert 'WARNING: random-init encoder weights: features' in capsys.readouterr().err
    assert main(['info', str(out)]) == 0
    assert 'note: random-init encoder weights' in capsys.readouterr().out


def test_format_follows_a_pt2_output_and_the_engine_loads_it(tmp_path, capsys):
    from pixio_ros.runtime.engine import Engine, RandomInitWarning

    out = tmp_path / 'model.pt2'
    assert main([*EXPORT_TINY, '--head-kind', 'depth', '-o', str(out)]) == 0
    assert '(export, tiny, head depth, 32x48' in capsys.readouterr().out
    with pytest.warns(RandomInitWarning):
        engine = Engine(out, device='cpu', warmup_runs=1)
    assert engine.metadata.format == 'export'
