"""`pixio-ros make-sample-bag` through the CLI entry point."""

from __future__ import annotations

import pytest

from pixio_ros.cli import main
from pixio_ros.data.bag import BagReader


def test_writes_a_readable_bag(tmp_path, capsys):
    out = tmp_path / 'sample'
    code = main(
        [
            'make-sample-bag',
            str(out),
            '--frames',
            '2',
            '--size',
            '16x24',
            '--storage',
            'sqlite3',
            '--seed',
            '4',
            '--noise',
        ]
    )
    assert code == 0
    assert 'wrote' in capsys.readouterr().out
    with BagReader(out) as bag:
        assert bag.message_count('/camera/aligned_depth_to_color/image_raw') == 2
        (first, _) = bag.messages('/camera/color/image_raw')
        assert (first.msg.height, first.msg.width) == (16, 24)


def test_bad_size_and_existing_output_exit_1_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # a usage error, as in every command
        main(['make-sample-bag', str(tmp_path / 'x'), '--size', '480by640'])
    assert exit_info.value.code == 2
    assert "argument --size: '480by640' is not HEIGHTxWIDTH" in capsys.readouterr().err
    assert main(['make-sample-bag', str(tmp_path), '--frames', '1']) == 1
    assert 'exists already, not overwriting; pass --force' in capsys.readouterr().err
