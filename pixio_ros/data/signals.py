"""Signals aligned to camera frames: `--with TOPIC[:FIELD,...]` values at each frame's stamp.

A signal is a numeric field (a number or a fixed-length array of numbers) of the messages on a
topic, read at the message's header stamp (its log time when the message has no header, e.g.
geometry_msgs/Twist). The value at a frame's stamp is the linear interpolation between the two
neighbouring messages; a frame whose nearest message is further than the maximum gap gets NaN
and counts as unmatched, so a policy never trains on a value invented across a dropout. Before
the first and after the last message the nearest value holds (within the gap), never an
extrapolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.data.feature_schema import signal_column
from pixio_ros.units import NS_PER_MS

__all__ = [
    'ALIGNMENT_RULE',
    'AlignedSignal',
    'SignalRequest',
    'SignalTrack',
    'align_signal',
    'parse_signal_request',
    'read_signal_tracks',
]

ALIGNMENT_RULE: Final = (
    'linear interpolation between the two messages around the frame stamp (message stamp: '
    'header.stamp, else the bag log time); the nearest value before the first or after the last '
    'message; NaN and matched=false when the nearest message is more than max_gap_ms away'
)
FIELD_SEPARATOR: Final = '.'


@dataclass(frozen=True)
class SignalRequest:
    """One `--with` option: a topic and the fields to read from its messages."""

    topic: str
    fields: tuple[str, ...]

    def columns(self) -> list[str]:
        """The dataset columns this request adds, in option order."""
        return [signal_column(self.topic, name) for name in self.fields]


def parse_signal_request(text: str) -> SignalRequest:
    """`'/joint_states:position,velocity'` -> SignalRequest('/joint_states', (...)).

    Without fields (`'/cmd_vel'`) the topic must be given fields; that is an error naming both
    forms, because guessing which numbers a message holds would make silent columns.

    Raises:
        DataError: empty topic, no fields, or an empty field name.
    """
    topic, separator, fields = text.partition(':')
    names = tuple(name.strip() for name in fields.split(',')) if separator else ()
    if not topic.strip() or not names or not all(names):
        raise DataError(
            f'--with {text!r} needs TOPIC:FIELD[,FIELD...], e.g. '
            "'/joint_states:position,velocity' or '/cmd_vel:linear.x,angular.z'."
        )
    topic = topic.strip()
    return SignalRequest(topic if topic.startswith('/') else f'/{topic}', names)


@dataclass(frozen=True)
class SignalTrack:
    """One field of one topic over time.

    Attributes:
        topic: the topic read.
        field: the field path (`linear.x`, `position`).
        stamps_ns: (N,) int64 message stamps, increasing (duplicates dropped, first kept).
        values: (N, L) float64; L = 1 for a scalar field.
        scalar: whether the field is a number (one value per row) or an array (a list).
    """

    topic: str
    field: str
    stamps_ns: np.ndarray
    values: np.ndarray
    scalar: bool

    @property
    def column(self) -> str:
        """The dataset column of this signal."""
        return signal_column(self.topic, self.field)

    @property
    def length(self) -> int:
        """Values per row (1 for a scalar)."""
        return int(self.values.shape[1])


@dataclass(frozen=True)
class AlignedSignal:
    """A signal at the frames' stamps.

    Attributes:
        values: (F, L) float64, NaN where unmatched.
        matched: (F,) bool, a message within the maximum gap.
    """

    values: np.ndarray
    matched: np.ndarray


def _field_names(msg: Any) -> list[str]:
    fields = getattr(msg, '__dataclass_fields__', None)
    return [name for name in fields if name != '__msgtype__'] if fields else []


def _field(msg: Any, request: SignalRequest, path: str) -> Any:
    """The value of dotted `path` in `msg`, or DataError naming the fields there are."""
    value = msg
    for part in path.split(FIELD_SEPARATOR):
        names = _field_names(value)
        if part not in names:
            msgtype = getattr(msg, '__msgtype__', type(msg).__name__)
            raise DataError(
                f'--with {request.topic}:{path}: {msgtype} has no field {part!r} there; its '
                f'fields are: {", ".join(names) or "none (not a message)"}.'
            )
        value = getattr(value, part)
    return value


def _numbers(value: Any, request: SignalRequest, path: str) -> np.ndarray:
    """A number or an array of numbers as a float64 vector, else DataError."""
    array = np.asarray(value)
    numeric = array.dtype.kind in 'biuf' and array.ndim <= 1 and array.size > 0
    if not numeric:
        raise DataError(
            f'--with {request.topic}:{path} is {type(value).__name__} '
            f'{array.dtype if array.size else "(empty)"}; choose a field that holds a number or '
            'a non-empty array of numbers.'
        )
    return array.astype(np.float64).reshape(-1)


def read_signal_tracks(bag: BagReader, requests: Sequence[SignalRequest]) -> list[SignalTrack]:
    """Read every requested field of a bag, one track per field, in request order.

    Raises:
        DataError: a missing topic, a topic without messages, an unknown or non-numeric field,
            or an array field whose length changes between messages.
    """
    for request in requests:
        if request.topic not in bag.topics:
            raise DataError(
                f'--with {request.topic} is not in bag {bag.path}; its topics are: '
                f'{bag.describe_topics()}.'
            )
        if bag.message_count(request.topic) == 0:
            raise DataError(f'--with {request.topic} has no messages in bag {bag.path}.')
    tracks = []
    for request in requests:
        messages = bag.messages(request.topic)  # header-stamp order, ties in log order
        stamps = np.array([m.stamp_ns for m in messages], dtype=np.int64)
        keep = np.concatenate(([True], np.diff(stamps) > 0))
        for path in request.fields:
            rows = [_numbers(_field(m.msg, request, path), request, path) for m in messages]
            lengths = sorted({row.size for row in rows})
            if len(lengths) > 1:
                raise DataError(
                    f'--with {request.topic}:{path} has arrays of lengths {lengths} in bag '
                    f'{bag.path}; a column needs one length per topic field.'
                )
            scalar = np.ndim(_field(messages[0].msg, request, path)) == 0
            values = np.stack(rows)[keep]
            tracks.append(SignalTrack(request.topic, path, stamps[keep], values, scalar))
    return tracks


def align_signal(
    track: SignalTrack, frame_stamps_ns: np.ndarray, max_gap_ms: float
) -> AlignedSignal:
    """The track's value at each frame stamp (the module docstring states the rule).

    Stamps are taken relative to the first message before becoming float64, so nanosecond
    stamps of 2020s epochs keep their precision.
    """
    frames = np.asarray(frame_stamps_ns, dtype=np.int64)
    origin = track.stamps_ns[0]
    x = (frames - origin).astype(np.float64)
    xp = (track.stamps_ns - origin).astype(np.float64)
    values = np.stack([np.interp(x, xp, track.values[:, k]) for k in range(track.length)], axis=1)
    after = np.searchsorted(track.stamps_ns, frames, side='left')
    before = np.clip(after - 1, 0, len(xp) - 1)
    after = np.clip(after, 0, len(xp) - 1)
    nearest = np.minimum(
        np.abs(frames - track.stamps_ns[before]), np.abs(track.stamps_ns[after] - frames)
    )
    matched = nearest <= max_gap_ms * NS_PER_MS
    values[~matched] = np.nan
    return AlignedSignal(values, matched)
