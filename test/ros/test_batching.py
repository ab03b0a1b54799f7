"""Gathering frames for one batch: the newest of every camera, waiting a bounded window."""

from __future__ import annotations

import threading
import time

from pixio_ros.ros.batching import LIVE_WITHIN_S, Arrivals, gather_frames
from pixio_ros.ros.mailbox import Mailbox

WINDOW_S = 0.2
IDLE_S = 0.05
# Scheduling slack on a loaded 2-core machine.
SLACK_S = 0.5


class Source:
    def __init__(self, arrivals: Arrivals, *, live: bool = True) -> None:
        self.mailbox: Mailbox[str] = Mailbox()
        self.live = live
        self._arrivals = arrivals

    def put(self, frame: str) -> None:
        self.mailbox.put(frame)
        self._arrivals.signal()

    def recently_received(self, now: float, within_s: float) -> bool:
        assert within_s == LIVE_WITHIN_S
        return self.live


def test_nothing_waiting_returns_empty_after_the_idle_timeout():
    arrivals = Arrivals()
    started = time.monotonic()
    assert (
        gather_frames([Source(arrivals)], arrivals, window_s=WINDOW_S, idle_timeout_s=IDLE_S) == []
    )
    assert time.monotonic() - started < IDLE_S + SLACK_S


def test_frames_already_there_go_together_at_once():
    arrivals = Arrivals()
    sources = [Source(arrivals) for _ in range(3)]
    for index, source in enumerate(sources):
        source.put(f'frame {index}')
    started = time.monotonic()
    taken = gather_frames(sources, arrivals, window_s=10.0, idle_timeout_s=IDLE_S)
    assert taken == [(0, 'frame 0'), (1, 'frame 1'), (2, 'frame 2')]
    assert time.monotonic() - started < SLACK_S


def test_a_late_frame_within_the_window_joins_the_batch():
    arrivals = Arrivals()
    early, late = Source(arrivals), Source(arrivals)
    early.put('early')
    timer = threading.Timer(WINDOW_S / 4, late.put, args=('late',))
    timer.start()
    try:
        taken = gather_frames([early, late], arrivals, window_s=10.0, idle_timeout_s=IDLE_S)
    finally:
        timer.join()
    assert taken == [(0, 'early'), (1, 'late')]


def test_a_live_camera_without_a_frame_is_waited_for_at_most_the_window():
    arrivals = Arrivals()
    sending, missing = Source(arrivals), Source(arrivals)
    sending.put('frame')
    started = time.monotonic()
    taken = gather_frames([sending, missing], arrivals, window_s=WINDOW_S, idle_timeout_s=IDLE_S)
    waited = time.monotonic() - started
    assert taken == [(0, 'frame')]
    assert WINDOW_S * 0.9 <= waited < WINDOW_S + SLACK_S


def test_a_silent_camera_is_not_waited_for():
    arrivals = Arrivals()
    sending, silent = Source(arrivals), Source(arrivals, live=False)
    sending.put('frame')
    started = time.monotonic()
    taken = gather_frames([sending, silent], arrivals, window_s=10.0, idle_timeout_s=IDLE_S)
    assert taken == [(0, 'frame')]
    assert time.monotonic() - started < SLACK_S


def test_closing_ends_a_wait():
    arrivals = Arrivals()
    sending, missing = Source(arrivals), Source(arrivals)
    sending.put('frame')
    threading.Timer(WINDOW_S / 4, arrivals.close).start()
    started = time.monotonic()
    taken = gather_frames([sending, missing], arrivals, window_s=10.0, idle_timeout_s=IDLE_S)
    assert taken == [(0, 'frame')]
    assert time.monotonic() - started < SLACK_S + WINDOW_S
