"""The one-slot mailbox: newest wins, replacements are reported, close wakes the consumer."""

from __future__ import annotations

import threading

from pixio_ros.ros.mailbox import Mailbox


def test_newest_item_replaces_an_untaken_one():
    mailbox: Mailbox[int] = Mailbox()
    assert mailbox.put(1) is False
    assert mailbox.put(2) is True
    assert mailbox.take(timeout=0) == 2
    assert mailbox.take(timeout=0) is None
    assert mailbox.put(3) is False


def test_take_waits_for_a_producer():
    mailbox: Mailbox[str] = Mailbox()
    producer = threading.Timer(0.05, mailbox.put, args=('frame',))
    producer.start()
    try:
        assert mailbox.take(timeout=10) == 'frame'
    finally:
        producer.join()


def test_close_wakes_a_waiting_consumer():
    mailbox: Mailbox[int] = Mailbox()
    result = []
    consumer = threading.Thread(target=lambda: result.append(mailbox.take(timeout=30)))
    consumer.start()
    mailbox.close()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert result == [None]
