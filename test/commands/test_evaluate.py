"""`pixio-ros eval` through the CLI entry point: options, printed summary, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixio_ros.cli import main
from pixio_ros.data.sample_bag import (
    COLOR_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    SampleBagSpec,
    write_sample_bag,
)
from pixio_ros.evaluation.config import EvalConfig


def test_eval_cli_scores_recorded_depth_and_prints_a_summary(tmp_path, capsys):
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=2, height=16, width=24))
    out = tmp_path / 'out'
    code = main(
        [
            'eval',
            str(bag),
            '--prediction-topic',
            DEPTH_TOPIC,
            '--image-topic',
            COLOR_TOPIC,
            '--depth-topic',
            DEPTH_TOPIC,
            '--camera-info-topic',
            DEPTH_INFO_TOPIC,
            '--align',
            'median',
            '--max-frames',
            '1',
            '--out',
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert 'frames: 1 evaluated of 1 selected (2 paired' in printed
    assert 'aligned_median: AbsRel 0.0000' in printed
    assert (out / 'report.md').is_file()


def test_eval_cli_errors_are_one_line_with_exit_1(tmp_path, capsys):
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=1, height=8, width=8))
    code = main(
        [
            'eval',
            str(bag),
            '--prediction-topic',
            DEPTH_TOPIC,
            '--image-topic',
            COLOR_TOPIC,
            '--depth-topic',
            DEPTH_TOPIC,
            '--align',
            'affine',
            '--out',
            str(tmp_path / 'out'),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "alignment mode 'affine' is unknown" in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name', ['pred.db3', 'pred.bag', 'pred.sqlite3'])
def test_write_bag_refuses_a_format_it_does_not_write(tmp_path, capsys, name):
    bag = write_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=1, height=8, width=8))
    code = main(
        [
            'eval',
            str(bag),
            '--prediction-topic',
            DEPTH_TOPIC,
            '--image-topic',
            COLOR_TOPIC,
            '--depth-topic',
            DEPTH_TOPIC,
            '--out',
            str(tmp_path / 'out'),
            '--write-bag',
            str(tmp_path / name),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'{name}: only mcap is written; name a file ending in' in err
    assert not (tmp_path / 'out').exists() and not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ('name', 'single_file'),
    [('pred.mcap', True), ('pred.MCAP', True), ('pred', False), ('results/pred_bag', False)],
)
def test_write_bag_path_chooses_one_mcap_file_or_a_rosbag2_directory(name, single_file):
    config = EvalConfig(
        bag=Path('in'),
        image_topic='/i',
        depth_topic='/d',
        out=Path('out'),
        prediction_topic='/p',
        write_bag=Path(name),
    )
    config.validate()
    assert config.write_bag_single_file is single_file


def test_write_bag_help_says_what_is_written(capsys):
    with pytest.raises(SystemExit):
        main(['eval', '--help'])
    help_text = ' '.join(capsys.readouterr().out.split())
    assert 'BAG ending in .mcap is written as that one mcap file' in help_text
    assert 'any other BAG as a rosbag2 directory' in help_text
