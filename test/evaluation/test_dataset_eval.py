"""`run_evaluation` / `pixio-ros eval` on a public dataset with the paper's protocol."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
from dataset_files import write_nyu_labeled, write_nyu_splits

from pixio_ros.cli import main
from pixio_ros.data.bag import BagReader
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.report import read_metrics_json
from pixio_ros.evaluation.run import run_evaluation

HEIGHT, WIDTH = 480, 640
CROP_PIXELS = 426 * 560


@pytest.fixture(scope='module')
def nyu_mat(tmp_path_factory):
    """A labeled .mat of 3 frames (depth 1..6 m everywhere, a few holes), test split 2, 3."""
    folder = tmp_path_factory.mktemp('nyu')
    rng = np.random.default_rng(0)
    rgb, depth = [], []
    for index in range(3):
        rgb.append(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
        rows = np.arange(HEIGHT, dtype=np.float32)[:, None]
        metres = np.broadcast_to(1.0 + rows / 96.0 + index, (HEIGHT, WIDTH)).copy()
        metres[100, 100] = 0.0  # inside the crop: not valid
        metres[10, 10] = 0.0  # outside it
        depth.append(metres)
    mat = write_nyu_labeled(folder / 'nyu_depth_v2_labeled.mat', rgb, depth)
    write_nyu_splits(folder / 'splits.mat', train=[1], test=[2, 3])
    return mat


def _evaluate(config):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tiny artifact's random-weights warning
        return run_evaluation(config)


@pytest.fixture(scope='module')
def nyu_run(nyu_mat, tiny_artifact, tmp_path_factory):
    out = tmp_path_factory.mktemp('nyu_eval') / 'results'
    config = EvalConfig(
        bag=nyu_mat,
        out=out,
        model=tiny_artifact(head_kind='depth'),
        dataset='nyuv2',
        protocol='nyuv2',
        device='cpu',
        write_bag=out.parent / 'pixio.mcap',
    )
    return config, _evaluate(config)


def test_metrics_json_names_the_protocol_crop_and_dataset(nyu_run):
    config, document = nyu_run
    assert read_metrics_json(config.out / 'metrics.json') == document
    protocol = document['protocol']
    assert protocol['name'] == 'nyuv2' and protocol['crop'] == 'eigen'
    assert protocol['crop_boxes'] == {'480x640': [45, 471, 41, 601]}
    assert (protocol['min_depth'], protocol['max_depth']) == (0.001, 10.0)
    assert 'per image' in protocol['averaging']
    dataset = document['dataset']
    assert dataset['name'] == 'nyuv2' and dataset['split'] == 'test' and dataset['frames'] == 2
    assert document['config']['protocol'] == 'nyuv2'
    frames = document['summary']['frames']
    assert frames['listed'] == frames['selected'] == frames['evaluated'] == 2


def test_only_pixels_inside_the_eigen_crop_are_scored(nyu_run):
    config, _ = nyu_run
    with (config.out / 'per_frame.csv').open() as handle:
        rows = list(csv.DictReader(handle))
    # every ground-truth pixel is in range; inside the crop one is a hole
    assert [int(row['valid_pixels']) for row in rows] == [CROP_PIXELS - 1, CROP_PIXELS - 1]


def test_report_names_the_protocol_and_the_crop(nyu_run):
    config, _ = nyu_run
    report = (config.out / 'report.md').read_text()
    assert '- dataset: NYU Depth V2 `' in report and '(split test)' in report
    assert 'protocol **nyuv2**: eigen crop (480x640: rows 45:471, columns 41:601)' in report
    assert '3 frames listed' not in report and '2 frames listed, 2 selected' in report


def test_a_dataset_writes_the_node_products_too(nyu_run):
    config, _ = nyu_run
    with BagReader(config.write_bag) as bag:
        depth = bag.messages('/pixio/depth')
        assert len(depth) == 2
        assert (depth[0].msg.height, depth[0].msg.width) == (HEIGHT, WIDTH)
        assert depth[0].msg.header.frame_id == 'camera'


def test_bag_options_with_a_dataset_are_refused(nyu_mat, tmp_path):
    config = EvalConfig(
        bag=nyu_mat,
        out=tmp_path / 'out',
        model=tmp_path / 'm.ts',
        dataset='nyuv2',
        image_topic='/camera/color/image_raw',
    )
    with pytest.raises(EvaluationError, match=r'--image-topic read bags; --dataset nyuv2 gives'):
        config.validate()
    bag_without_topics = EvalConfig(bag=tmp_path / 'bag', out=tmp_path / 'o', model=nyu_mat)
    with pytest.raises(EvaluationError, match=r'a bag needs --image-topic and --depth-topic'):
        bag_without_topics.validate()


def test_eval_cli_on_a_dataset_defaults_to_its_protocol(nyu_mat, tiny_artifact, tmp_path, capsys):
    out = tmp_path / 'out'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        code = main(
            [
                'eval',
                '--dataset',
                'nyuv2',
                str(nyu_mat),
                '--model',
                str(tiny_artifact(head_kind='depth')),
                '--max-frames',
                '1',
                '--device',
                'cpu',
                '--out',
                str(out),
            ]
        )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert 'frames: 1 evaluated of 1 selected (2 listed, skipped none)' in printed.out
    assert (
        'protocol nyuv2: eigen crop, depth 0.001..10 m, per-image metrics averaged' in printed.out
    )
    assert read_metrics_json(out / 'metrics.json')['protocol']['name'] == 'nyuv2'
    code = main(
        ['eval', '--dataset', 'nyuv2', str(nyu_mat), '--model', 'm.ts', '--out', str(tmp_path)]
        + ['--max-depth', '80', '--force']
    )
    assert code == 1
    assert '--protocol nyuv2 scores depth in 0.001..10 m' in capsys.readouterr().err


def test_kitti_defaults_to_the_garg_crop_and_80_m(tiny_artifact, tmp_path, capsys):
    from dataset_files import (
        KITTI_SIZE,
        kitti_frame_paths,
        write_colour,
        write_kitti_calib,
        write_png16,
    )

    root = tmp_path / 'kitti'
    write_kitti_calib(root / 'images' / '2011_09_26' / 'calib_cam_to_cam.txt')
    rgb_rel, depth_rel = kitti_frame_paths('2011_09_26', 2, '02', 69)
    write_colour(root / 'images' / rgb_rel, np.full((*KITTI_SIZE, 3), 90, np.uint8))
    depth = np.zeros(KITTI_SIZE)
    depth[::3, ::3] = 40.0  # a LiDAR-like grid everywhere, in range
    depth[0, 0] = 85.0  # beyond 80 m: not scored
    write_png16(root / 'annotations' / depth_rel, depth, 256.0)
    listing = tmp_path / 'val.txt'
    listing.write_text(f'images/{rgb_rel} annotations/{depth_rel}\n')
    out = tmp_path / 'out'
    argv = ['eval', '--dataset', 'kitti', str(listing), '--data-root', str(root), '--out', str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert (
            main([*argv, '--model', str(tiny_artifact(head_kind='depth')), '--device', 'cpu']) == 0
        )
    assert 'protocol kitti: garg crop, depth 0.001..80 m' in capsys.readouterr().out
    document = read_metrics_json(out / 'metrics.json')
    assert document['protocol']['crop_boxes'] == {'375x1242': [153, 371, 44, 1197]}
    assert document['config']['max_depth'] == 80.0
    with (out / 'per_frame.csv').open() as handle:
        (row,) = list(csv.DictReader(handle))
    rows = [r for r in range(153, 371) if r % 3 == 0]
    cols = [c for c in range(44, 1197) if c % 3 == 0]
    assert int(row['valid_pixels']) == len(rows) * len(cols)  # the grid inside the Garg crop


def test_tum_associates_within_20_ms_by_default(tiny_artifact, tmp_path, capsys):
    from dataset_files import write_colour, write_png16, write_tum_list

    sequence = tmp_path / 'rgbd_dataset_freiburg2_desk'
    rgb_rows, depth_rows = [], []
    for index, offset_ms in enumerate((4, -12, 15)):  # every offset within 20 ms, one beyond 5
        stamp = 1311868164.0 + index / 30
        write_colour(sequence / f'rgb/{index}.png', np.full((480, 640, 3), 60, np.uint8))
        write_png16(sequence / f'depth/{index}.png', np.full((480, 640), 2.5), 5000.0)
        rgb_rows.append((f'{stamp:.6f}', f'rgb/{index}.png'))
        depth_rows.append((f'{stamp + offset_ms / 1000:.6f}', f'depth/{index}.png'))
    write_tum_list(sequence / 'rgb.txt', 'rgb', rgb_rows)
    write_tum_list(sequence / 'depth.txt', 'depth', depth_rows)
    out = tmp_path / 'out'
    argv = ['eval', '--dataset', 'tum', str(sequence), '--out', str(out), '--device', 'cpu']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert main([*argv, '--model', str(tiny_artifact(head_kind='depth'))]) == 0
    assert 'frames: 3 evaluated of 3 selected (3 listed' in capsys.readouterr().out
    document = read_metrics_json(out / 'metrics.json')
    assert 'protocol' not in document  # TUM has no paper protocol
    assert document['dataset']['association_window_s'] == 0.02
    assert document['dataset']['camera']['fx'] == 520.9  # freiburg2
