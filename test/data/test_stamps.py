"""Stamp pairing: exact, nearest within tolerance, one-to-one, order independent."""

from __future__ import annotations

from pixio_ros.data.stamps import nearest_index, pair_stamps


def test_exact_pairs_and_unmatched():
    result = pair_stamps([10, 20, 30], [30, 10, 40])
    assert result.pairs == [(0, 1), (2, 0)]
    assert result.unmatched_first == [1]
    assert result.unmatched_second == [2]


def test_nearest_within_tolerance():
    result = pair_stamps([100, 200, 300], [104, 196, 320], tolerance_ns=5)
    assert result.pairs == [(0, 0), (1, 1)]
    assert result.unmatched_first == [2] and result.unmatched_second == [2]


def test_each_message_is_used_once_and_the_closer_pair_wins():
    # 103 is within 5 of both 100 and 105; it belongs to 105 (2 away), 100 stays unmatched.
    result = pair_stamps([100, 105], [103], tolerance_ns=5)
    assert result.pairs == [(1, 0)]
    assert result.unmatched_first == [0]


def test_zero_tolerance_is_exact_only():
    assert pair_stamps([100], [101]).pairs == []


def test_nearest_index():
    stamps = [10, 20, 30]
    assert [nearest_index(stamps, s) for s in (0, 14, 15, 16, 99)] == [0, 0, 0, 1, 2]
