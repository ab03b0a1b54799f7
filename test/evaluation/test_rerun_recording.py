"""`eval --rerun`: the .rrd read back with rerun's own reader against the eval's per_frame.csv."""

from __future__ import annotations

import csv
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import decode_depth_image
from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_INFO_TOPIC, DEPTH_TOPIC
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.replay import STATUS_OK
from pixio_ros.evaluation.report import FRAME_SERIES, PER_FRAME_FILE
from pixio_ros.evaluation.rerun_recording import (
    CAMERA,
    ERROR_IMAGE,
    FRAME_TIMELINE,
    GT_DEPTH,
    GT_POINTS,
    METRICS,
    PREDICTED_DEPTH,
    PREDICTED_POINTS,
    RGB_IMAGE,
    TIMELINE,
)
from pixio_ros.evaluation.run import run_evaluation
from pixio_ros.files import OutputExistsError

# The viz extra (pixio_ros[viz]): installed in .venv, not in the ROS-only lanes' venvs.
RrdReader = pytest.importorskip('rerun.chunk', reason='pixio_ros[viz] is not installed').RrdReader
pa = pytest.importorskip('pyarrow', reason='pixio_ros[viz] is not installed')

PER_FRAME_ENTITIES = (CAMERA, RGB_IMAGE, GT_DEPTH, PREDICTED_DEPTH, ERROR_IMAGE, GT_POINTS)
PER_FRAME_ENTITIES += (PREDICTED_POINTS,)


def _config(bag: Path, out: Path, **overrides: Any) -> EvalConfig:
    options: dict[str, Any] = dict(
        bag=bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        camera_info_topic=DEPTH_INFO_TOPIC,
        out=out,
        device='cpu',
        align='scale_shift',
    )
    options.update(overrides)
    return EvalConfig(**options)


@pytest.fixture(scope='module')
def recorded(sample_bag, tiny_artifact, tmp_path_factory):
    """(the .rrd's rows by entity, per_frame.csv's rows) of one eval run with --rerun."""
    directory = tmp_path_factory.mktemp('rerun_run')
    config = _config(
        sample_bag,
        directory / 'results',
        model=tiny_artifact(head_kind='points'),
        rerun=directory / 'run.rrd',
    )
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tiny artifact's random-weights warning
        run_evaluation(config)
    with (config.out / PER_FRAME_FILE).open() as handle:
        frames = list(csv.DictReader(handle))
    return read_rows(config.rerun), frames


def read_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every temporal row of the recording by entity path ('/' stripped), in frame order."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in RrdReader(path).stream():
        if chunk.is_static:
            continue
        batch = chunk.to_record_batch()
        columns = {}
        for name in batch.schema.names:
            column = batch.column(name)
            if pa.types.is_timestamp(column.type):
                column = column.cast(pa.int64())
            columns[name] = column.to_pylist()
        for index in range(batch.num_rows):
            rows[chunk.entity_path.lstrip('/')].append(
                {name: values[index] for name, values in columns.items()}
            )
    for entity_rows in rows.values():
        entity_rows.sort(key=lambda row: row[FRAME_TIMELINE])
    return rows


def scalar(row: dict[str, Any]) -> float:
    (value,) = row['Scalars:scalars']
    return value


def test_each_entity_once_per_scored_frame_on_the_bags_timeline(recorded):
    rows, frames = recorded
    scored = [f for f in frames if f['status'] == STATUS_OK]
    assert len(scored) == len(frames) >= 2
    numbers = [int(f['frame']) for f in scored]
    stamps = [int(f['stamp_ns']) for f in scored]
    for entity in PER_FRAME_ENTITIES:
        assert [row[FRAME_TIMELINE] for row in rows[entity]] == numbers, entity
        assert [row[TIMELINE] for row in rows[entity]] == stamps, entity
    series = {entity for entity in rows if entity.startswith(f'{METRICS}/')}
    assert series == {f'{METRICS}/{column}' for column in FRAME_SERIES}
    for column in FRAME_SERIES:
        logged = [row[FRAME_TIMELINE] for row in rows[f'{METRICS}/{column}']]
        assert logged == [int(f['frame']) for f in scored if f[column]], column


def test_one_frames_values_are_the_evals_own(recorded, sample_bag):
    rows, frames = recorded
    frame = frames[1]
    number = int(frame['frame'])

    def at(entity: str) -> dict[str, Any]:
        (row,) = [row for row in rows[entity] if row[FRAME_TIMELINE] == number]
        return row

    for column in FRAME_SERIES:
        assert scalar(at(f'{METRICS}/{column}')) == float(frame[column]), column
    # The predicted cloud: one point per scored pixel (48x64 is below the cloud budget).
    positions = at(PREDICTED_POINTS)['Points3D:positions']
    assert len(positions) == int(frame['valid_pixels'])
    # Ground truth and camera: the bag's own depth (metres) and intrinsics at that stamp.
    with BagReader(sample_bag) as bag:
        depth_msg = next(
            m.msg for m in bag.messages(DEPTH_TOPIC) if m.stamp_ns == int(frame['stamp_ns'])
        )
        info = bag.messages(DEPTH_INFO_TOPIC)[0].msg
    gt = decode_depth_image(depth_msg)
    (buffer,) = at(GT_DEPTH)['DepthImage:buffer']
    logged = np.frombuffer(bytes(buffer), dtype=np.float32).reshape(gt.shape)
    np.testing.assert_array_equal(logged, gt.astype(np.float32))
    (k,) = at(CAMERA)['Pinhole:image_from_camera']
    np.testing.assert_allclose(np.reshape(k, (3, 3)).T, np.reshape(info.k, (3, 3)), rtol=1e-6)


def test_a_path_without_rrd_is_refused_before_anything_runs(sample_bag, tmp_path):
    config = _config(sample_bag, tmp_path / 'out', prediction_topic=DEPTH_TOPIC, rerun=tmp_path)
    with pytest.raises(EvaluationError, match=r'--rerun .*one file ending in \.rrd'):
        run_evaluation(config)
    assert not (tmp_path / 'out').exists()


def test_an_existing_recording_needs_force(sample_bag, tmp_path):
    existing = tmp_path / 'old.rrd'
    existing.write_bytes(b'keep')
    config = _config(sample_bag, tmp_path / 'out', prediction_topic=DEPTH_TOPIC, rerun=existing)
    with pytest.raises(OutputExistsError):
        run_evaluation(config)
    assert existing.read_bytes() == b'keep' and not (tmp_path / 'out').exists()


def test_demo_refuses_a_bad_recording_path_before_it_runs(tmp_path, capsys):
    from pixio_ros.cli import main

    out = tmp_path / 'demo'
    code = main(
        [
            'demo',
            '--out',
            str(out),
            '--cache-dir',
            str(tmp_path / 'cache'),
            '--rerun',
            str(tmp_path / 'run.txt'),
        ]
    )
    assert code == 1
    assert 'one file ending in .rrd' in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / 'cache' / 'demo').exists()
