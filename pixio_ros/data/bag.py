"""Read rosbag2 (sqlite3, mcap) and ROS 1 bags with rosbags: topics, stamped messages, raw CDR.

Messages come back as rosbags dataclasses, whose field names match sensor_msgs, so the runtime's
image codec decodes them directly. Per-topic iteration is in header-stamp order (the order the
camera produced them), which can differ from the recording (log) order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixio_ros.data.errors import DataError
from pixio_ros.data.messages import typestore
from pixio_ros.units import stamp_ns


@dataclass(frozen=True)
class StampedMessage:
    """One deserialised message with its header stamp and its log (receive) time, nanoseconds."""

    topic: str
    stamp_ns: int
    log_time_ns: int
    msg: Any


@dataclass(frozen=True)
class RawMessage:
    """One message as CDR bytes (what an rclpy raw publisher or a rosbag2 writer takes)."""

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


class BagReader:
    """A bag opened for reading; use as a context manager.

    Args:
        path: a rosbag2 directory (sqlite3 or mcap), a bare .mcap file, or a ROS 1 .bag file.
    """

    def __init__(self, path: Path | str) -> None:
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f'bag {self.path} does not exist; pass a rosbag2 directory or .bag.')
        try:
            self._reader = AnyReader([self.path], default_typestore=typestore())
            self._reader.open()
        except Exception as err:  # rosbags raises several unrelated types for bad files
            raise DataError(
                f'cannot read bag {self.path}: {err}; expected a rosbag2 directory (sqlite3 or '
                'mcap) or a ROS 1 .bag file.'
            ) from err
        self._ros1 = not self._reader.is2

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying files."""
        self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type ('sensor_msgs/msg/Image'), sorted by topic."""
        return {c.topic: c.msgtype for c in sorted(self._reader.connections, key=_topic)}

    def message_count(self, topic: str) -> int:
        """Messages recorded on `topic`."""
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def describe_topics(self) -> str:
        """'topic (type, N msgs)' lines, for error messages and summaries."""
        return (
            '; '.join(
                f'{topic} ({msgtype}, {self.message_count(topic)} msgs)'
                for topic, msgtype in self.topics.items()
            )
            or 'none'
        )

    def info(self) -> dict[str, Any]:
        """Path, time span and per-topic types and counts (JSON-friendly)."""
        return {
            'path': str(self.path),
            'start_time_ns': int(self._reader.start_time),
            'end_time_ns': int(self._reader.end_time),
            'message_count': int(self._reader.message_count),
            'topics': {
                topic: {'type': msgtype, 'count': self.message_count(topic)}
                for topic, msgtype in self.topics.items()
            },
        }

    def require_topic(self, topic: str, allowed_types: Iterable[str], *, option: str) -> str:
        """The type of `topic`, after checking it exists with one of `allowed_types`.

        Raises:
            DataError: naming the option, the bag's topics and types, and what was expected.
        """
        allowed = tuple(allowed_types)
        msgtype = self.topics.get(topic)
        if msgtype is None:
            raise DataError(
                f'{option} {topic} is not in bag {self.path}; its topics are: '
                f'{self.describe_topics()}.'
            )
        if msgtype not in allowed:
            raise DataError(
                f'{option} {topic} has type {msgtype}; expected {" or ".join(allowed)}.'
            )
        return msgtype

    def _connections(self, topics: Iterable[str]) -> list[Any]:
        wanted = set(topics)
        return [c for c in self._reader.connections if c.topic in wanted]

    def messages(self, topic: str) -> list[StampedMessage]:
        """All messages of `topic`, deserialised, in header-stamp order (log time if no header).

        Ties keep log order. Holds the topic in memory; use `stream` for large image topics.
        """
        stamped = list(self.stream([topic]))
        return sorted(stamped, key=lambda m: (m.stamp_ns, m.log_time_ns))

    def stream(self, topics: Iterable[str]) -> Iterator[StampedMessage]:
        """Messages of `topics` in log order, deserialised one at a time."""
        connections = self._connections(topics)
        if not connections:
            return
        for connection, log_time, raw in self._reader.messages(connections=connections):
            msg = self._reader.deserialize(raw, connection.msgtype)
            msg_header = getattr(msg, 'header', None)
            stamp = stamp_ns(msg_header) if msg_header is not None else int(log_time)
            yield StampedMessage(connection.topic, stamp, int(log_time), msg)

    def raw(self, topics: Iterable[str]) -> Iterator[RawMessage]:
        """Messages of `topics` in log order as ROS 2 CDR bytes (ROS 1 data is converted)."""
        connections = self._connections(topics)
        if not connections:
            return
        store = typestore()
        for connection, log_time, raw in self._reader.messages(connections=connections):
            if self._ros1:
                msg = _to_ros2(self._reader.deserialize(raw, connection.msgtype), store)
                raw = store.serialize_cdr(msg, connection.msgtype)
            yield RawMessage(connection.topic, connection.msgtype, int(log_time), bytes(raw))


def _topic(connection: Any) -> str:
    return connection.topic


def _to_ros2(value: Any, store: Any) -> Any:
    """Rebuild a ROS 1 message with the ROS 2 classes (drops fields ROS 2 lacks: Header.seq)."""
    msgtype = getattr(value, '__msgtype__', None)
    if msgtype is not None:
        cls = store.types[msgtype]
        names = [name for name in cls.__dataclass_fields__ if name != '__msgtype__']
        return cls(**{name: _to_ros2(getattr(value, name), store) for name in names})
    if isinstance(value, list):
        return [_to_ros2(item, store) for item in value]
    return value
