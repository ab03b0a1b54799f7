"""The NYUv2 / KITTI protocols: crops against independently written index arithmetic, ranges."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.evaluation.config import EvalConfig, resolve_protocol_and_range
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import score_frame
from pixio_ros.evaluation.protocol import PROTOCOLS, eigen_crop, garg_crop, get_protocol

# Sizes of KITTI's rectified colour images across the raw drives (S_rect_02 of each day).
KITTI_SIZES = [(375, 1242), (370, 1224), (374, 1238), (376, 1241), (370, 1226)]


def box_mask(height, width, first_row, last_row, first_col, last_col):
    """True on rows first_row..last_row and columns first_col..last_col, both INCLUSIVE.

    Built by comparing every pixel's indices, not by slicing as the protocol does.
    """
    rows, cols = np.indices((height, width))
    return (rows >= first_row) & (rows <= last_row) & (cols >= first_col) & (cols <= last_col)


def test_eigen_crop_is_rows_45_to_470_and_columns_41_to_600_of_480x640():
    region = get_protocol('nyuv2').region(480, 640)
    expected = box_mask(480, 640, 45, 470, 41, 600)
    np.testing.assert_array_equal(region, expected)
    assert int(region.sum()) == 426 * 560
    box = eigen_crop(480, 640)
    assert (box.top, box.bottom, box.left, box.right) == (45, 471, 41, 601)


def test_garg_crop_of_the_usual_kitti_image_by_hand():
    # 0.40810811 * 375 = 153.04, 0.99189189 * 375 = 371.96, 0.03594771 * 1242 = 44.65,
    # 0.96405229 * 1242 = 1197.35: rows 153..370 and columns 44..1196 are kept.
    region = get_protocol('kitti').region(375, 1242)
    np.testing.assert_array_equal(region, box_mask(375, 1242, 153, 370, 44, 1196))


@pytest.mark.parametrize(('height', 'width'), KITTI_SIZES)
def test_garg_crop_of_every_kitti_size_in_integer_arithmetic(height, width):
    # The fractions as exact integers over 1e8: floor(f * n) without floating point.
    top = 40810811 * height // 10**8
    bottom = 99189189 * height // 10**8
    left = 3594771 * width // 10**8
    right = 96405229 * width // 10**8
    region = get_protocol('kitti').region(height, width)
    np.testing.assert_array_equal(region, box_mask(height, width, top, bottom - 1, left, right - 1))
    box = garg_crop(height, width)
    assert (box.height, box.width) == (bottom - top, right - left)


def test_eigen_crop_scales_with_a_half_resolution_ground_truth():
    box = eigen_crop(240, 320)
    assert (box.top, box.bottom, box.left, box.right) == (22, 236, 20, 300)  # round(x / 2)


def test_only_the_crop_is_scored():
    gt = np.full((480, 640), 3.0, np.float32)
    pred = gt.copy()
    pred[:45] = 9.0  # wrong above the crop
    pred[:, 601:] = 0.5  # and right of it
    nyuv2 = get_protocol('nyuv2')
    inside = score_frame(
        pred, gt, align='none', min_depth=1e-3, max_depth=10.0, region=nyuv2.region(480, 640)
    )
    everywhere = score_frame(pred, gt, align='none', min_depth=1e-3, max_depth=10.0)
    assert inside.metrics['abs_rel'] == 0.0 and inside.metrics['delta1'] == 1.0
    assert inside.valid_pixels == 426 * 560
    assert everywhere.metrics['abs_rel'] > 0.1


def test_ranges_and_description():
    assert (PROTOCOLS['nyuv2'].min_depth, PROTOCOLS['nyuv2'].max_depth) == (1e-3, 10.0)
    assert (PROTOCOLS['kitti'].min_depth, PROTOCOLS['kitti'].max_depth) == (1e-3, 80.0)
    described = PROTOCOLS['kitti'].describe([(375, 1242), (370, 1224), (375, 1242)])
    assert described['name'] == 'kitti' and described['crop'] == 'garg'
    assert described['crop_boxes'] == {
        '370x1224': [151, 366, 43, 1180],
        '375x1242': [153, 371, 44, 1197],
    }
    with pytest.raises(
        EvaluationError, match=r"--protocol 'eigen' is unknown; choose one of nyuv2"
    ):
        get_protocol('eigen')


@pytest.mark.parametrize(
    ('dataset', 'protocol', 'max_depth', 'expected'),
    [
        ('nyuv2', None, None, ('nyuv2', 1e-3, 10.0)),
        ('kitti', None, None, ('kitti', 1e-3, 80.0)),
        ('kitti', 'none', None, (None, 1e-3, 80.0)),
        ('tum', None, None, (None, 1e-3, 10.0)),
        (None, None, None, (None, 1e-3, 10.0)),
        (None, 'kitti', None, ('kitti', 1e-3, 80.0)),
        ('nyuv2', 'none', 5.0, (None, 1e-3, 5.0)),
    ],
)
def test_defaults_follow_the_dataset(dataset, protocol, max_depth, expected):
    resolved = resolve_protocol_and_range(
        dataset=dataset, protocol=protocol, min_depth=None, max_depth=max_depth
    )
    assert resolved == expected


def test_a_range_that_contradicts_the_protocol_is_refused(tmp_path):
    config = EvalConfig(
        bag=tmp_path / 'nyu.mat',
        out=tmp_path / 'out',
        model=tmp_path / 'm.ts',
        dataset='nyuv2',
        protocol='nyuv2',
        max_depth=5.0,
    )
    with pytest.raises(EvaluationError, match=r'--protocol nyuv2 scores depth in 0\.001\.\.10 m'):
        config.validate()
