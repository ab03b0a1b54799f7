"""Warnings logged at most once per period per reason: a bad input stream cannot flood the log."""

from __future__ import annotations

import threading
import time
from typing import Any, Final

__all__ = ['LOG_THROTTLE_S', 'ThrottledLog']

LOG_THROTTLE_S: Final = 5.0


class ThrottledLog:
    """A logger's `warning`, throttled per reason key (threads share one instance).

    Args:
        logger: an rclpy logger (`node.get_logger()`).
        period_s: the least time between two lines of the same reason.
    """

    def __init__(self, logger: Any, period_s: float = LOG_THROTTLE_S) -> None:
        self.logger = logger
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def warning(self, reason: str, text: str) -> None:
        """Log `text` unless a line of `reason` went out less than the period ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(reason, -self._period_s) < self._period_s:
                return
            self._last[reason] = now
        self.logger.warning(text)
