"""Hostile raw images, stamps and bursts against a real pixio_node process."""

from __future__ import annotations

import time

import numpy as np
import pytest
from adversarial_helpers import (
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    NS_PER_S,
    WAIT_S,
    random_rgb,
    raw_image,
    set_stamp,
    wait_until,
)

# ROS-facing through the node process: `make test-kilted` runs it too.
pytestmark = pytest.mark.ros

# ROS encodings the node decodes, with their bytes per pixel.
DECODED = {
    'rgb8': 3,
    'bgr8': 3,
    'rgba8': 4,
    'bgra8': 4,
    'mono8': 1,
    'mono16': 2,
    'yuv422': 2,
    'yuv422_yuy2': 2,
    'bayer_rggb8': 1,
    'bayer_bggr8': 1,
    'bayer_gbrg8': 1,
    'bayer_grbg8': 1,
}
# Encodings of sensor_msgs/image_encodings.hpp (and misspellings) that the node does not decode.
NOT_DECODED = [
    'rgb16',
    'bgra16',
    '16UC1',
    '32FC1',
    '8UC3',
    '64FC1',
    'bayer_rggb16',
    'uyvy',
    'nv21',
    '',
    'RGB8',
]
UINT32_MAX = 2**32 - 1
HUGE_SIDE = 2**31
W, H = IMAGE_WIDTH, IMAGE_HEIGHT


def defects(bpp: int) -> dict[str, dict]:
    """Image fields a peer can get wrong, for an encoding of `bpp` bytes per pixel."""
    full = bytes(W * H * bpp)
    return {
        'step one byte short': {'height': H, 'width': W, 'step': W * bpp - 1, 'data': full},
        'data one byte short': {'height': H, 'width': W, 'step': W * bpp, 'data': full[:-1]},
        'zero width': {'height': H, 'width': 0, 'step': 0, 'data': b''},
        'zero height': {'height': 0, 'width': W, 'step': W * bpp, 'data': b''},
        'huge size': {'height': HUGE_SIDE, 'width': HUGE_SIDE, 'step': UINT32_MAX, 'data': full},
    }


CASES = [
    pytest.param(encoding, defect, fields, id=f'{encoding}-{defect}')
    for encoding, bpp in DECODED.items()
    for defect, fields in defects(bpp).items()
]


@pytest.mark.parametrize(('encoding', 'defect', 'fields'), CASES)
def test_malformed_image_is_refused_as_decode(raw_target, encoding, defect, fields):
    msg = raw_image(encoding=encoding, **fields)
    raw_target.expect_refused('decode', raw_target.send_image(msg))


@pytest.mark.parametrize('encoding', NOT_DECODED)
def test_unknown_encoding_is_refused_as_decode(raw_target, encoding):
    msg = raw_image(encoding=encoding, data=bytes(W * H * 8), step=W * 8)
    _, lines = raw_target.expect_refused('decode', raw_target.send_image(msg))
    for line in lines:
        assert 'not supported' in line


@pytest.mark.parametrize(
    ('encoding', 'width', 'height'),
    [('yuv422', W - 1, H), ('bayer_rggb8', 1, 1), ('bayer_grbg8', W, 1)],
    ids=['yuv422-odd-width', 'bayer-1x1', 'bayer-one-row'],
)
def test_sizes_an_encoding_cannot_hold_are_refused_as_decode(raw_target, encoding, width, height):
    bpp = DECODED[encoding]
    msg = raw_image(
        encoding=encoding,
        width=width,
        height=height,
        step=width * bpp,
        data=bytes(width * height * bpp),
    )
    raw_target.expect_refused('decode', raw_target.send_image(msg))


@pytest.mark.parametrize(('height', 'width'), [(1, 1), (1, 600), (H // 2, W // 3)])
def test_image_not_matching_the_camera_info_is_refused_as_camera_info(raw_target, height, width):
    msg = raw_image(random_rgb(3, height, width))
    _, lines = raw_target.expect_refused('camera_info', raw_target.send_image(msg))
    for line in lines:
        assert f'{width}x{height}' in line


def test_stamp_zero_is_processed_without_a_message_age(raw_target):
    before = raw_target.fresh_diagnostics()
    mark = raw_target.log_mark()
    msg = raw_image(random_rgb(4))
    raw_target.image_pub.publish(set_stamp(msg, 0))

    def zero_stamped() -> bool:
        return all(
            any(
                m.header.stamp.sec == 0 and m.header.stamp.nanosec == 0
                for m in raw_target.messages(t)
            )
            for t in ('depth', 'points')
        )

    wait_until(zero_stamped, what='outputs stamped zero')
    after = raw_target.fresh_diagnostics(lambda d: d.count('frames without stamp') > 0)
    assert after.errors() == before.errors()
    age_p95 = float(after.values['message age ms p95'])
    assert 0.0 <= age_p95 < WAIT_S * 1000  # an unstamped frame does not enter the age
    raw_target.assert_log_clean(mark, max_lines=0)
    raw_target.process_valid_frame()


def test_stamp_in_the_future_does_not_poison_the_message_age(raw_target):
    before = raw_target.fresh_diagnostics()
    mark = raw_target.log_mark()
    msg = raw_image(random_rgb(5))
    future = time.time_ns() + 3600 * NS_PER_S
    got = raw_target.process_frame(msg, stamp=future)
    assert set(got) >= {'depth', 'points'}  # processed, the header copied as REP 117 wants
    after = raw_target.fresh_diagnostics(
        lambda d: (
            d.count('frames stamped in the future') > before.count('frames stamped in the future')
        )
    )
    assert after.errors() == before.errors()
    assert float(after.values['message age ms p95']) >= 0.0
    lines = raw_target.assert_log_clean(mark)
    assert len(lines) == 1 and 'ahead of' in lines[0]
    raw_target.process_valid_frame()


BURST_FRAMES = 500


def test_burst_of_500_frames_drops_old_ones_and_keeps_up(raw_target):
    before = raw_target.fresh_diagnostics()
    mark = raw_target.log_mark()
    frames = [raw_image(random_rgb(6)) for _ in range(BURST_FRAMES)]
    for msg in frames:
        raw_target.image_pub.publish(set_stamp(msg, raw_target.next_stamp()))
    last = frames[-1]
    wait_until(
        lambda: (
            raw_target.check_alive()
            and bool(
                raw_target.outputs_with_stamp(
                    last.header.stamp.sec * NS_PER_S + last.header.stamp.nanosec, ('depth',)
                )
            )
        ),
        what='the newest frame of the burst processed',
    )
    after = raw_target.fresh_diagnostics(
        lambda d: (
            d.count('frames received') - before.count('frames received') == BURST_FRAMES
            or d.count('frames processed') > before.count('frames processed')
        )
    )
    received = after.count('frames received') - before.count('frames received')
    processed = after.count('frames processed') - before.count('frames processed')
    dropped = after.count('frames dropped') - before.count('frames dropped')
    assert 0 < received <= BURST_FRAMES
    assert 0 < processed < received and dropped > 0
    assert after.errors() == before.errors()
    raw_target.assert_log_clean(mark, max_lines=0)
    got = raw_target.process_valid_frame()
    depth = np.frombuffer(bytes(got['depth'].data), '<f4')
    assert depth.size == IMAGE_HEIGHT * IMAGE_WIDTH
