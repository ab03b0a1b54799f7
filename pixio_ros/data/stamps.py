"""Pair two topics' messages by header stamp: exact, or nearest within a tolerance, one-to-one."""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class StampPairing:
    """Index pairs into the two stamp lists, and the indices left without a partner."""

    pairs: list[tuple[int, int]]
    unmatched_first: list[int]
    unmatched_second: list[int]


def pair_stamps(first: list[int], second: list[int], tolerance_ns: int = 0) -> StampPairing:
    """Match each stamp of `first` with the nearest stamp of `second` within `tolerance_ns`.

    Each message is used at most once; conflicts go to the closer pair (ties: earlier stamps), so
    the result does not depend on iteration order. Pairs come back sorted by `first`'s stamp.

    Args:
        first: stamps in integer nanoseconds (any order).
        second: stamps in integer nanoseconds (any order).
        tolerance_ns: largest accepted |difference|; 0 means exact matches only.
    """
    order = sorted(range(len(second)), key=lambda j: (second[j], j))
    sorted_second = [second[j] for j in order]
    candidates: list[tuple[int, int, int, int]] = []
    for i, stamp in enumerate(first):
        low = bisect.bisect_left(sorted_second, stamp - tolerance_ns)
        high = bisect.bisect_right(sorted_second, stamp + tolerance_ns)
        for position in range(low, high):
            j = order[position]
            candidates.append((abs(second[j] - stamp), stamp, i, j))
    candidates.sort()
    used_first: set[int] = set()
    used_second: set[int] = set()
    pairs = []
    for _, _, i, j in candidates:
        if i in used_first or j in used_second:
            continue
        used_first.add(i)
        used_second.add(j)
        pairs.append((i, j))
    pairs.sort(key=lambda pair: (first[pair[0]], pair[0]))
    return StampPairing(
        pairs,
        [i for i in range(len(first)) if i not in used_first],
        [j for j in range(len(second)) if j not in used_second],
    )


def nearest_index(stamps: list[int], stamp: int) -> int:
    """Index of the element of sorted `stamps` closest to `stamp` (earlier wins ties)."""
    position = bisect.bisect_left(stamps, stamp)
    if position == 0:
        return 0
    if position == len(stamps):
        return len(stamps) - 1
    before, after = stamps[position - 1], stamps[position]
    return position - 1 if stamp - before <= after - stamp else position
