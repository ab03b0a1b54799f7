"""A one-slot mailbox: the newest item replaces an unprocessed older one (which counts as dropped).

It keeps latency bounded when the producer (a camera) is faster than the consumer (the model):
the worker always gets the newest frame and no queue can grow.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ['Mailbox']

Item = TypeVar('Item')


class Mailbox(Generic[Item]):
    """Thread-safe single slot shared by one or more producers and one consumer."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Item | None = None
        self._closed = False

    def put(self, item: Item) -> bool:
        """Store `item`; returns True when it replaced an item nobody had taken (a drop)."""
        return self.swap(item) is not None

    def swap(self, item: Item) -> Item | None:
        """Store `item`; returns the item it replaced, which nobody had taken (or None)."""
        with self._condition:
            replaced = self._item
            self._item = item
            self._condition.notify()
        return replaced

    def clear(self) -> Item | None:
        """Empty the slot without waiting; returns the item it held (or None)."""
        with self._condition:
            item = self._item
            self._item = None
        return item

    def take(self, timeout: float) -> Item | None:
        """The newest item (emptying the slot), or None after `timeout` seconds or on close."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item = self._item
            self._item = None
        return item

    def close(self) -> None:
        """Wake a waiting consumer; later `take` calls return at once."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
