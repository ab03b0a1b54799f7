"""`pixio-ros eval --align-to TOPIC` on a bag whose head is exactly right up to a scale of 1.3."""

from __future__ import annotations

import csv
import json

import pytest
from coded_depth import ROOM_SIZE, coded_depth_artifact, write_room_bag

from pixio_ros.cli import main

MIS_SCALE = 1.3
FRAMES = 4


@pytest.fixture(scope='module')
def room_bag(tmp_path_factory):
    """Coded images, exact 16UC1 depth, CameraInfo and both kinds of sparse reference."""
    directory = tmp_path_factory.mktemp('align_to')
    bag = write_room_bag(directory / 'room', frames=FRAMES)
    artifact = coded_depth_artifact(
        directory / 'coded.ts', factor=1 / MIS_SCALE, input_size=ROOM_SIZE
    )
    return bag, artifact


@pytest.mark.parametrize(
    ('topic', 'mode'), [('/lidar/depth', 'scale'), ('/lidar/points', 'scale_shift')]
)
def test_align_to_reports_abs_rel_before_and_after(room_bag, tmp_path, capsys, topic, mode):
    bag, artifact = room_bag
    out = tmp_path / 'out'
    code = main(
        [
            'eval',
            str(bag),
            '--model',
            str(artifact),
            '--image-topic',
            '/image',
            '--depth-topic',
            '/depth',
            '--camera-info-topic',
            '/camera_info',
            '--align-to',
            topic,
            '--align-to-mode',
            mode,
            '--device',
            'cpu',
            '--out',
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    document = json.loads((out / 'metrics.json').read_text())
    sparse = document['sparse_alignment']
    # Before: the head is off by 1/1.3 everywhere, AbsRel = 1 - 1/1.3.
    assert sparse['abs_rel_before'] == pytest.approx(1 - 1 / MIS_SCALE, abs=1e-3)
    # After: within 1 % of the head's error at the right scale (0: it is exact there).
    assert sparse['abs_rel_after'] < 0.01
    assert sparse['scale_median'] == pytest.approx(MIS_SCALE, rel=0.01)
    assert sparse['frames'] == FRAMES and sparse['frames_kept_last_scale'] == 0
    assert document['summary']['depth']['abs_rel'] == pytest.approx(sparse['abs_rel_after'])
    with (out / 'alignment.csv').open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == FRAMES
    assert all(float(row['scale']) == pytest.approx(MIS_SCALE, rel=0.01) for row in rows)
    assert (out / 'alignment_scale.png').stat().st_size > 0
    assert 'alignment_scale.png' in (out / 'report.md').read_text()
    assert f'--align-to {topic} ({mode}): AbsRel 0.23' in printed


def test_align_to_a_missing_topic_is_one_line(room_bag, tmp_path, capsys):
    bag, artifact = room_bag
    code = main(
        [
            'eval',
            str(bag),
            '--model',
            str(artifact),
            '--image-topic',
            '/image',
            '--depth-topic',
            '/depth',
            '--align-to',
            '/nothing',
            '--out',
            str(tmp_path / 'out'),
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and '--align-to /nothing is not in bag' in error[0]
    assert not (tmp_path / 'out').exists()
