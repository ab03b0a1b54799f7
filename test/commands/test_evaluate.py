"""`pixio-ros eval` through the CLI entry point: options, printed summary, one-line errors."""

from __future__ import annotations

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import (
    COLOR_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    SampleBagSpec,
    write_sample_bag,
)


def test_eval_cli_scores_recorded_depth_and_prints_a_summary(tmp_path, capsys):
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=2, height=16, width=24))
    out = tmp_path / 'out'
    code = main(['eval', str(bag), '--prediction-topic', DEPTH_TOPIC, '--image-topic',
                 COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC, '--camera-info-topic',
                 DEPTH_INFO_TOPIC, '--align', 'median', '--max-frames', '1', '--out', str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert 'frames: 1 evaluated of 1 selected (2 paired' in printed
    assert 'aligned_median: AbsRel 0.0000' in printed
    assert (out / 'report.md').is_file()


def test_eval_cli_errors_are_one_line_with_exit_1(tmp_path, capsys):
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=1, height=8, width=8))
    code = main(['eval', str(bag), '--prediction-topic', DEPTH_TOPIC, '--image-topic',
                 COLOR_TOPIC, '--depth-topic', DEPTH_TOPIC, '--align', 'affine', '--out',
                 str(tmp_path / 'out')])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "alignment mode 'affine' is unknown" in err
    assert not (tmp_path / 'out').exists()
