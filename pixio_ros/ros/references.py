"""A camera's sparse range references and the scale alignment of its frames.

The sparse_depth / sparse_points callbacks store each message with its stamp; the publishing
thread takes, per frame, the reference nearest in stamp and aligns the frame's depth with it
(`pixio_ros.runtime.alignment` holds the math, shared with `pixio-ros eval --align-to`). A
frame that cannot be fitted keeps the last good scale; the stream counts and logs it.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, TypeAlias

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from pixio_ros.data.stamps import nearest_index
from pixio_ros.runtime.alignment import AlignmentState, AlignOptions, ScaleTracker
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.sparse_reference import align_frame
from pixio_ros.units import stamp_ns

__all__ = ['REFERENCE_BUFFER', 'Alignment', 'ReferenceBuffer']

Reference: TypeAlias = Image | PointCloud2
# References kept per camera: enough to span a model slower than the range sensor.
REFERENCE_BUFFER = 32


class ReferenceBuffer:
    """The last REFERENCE_BUFFER references by stamp.

    Thread-safe: the callbacks write, the publishing thread reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: collections.deque[tuple[int, Reference]] = collections.deque(
            maxlen=REFERENCE_BUFFER
        )

    def put(self, msg: Reference) -> None:
        """Store a reference (a subscription callback; never raises)."""
        with self._lock:
            self._items.append((stamp_ns(msg.header), msg))

    def nearest(self, stamp: int) -> tuple[int, Reference] | None:
        """(stamp - reference stamp, reference) of the reference nearest `stamp`, or None."""
        with self._lock:
            items = sorted(self._items, key=lambda item: item[0])
        if not items:
            return None
        reference_stamp, msg = items[nearest_index([item[0] for item in items], stamp)]
        return stamp - reference_stamp, msg

    def clear(self) -> None:
        """Forget every reference."""
        with self._lock:
            self._items.clear()


class Alignment:
    """One camera's alignment: its references, the scale tracker and the last state."""

    def __init__(self) -> None:
        self.references = ReferenceBuffer()
        self.state: AlignmentState | None = None
        self._tracker = ScaleTracker()
        self._mode = 'off'

    def align(
        self, depth: np.ndarray, header: Any, camera: PinholeCamera | None, options: AlignOptions
    ) -> AlignmentState:
        """The state to align this frame's depth with; keeps the last good scale on a problem."""
        if options.mode != self._mode:  # another mode: the old estimate does not apply
            self._tracker.reset()
            self._mode = options.mode
        found = self.references.nearest(stamp_ns(header))
        self.state = align_frame(self._tracker, depth, found, camera, options)
        return self.state
