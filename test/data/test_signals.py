"""Signal alignment rule: interpolation inside, nearest value at the ends, NaN beyond the gap."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.data.errors import DataError
from pixio_ros.data.signals import SignalTrack, align_signal, parse_signal_request

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def _track(stamps_ms: list[int], values: list[float]) -> SignalTrack:
    stamps = np.array([T0 + t * MS for t in stamps_ms], dtype=np.int64)
    return SignalTrack('/s', 'v', stamps, np.array(values, dtype=np.float64)[:, None], True)


def test_interpolates_between_holds_at_the_ends_and_refuses_beyond_the_gap():
    track = _track([0, 100, 200], [0.0, 10.0, 30.0])
    frames_ms = [-50, -51, 0, 25, 150, 200, 250, 251]
    aligned = align_signal(track, np.array([T0 + t * MS for t in frames_ms]), max_gap_ms=50)
    # -50 and 250 are exactly 50 ms away: matched, holding the end value; -51 and 251 are not.
    expected = [0.0, np.nan, 0.0, 2.5, 20.0, 30.0, 30.0, np.nan]
    np.testing.assert_array_equal(aligned.values[:, 0], expected)
    assert aligned.matched.tolist() == [True, False, True, True, True, True, True, False]


def test_a_frame_between_two_far_messages_is_unmatched_even_inside_the_range():
    track = _track([0, 1000], [0.0, 1.0])
    aligned = align_signal(track, np.array([T0 + 500 * MS, T0 + 960 * MS]), max_gap_ms=50)
    assert aligned.matched.tolist() == [False, True]
    assert np.isnan(aligned.values[0, 0]) and aligned.values[1, 0] == pytest.approx(0.96)


@pytest.mark.parametrize(
    ('text', 'topic', 'fields'),
    [
        ('/cmd_vel:linear.x,angular.z', '/cmd_vel', ('linear.x', 'angular.z')),
        ('joint_states:position', '/joint_states', ('position',)),
    ],
)
def test_parse_signal_request(text, topic, fields):
    request = parse_signal_request(text)
    assert (request.topic, request.fields) == (topic, fields)


@pytest.mark.parametrize('text', ['/cmd_vel', ':x', '/cmd_vel:', '/cmd_vel:x,,y'])
def test_a_request_without_fields_is_refused_naming_the_form(text):
    with pytest.raises(DataError, match='needs TOPIC:FIELD'):
        parse_signal_request(text)
