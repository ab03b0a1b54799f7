"""Which frames run together: the newest frame of every camera, gathered within a time window.

The inference stage takes the newest frame of each camera that has one. When some cameras have
none yet, it waits at most `batch_window_ms` for them, so frames of unsynchronised cameras still
share one forward pass; a camera that has sent nothing for `LIVE_WITHIN_S` is not waited for, so
a silent camera costs the others nothing. With one camera the frame is taken at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Final, Protocol

__all__ = ['LIVE_WITHIN_S', 'Arrivals', 'FrameSource', 'Slot', 'gather_frames']

# A camera whose last frame is older than this is not waited for (1.5 frames at 1 Hz).
LIVE_WITHIN_S: Final = 1.5


class Slot(Protocol):
    """A one-slot mailbox as gathering uses it."""

    def take(self, timeout: float) -> object | None:
        """The newest item (emptying the slot), or None after `timeout` seconds."""


class FrameSource(Protocol):
    """What gathering needs of a camera stream."""

    @property
    def mailbox(self) -> Slot:
        """The camera's newest frame waits here."""

    def recently_received(self, now: float, within_s: float) -> bool:
        """Whether a frame arrived in the last `within_s` seconds (monotonic `now`)."""


class Arrivals:
    """A counter of stored frames that the inference stage can wait on (one for all cameras)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._count = 0
        self._closed = False

    @property
    def count(self) -> int:
        """Frames signalled so far."""
        with self._condition:
            return self._count

    def signal(self) -> None:
        """A camera stored a frame."""
        with self._condition:
            self._count += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until more than `seen` frames were signalled, `timeout` passed, or close."""
        with self._condition:
            if self._count == seen and not self._closed and timeout > 0:
                self._condition.wait(timeout)
            return self._count

    @property
    def closed(self) -> bool:
        """Whether `close` was called (and not `reopen` since)."""
        with self._condition:
            return self._closed

    def close(self) -> None:
        """Wake a waiting stage; later waits return at once."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def reopen(self) -> None:
        """Allow waiting again (after the stage was stopped and is started anew)."""
        with self._condition:
            self._closed = False


def gather_frames(
    sources: Sequence[FrameSource],
    arrivals: Arrivals,
    *,
    window_s: float,
    idle_timeout_s: float,
) -> list[tuple[int, object]]:
    """The frames to run together, as (source index, frame) pairs; empty after an idle timeout.

    Waits up to `idle_timeout_s` for the first frame; then up to `window_s` more for a frame of
    every other source that received one within `LIVE_WITHIN_S`.
    """
    taken: dict[int, object] = {}
    deadline: float | None = None
    give_up = time.monotonic() + idle_timeout_s
    seen = arrivals.count
    while True:
        for index, source in enumerate(sources):
            if index not in taken:
                frame = source.mailbox.take(0.0)
                if frame is not None:
                    taken[index] = frame
        now = time.monotonic()
        if taken:
            if deadline is None:
                deadline = now + window_s
            waiting_for = [
                index
                for index, source in enumerate(sources)
                if index not in taken and source.recently_received(now, LIVE_WITHIN_S)
            ]
            if not waiting_for or now >= deadline:
                return sorted(taken.items())
            timeout = deadline - now
        else:
            if now >= give_up:
                return []
            timeout = give_up - now
        if arrivals.closed:
            return sorted(taken.items())
        seen = arrivals.wait(seen, timeout)
