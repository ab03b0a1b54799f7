"""Hostile CameraInfo against a real pixio_node process: refused on arrival, counted, never used.

Issue 12: a CameraInfo that is not a calibration was used (fx = inf gave meaningless points) or
ignored without a count while the 3D outputs silently changed their geometry source; plumb_bob
with three coefficients ended in a traceback counted as `internal`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from adversarial_helpers import (
    CX,
    CY,
    FRAME_OUTPUTS,
    FX,
    FY,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    camera_info,
    depth_array,
    random_rgb,
    raw_image,
    set_stamp,
    stamp_of,
    wait_until,
)
from cloud_reader import cloud_array

# ROS-facing through the node process: `make test-kilted` runs it too.
pytestmark = pytest.mark.ros

WARN = 1
OK = 0
NAN, INF = math.nan, math.inf


def with_k(index: int, value: float) -> Any:
    info = camera_info()
    k = list(info.k)
    k[index] = value
    info.k = k
    return info


def with_fields(**fields: Any) -> Any:
    info = camera_info()
    for name, value in fields.items():
        if name.startswith('roi_'):
            setattr(info.roi, name.removeprefix('roi_'), value)
        else:
            setattr(info, name, value)
    return info


# Same size as the images: the last valid CameraInfo stays in use.
SAME_SIZE = {
    'fx inf': lambda: with_k(0, INF),
    'skew nan': lambda: with_k(1, NAN),
    'fx nan': lambda: with_k(0, NAN),
    'fx negative': lambda: with_k(0, -FX),
    'fy zero': lambda: with_k(4, 0.0),
    'K all zeros': lambda: with_fields(k=[0.0] * 9),
    'K bottom row': lambda: with_k(8, 2.0),
    'principal point far outside': lambda: with_k(2, 40.0 * IMAGE_WIDTH),
    'D inf': lambda: with_fields(d=[0.0, INF, 0.0, 0.0, 0.0]),
    'P nan': lambda: with_fields(p=[NAN] + [0.0] * 11),
    'R inf': lambda: with_fields(r=[INF] + [0.0] * 8),
    'plumb_bob with 3 coefficients': lambda: with_fields(d=[0.1, 0.01, 0.001]),
    'rational_polynomial with 5': lambda: with_fields(
        distortion_model='rational_polynomial', d=[0.1] * 5
    ),
    'equidistant with 5': lambda: with_fields(distortion_model='equidistant', d=[0.1] * 5),
    'unknown model with non-zero D': lambda: with_fields(
        distortion_model='kannala_brandt_x', d=[0.1, 0.0, 0.0, 0.0]
    ),
    'ROI outside the image': lambda: with_fields(
        roi_x_offset=IMAGE_WIDTH, roi_y_offset=0, roi_width=10, roi_height=10
    ),
    'ROI beyond the edge': lambda: with_fields(
        roi_x_offset=IMAGE_WIDTH - 5, roi_y_offset=0, roi_width=10, roi_height=10
    ),
    'binning wider than the image': lambda: with_fields(binning_x=2 * IMAGE_WIDTH, binning_y=1),
    'binning of 2**32 - 1': lambda: with_fields(binning_x=2**32 - 1, binning_y=2**32 - 1),
    'P that overflows when cropped': lambda: with_fields(
        p=[FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 1e308, 1e308, 1.0, 0.0],
        roi_x_offset=10,
        roi_y_offset=0,
        roi_width=IMAGE_WIDTH - 10,
        roi_height=IMAGE_HEIGHT,
    ),
}
# Another size: the kept CameraInfo no longer applies, the points come from the head.
OTHER_SIZE = {
    'width zero': lambda: with_fields(width=0),
    'height zero': lambda: with_fields(height=0),
    'huge size with NaN fx': lambda: with_fields(width=2**32 - 1, k=[NAN] + [0.0] * 8),
}


def expected_points_x(depth: np.ndarray, fx: float = FX, cx: float = CX) -> np.ndarray:
    u = np.arange(depth.shape[1])[np.newaxis]
    return (u - cx) * depth / fx


def assert_valid_geometry(outputs: dict[str, Any]) -> None:
    """The frame's outputs use the test intrinsics, not a refused CameraInfo's."""
    info = outputs['depth/camera_info']
    np.testing.assert_array_equal(np.asarray(info.k), np.asarray(camera_info().k))
    np.testing.assert_array_equal(np.asarray(info.p), np.asarray(camera_info().p))
    depth = depth_array(outputs['depth'])
    cloud = cloud_array(outputs['points'])
    np.testing.assert_array_equal(cloud['z'], depth)
    np.testing.assert_allclose(cloud['x'], expected_points_x(depth), rtol=1e-5, atol=1e-6)


@pytest.fixture
def calibrated(raw_target):
    """The node with the valid CameraInfo in force (diagnostics OK) before and after a case."""

    def restore() -> None:
        raw_target.info_pub.publish(camera_info())
        raw_target.fresh_diagnostics(lambda d: d.level == OK)

    restore()
    yield raw_target
    restore()


@pytest.mark.parametrize('case', list(SAME_SIZE))
def test_invalid_camera_info_is_refused_and_the_last_valid_one_kept(calibrated, case):
    target = calibrated
    info = SAME_SIZE[case]()
    diagnostics, lines = target.expect_refused('camera_info', target.send_infos(info))
    assert diagnostics.level == WARN and 'invalid CameraInfo' in diagnostics.message
    assert 'keeping the last valid one' in diagnostics.message
    assert int(diagnostics.values['frames failed']) >= 0
    outputs = target.process_valid_frame(seed=7)
    assert_valid_geometry(outputs)
    after = target.fresh_diagnostics()
    assert after.level == WARN and after.values['points source'] == 'camera_info'
    for line in lines:
        assert 'invalid CameraInfo' in line


@pytest.mark.parametrize('case', list(OTHER_SIZE))
def test_invalid_camera_info_of_another_size_drops_the_kept_one(calibrated, case):
    target = calibrated
    info = OTHER_SIZE[case]()
    diagnostics, _ = target.expect_refused(
        'camera_info',
        target.send_infos(info),
        frame_outputs=('depth', 'points', 'features', 'embedding'),
    )
    assert diagnostics.level == WARN and 'no valid CameraInfo' in diagnostics.message
    outputs = target.process_frame(
        raw_image(random_rgb(8)), ('depth', 'points', 'features', 'embedding')
    )
    assert not target.outputs_with_stamp(stamp_of(outputs['depth']), ('depth/camera_info',))
    after = target.fresh_diagnostics()
    assert after.level == WARN and after.values['points source'] == 'head'


def test_a_burst_of_invalid_camera_infos_is_counted_one_by_one(calibrated):
    # Fewer than the node's camera_info queue holds (input_qos.depth 5, and the fixture's valid
    # CameraInfo may still be queued): more may be replaced in DDS before the node takes them,
    # which is the QoS at work, not a lost count.
    infos = [SAME_SIZE[case]() for case in ('fx inf', 'skew nan', 'K all zeros', 'D inf')]
    calibrated.expect_refused('camera_info', calibrated.send_infos(*infos))


@pytest.mark.parametrize(
    ('case', 'info', 'k'),
    [
        (
            'binning 2 of a calibration at twice the size',
            lambda: with_fields(
                **{
                    'width': 2 * IMAGE_WIDTH,
                    'height': 2 * IMAGE_HEIGHT,
                    'k': [2 * FX, 0.0, 2 * CX + 0.5, 0.0, 2 * FY, 2 * CY + 0.5, 0.0, 0.0, 1.0],
                    'p': [0.0] * 12,
                    'binning_x': 2,
                    'binning_y': 2,
                }
            ),
            (FX, CX, FY, CY),
        ),
        (
            'ROI of a larger calibration',
            lambda: with_fields(
                **{
                    'width': IMAGE_WIDTH + 40,
                    'height': IMAGE_HEIGHT + 30,
                    'k': [FX, 0.0, CX + 20, 0.0, FY, CY + 10, 0.0, 0.0, 1.0],
                    'p': [0.0] * 12,
                    'roi_x_offset': 20,
                    'roi_y_offset': 10,
                    'roi_width': IMAGE_WIDTH,
                    'roi_height': IMAGE_HEIGHT,
                }
            ),
            (FX, CX, FY, CY),
        ),
        (
            'calibration at twice the image size',
            lambda: camera_info(
                2 * IMAGE_WIDTH,
                2 * IMAGE_HEIGHT,
                fx=2 * FX,
                fy=2 * FY,
                cx=2 * CX + 0.5,
                cy=2 * CY + 0.5,
            ),
            (FX, CX, FY, CY),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else '',
)
def test_binning_roi_and_rescale_describe_the_published_image(calibrated, case, info, k):
    target = calibrated
    before = target.fresh_diagnostics()
    target.info_pub.publish(info())
    fx, cx, fy, cy = k
    expected = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]

    def applied() -> bool:  # the CameraInfo and the frame travel on different topics
        outputs = target.process_valid_frame(seed=9)
        return np.allclose(outputs['depth/camera_info'].k, expected)

    wait_until(applied, what=f'{case}: K of the published image')
    outputs = target.process_valid_frame(seed=9)
    depth = depth_array(outputs['depth'])
    cloud = cloud_array(outputs['points'])
    np.testing.assert_allclose(cloud['x'], expected_points_x(depth, fx, cx), rtol=1e-5, atol=1e-5)
    after = target.fresh_diagnostics()
    assert after.errors() == before.errors() and after.level == OK


def test_camera_info_of_another_resolution_fails_the_frames_it_cannot_describe(calibrated):
    """A valid calibration that does not describe the images: frames counted, none published."""
    target = calibrated
    mark = target.log_mark()
    target.info_pub.publish(camera_info(1280, 720, cx=639.5, cy=359.5))
    refused_stamps = []

    def frame_refused() -> bool:  # the CameraInfo and the frames travel on different topics
        before = target.fresh_diagnostics()
        msg = set_stamp(raw_image(random_rgb(10)), target.next_stamp())
        target.image_pub.publish(msg)
        after = target.fresh_diagnostics(
            lambda d: (
                d.count('frames failed') > before.count('frames failed')
                or d.count('frames processed') > before.count('frames processed')
            )
        )
        if after.count('errors camera_info') > before.count('errors camera_info'):
            refused_stamps.append(stamp_of(msg))
            assert after.errors().get('internal', 0) == before.errors().get('internal', 0)
            return True
        return False

    wait_until(frame_refused, what='a frame refused for the 1280x720 CameraInfo')
    lines = target.assert_log_clean(mark)
    for line in lines:
        assert '1280x720' in line and f'{IMAGE_WIDTH}x{IMAGE_HEIGHT}' in line
    target.info_pub.publish(camera_info())
    wait_until(
        lambda: (
            target.fresh_diagnostics().count('errors camera_info') >= 0
            and np.allclose(
                target.process_valid_frame(seed=11)['depth/camera_info'].k, camera_info().k
            )
        ),
        what='frames processed again with the matching CameraInfo',
    )
    for topic in FRAME_OUTPUTS:
        assert not target.outputs_with_stamp(refused_stamps[0], (topic,))


def test_pixels_a_folding_calibration_cannot_reach_get_no_points_and_a_warning(calibrated):
    """Valid numbers, impossible corners: those pixels get NaN points, not another pixel's ray.

    k1 = -0.5 bends the distorted radius r (1 - 0.5 r^2) back after 0.544 (r = 0.816): no ray
    reaches a pixel farther from the principal point, and this image's corners lie at 0.72.
    """
    target = calibrated
    mark = target.log_mark()
    before = target.fresh_diagnostics()
    folding = with_fields(d=[-0.5, 0.0, 0.0, 0.0, 0.0])

    def applied() -> bool:  # the CameraInfo and the frame travel on different topics
        target.info_pub.publish(folding)
        return list(target.process_valid_frame(seed=13)['depth/camera_info'].d)[0] == -0.5

    wait_until(applied, what='frames processed with the folding CameraInfo')
    outputs = target.process_valid_frame(seed=13)
    cloud = cloud_array(outputs['points'])
    v, u = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH]
    radius = np.hypot((u - CX) / FX, (v - CY) / FY)  # distorted normalised radius of the pixel
    reachable = (radius < 0.5) & np.isfinite(depth_array(outputs['depth']))
    assert (radius > 0.545).any() and reachable.any()
    for axis in ('x', 'y', 'z'):
        assert np.isnan(cloud[axis][radius > 0.545]).all(), axis
        assert np.isfinite(cloud[axis][reachable]).all(), axis
    assert not outputs['points'].is_dense
    after = target.fresh_diagnostics(lambda d: 'have no ray' in d.message)
    assert after.level == WARN and '% of the pixels have no ray' in after.message
    assert after.errors() == before.errors()  # a calibration problem, not failed frames
    lines = target.assert_log_clean(mark)
    assert len(lines) == 1 and 'have no ray' in lines[0]
