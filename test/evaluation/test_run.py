"""`run_evaluation` end to end on real bags with a tiny TorchScript artifact and recorded depth."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest

from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.data.sample_bag import (
    COLOR_TOPIC,
    COMPRESSED_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
)
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import METRIC_NAMES
from pixio_ros.evaluation.report import PLOT_FILES, read_metrics_json
from pixio_ros.evaluation.run import run_evaluation
from pixio_ros.files import OutputExistsError
from pixio_ros.runtime.image_codec import decode_depth

PERFECT = {
    'abs_rel': 0.0,
    'sq_rel': 0.0,
    'rmse': 0.0,
    'rmse_log': 0.0,
    'log10': 0.0,
    'silog': 0.0,
    'delta1': 1.0,
    'delta2': 1.0,
    'delta3': 1.0,
}


def _config(bag, out, **overrides) -> EvalConfig:
    options = dict(
        bag=bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        out=out,
        camera_info_topic=DEPTH_INFO_TOPIC,
        device='cpu',
    )
    options.update(overrides)
    return EvalConfig(**options)


def _evaluate(config):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tiny artifact's random-weights warning
        return run_evaluation(config)


@pytest.fixture(scope='module')
def model_run(sample_bag, tiny_artifact, tmp_path_factory):
    out = tmp_path_factory.mktemp('model_run') / 'results'
    config = _config(
        sample_bag,
        out,
        model=tiny_artifact(head_kind='points'),
        align='scale_shift',
        write_bag=out.parent / 'pixio.mcap',
    )
    return config, _evaluate(config)


def test_model_run_writes_every_output_with_finite_numbers(model_run, sample_spec):
    config, document = model_run
    names = {p.name for p in config.out.iterdir()}
    assert names == {'metrics.json', 'per_frame.csv', 'report.md', *PLOT_FILES.values()}
    assert read_metrics_json(config.out / 'metrics.json') == document
    summary = document['summary']
    assert summary['frames']['paired'] == summary['frames']['evaluated'] == sample_spec.frames
    assert summary['metrics_kind'] == 'aligned_scale_shift'
    assert all(math.isfinite(summary['depth'][name]) for name in METRIC_NAMES)
    # the unaligned (metric) numbers are reported too, and differ from the aligned ones
    raw = summary['depth_raw_metric']
    assert all(math.isfinite(raw[name]) for name in METRIC_NAMES)
    assert raw['abs_rel'] != summary['depth']['abs_rel']
    assert math.isfinite(summary['points_3d']['chamfer_m'])
    assert summary['speed']['inference_ms']['p50'] > 0
    assert document['model']['random_weights'] is True
    assert len(document['model']['sha256']) == 64
    assert document['bag']['topics'][DEPTH_TOPIC]['count'] == sample_spec.frames
    with (config.out / 'per_frame.csv').open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row['status'] for row in rows] == ['ok'] * sample_spec.frames
    assert 'random weights' in (config.out / 'report.md').read_text()


def test_output_bag_has_the_pixio_topics_at_the_input_stamps(model_run, sample_bag):
    config, _ = model_run
    # `--write-bag X.mcap` writes that one file (it once made a folder X.mcap/ with X.mcap.mcap)
    assert config.write_bag.name == 'pixio.mcap' and config.write_bag.is_file()
    assert sorted(p.name for p in config.write_bag.parent.iterdir()) == ['pixio.mcap', 'results']
    with BagReader(config.write_bag) as bag:
        assert set(bag.topics) == {
            f'/pixio/{name}'
            for name in (
                'depth',
                'depth/camera_info',
                'depth/colored',
                'points',
                'features',
                'embedding',
            )
        }
        depth = bag.messages('/pixio/depth')
        points = bag.messages('/pixio/points')[0].msg
        features = bag.messages('/pixio/features')[0].msg
    with BagReader(sample_bag) as original:
        stamps = [m.stamp_ns for m in original.messages(COLOR_TOPIC)]
    assert [m.stamp_ns for m in depth] == stamps
    first = depth[0].msg
    assert (first.encoding, first.height, first.width) == ('32FC1', 48, 64)
    assert np.isfinite(decode_depth('32FC1', 48, 64, first.step, first.data)).all()
    assert (points.height, points.width) == (48, 64)
    # the node's default layout; the point-map head adds its confidence
    assert [f.name for f in points.fields] == ['x', 'y', 'z', 'rgb', 'confidence']
    # the tiny artifact's 64x96 input has a 4x6 patch grid
    assert (features.height, features.width) == (4, 6)
    assert features.fields[3].name == 'feature' and features.fields[3].count > 0


def test_same_bag_and_artifact_give_identical_metrics(model_run, tmp_path):
    config, document = model_run
    again = _evaluate(
        _config(config.bag, tmp_path / 'again', model=config.model, align='scale_shift')
    )
    assert again['summary']['depth'] == document['summary']['depth']
    assert again['summary']['points_3d'] == document['summary']['points_3d']


@pytest.mark.parametrize('align', ['none', 'median', 'scale_shift_inverse'])
def test_ground_truth_as_prediction_is_perfect(sample_bag, sample_spec, tmp_path, align):
    document = _evaluate(
        _config(
            sample_bag,
            tmp_path / 'gt',
            prediction_topic=DEPTH_TOPIC,
            image_topic=COMPRESSED_TOPIC,
            align=align,
        )
    )
    summary = document['summary']
    assert summary['frames']['evaluated'] == sample_spec.frames
    assert summary['depth'] == pytest.approx(PERFECT, abs=1e-9)
    assert summary['points_3d'] == pytest.approx({'chamfer_m': 0.0, 'fscore': 1.0}, abs=1e-9)
    assert summary['speed']['inference_ms'] is None


def test_missing_predictions_are_counted_as_drops(make_bag, tmp_path):
    depth_mm = np.full((6, 8), 2000, np.uint16)
    rgb = np.zeros((6, 8, 3), np.uint8)
    stamps = [1_000, 2_000, 3_000, 4_000]
    bag = make_bag(
        [
            ('/rgb', 'rgb8', stamps, rgb),
            ('/gt', '16UC1', stamps, depth_mm),
            ('/pred', '32FC1', stamps[::2], np.full((6, 8), 2.5, np.float32)),
        ]
    )
    document = _evaluate(
        EvalConfig(
            bag=bag,
            image_topic='/rgb',
            depth_topic='/gt',
            prediction_topic='/pred',
            out=tmp_path / 'out',
        )
    )
    frames = document['summary']['frames']
    assert (frames['evaluated'], frames['skipped']) == (2, {'missing_prediction': 2})
    assert document['summary']['depth']['abs_rel'] == pytest.approx(0.25)


def test_stamps_pair_within_tolerance_only(make_bag, tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    depth = np.full((6, 8), 1.5, np.float32)
    bag = make_bag(
        [
            ('/rgb', 'rgb8', [10_000_000, 43_000_000], rgb),
            ('/gt', '32FC1', [12_000_000, 45_000_000, 90_000_000], depth),
        ]
    )
    near = EvalConfig(
        bag=bag,
        image_topic='/rgb',
        depth_topic='/gt',
        prediction_topic='/gt',
        out=tmp_path / 'near',
        stamp_tolerance_ms=5,
        max_frames=1,
    )
    frames = _evaluate(near)['summary']['frames']
    assert (frames['paired'], frames['unmatched_depth'], frames['selected']) == (2, 1, 1)
    exact = EvalConfig(
        bag=bag,
        image_topic='/rgb',
        depth_topic='/gt',
        prediction_topic='/gt',
        out=tmp_path / 'exact',
        stamp_tolerance_ms=0,
    )
    with pytest.raises(
        EvaluationError,
        match=r'no header stamps of --image-topic /rgb \(2 msgs, '
        r'stamps 0.010000 .. 0.043000 s\) match --depth-topic /gt \(3 msgs, '
        r'stamps 0.012000 .. 0.090000 s\) within 0 ms',
    ):
        _evaluate(exact)
    assert not (tmp_path / 'exact').exists()


@pytest.fixture
def existing_out(tmp_path):
    out = tmp_path / 'previous'
    out.mkdir()
    (out / 'metrics.json').write_text('{"old": true}')
    return out


def _bad_inputs(sample_bag, make_bag, tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    wrong = make_bag(
        [('/rgb', 'rgb8', [1], rgb), ('/gt', 'mono8', [1], rgb[..., 0])], name='wrong_encoding'
    )
    junk = tmp_path / 'junk.bag'
    junk.write_bytes(b'definitely not a bag')
    return {
        'missing topic': (
            dict(bag=sample_bag, depth_topic='/depth'),
            DataError,
            r'--depth-topic /depth is not in bag .*its topics are: '
            r'/camera/aligned_depth_to_color/camera_info '
            r'\(sensor_msgs/msg/CameraInfo, 4 msgs\)',
        ),
        'unreadable bag': (dict(bag=junk), DataError, 'cannot read bag .*junk.bag'),
        'unsupported encoding': (
            dict(
                bag=wrong,
                image_topic='/rgb',
                depth_topic='/gt',
                prediction_topic='/gt',
                camera_info_topic=None,
            ),
            EvaluationError,
            "--depth-topic /gt has encoding 'mono8'; expected 16UC1 or 32FC1",
        ),
        'depth as image': (
            dict(bag=sample_bag, image_topic=DEPTH_TOPIC),
            EvaluationError,
            "--image-topic .* has encoding '16UC1' \\(depth\\)",
        ),
        'both sources': (
            dict(bag=sample_bag, model=tmp_path / 'm.ts'),
            EvaluationError,
            'exactly one of --model',
        ),
        'bad range': (
            dict(bag=sample_bag, min_depth=5.0, max_depth=1.0),
            EvaluationError,
            'need 0 < min < max',
        ),
    }


@pytest.mark.parametrize(
    'case',
    [
        'missing topic',
        'unreadable bag',
        'unsupported encoding',
        'depth as image',
        'both sources',
        'bad range',
    ],
)
def test_bad_input_is_refused_and_touches_nothing(
    case, sample_bag, make_bag, tmp_path, existing_out
):
    overrides, error, match = _bad_inputs(sample_bag, make_bag, tmp_path)[case]
    options = dict(prediction_topic=DEPTH_TOPIC, force=True)
    options.update(overrides)
    bag = options.pop('bag')
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=match):
        _evaluate(_config(bag, existing_out, **options))
    assert (existing_out / 'metrics.json').read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_existing_output_needs_force(sample_bag, existing_out):
    config = _config(sample_bag, existing_out, prediction_topic=DEPTH_TOPIC)
    with pytest.raises(
        OutputExistsError, match='previous exists already, not overwriting; pass --force'
    ):
        _evaluate(config)
    assert (existing_out / 'metrics.json').read_text() == '{"old": true}'
    forced = _config(sample_bag, existing_out, prediction_topic=DEPTH_TOPIC, force=True)
    _evaluate(forced)
    assert '"old"' not in (existing_out / 'metrics.json').read_text()


def test_output_bag_inside_the_result_directory(sample_bag, sample_spec, tmp_path):
    out = tmp_path / 'results'
    _evaluate(
        _config(
            sample_bag,
            out,
            prediction_topic=DEPTH_TOPIC,
            camera_info_topic=None,
            write_bag=out / 'pixio_bag',
        )
    )
    with BagReader(out / 'pixio_bag') as bag:
        # a recorded prediction without CameraInfo: depth and its colour map, no geometry
        assert set(bag.topics) == {'/pixio/depth', '/pixio/depth/colored'}
        assert bag.message_count('/pixio/depth') == sample_spec.frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ['results']
