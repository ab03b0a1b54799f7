"""A camera's sparse range references and the scale alignment of its frames.

The sparse_depth / sparse_points callbacks store each message with its stamp; the publishing
thread takes, per frame, the reference nearest in stamp and aligns the frame's depth with it
(`pixio_ros.runtime.alignment` holds the math). A frame that cannot be fitted (no reference, a
stale one, too few pairs, a bad size or extrinsic, a poor residual) keeps the last good scale;
it is counted (`errors alignment`), logged (throttled) and shown in diagnostics.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, TypeAlias

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from pixio_ros.data.stamps import nearest_index
from pixio_ros.errors import PixioRosError
from pixio_ros.ros.convert import cloud_xyz, reference_depth
from pixio_ros.runtime.alignment import (
    AlignmentError,
    AlignmentState,
    AlignOptions,
    ScaleTracker,
    fit_alignment,
    pairs_from_depth_image,
    pairs_from_points,
    stale_problem,
)
from pixio_ros.runtime.camera import PinholeCamera

__all__ = ['REFERENCE_BUFFER', 'Alignment', 'ReferenceBuffer', 'stamp_ns']

Reference: TypeAlias = Image | PointCloud2
# References kept per camera: enough to span a model slower than the range sensor.
REFERENCE_BUFFER = 32
NS_PER_S = 1_000_000_000


def stamp_ns(header: Any) -> int:
    """A header's stamp in integer nanoseconds."""
    stamp = header.stamp
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


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
        """Store a reference (callbacks; never raises)."""
        with self._lock:
            self._items.append((stamp_ns(msg.header), msg))

    def nearest(self, stamp: int) -> tuple[int, Reference] | None:
        """(frame stamp - reference stamp, reference) of the reference nearest `stamp`."""
        with self._lock:
            items = sorted(self._items, key=lambda item: item[0])
        if not items:
            return None
        index = nearest_index([item[0] for item in items], stamp)
        reference_stamp, msg = items[index]
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
        self,
        depth: np.ndarray,
        header: Any,
        camera: PinholeCamera | None,
        options: AlignOptions,
    ) -> AlignmentState:
        """The state to align this frame's depth with; keeps the last good scale on a problem."""
        if options.mode != self._mode:  # another mode: the old estimate does not apply
            self._tracker.reset()
            self._mode = options.mode
        found = self.references.nearest(stamp_ns(header))
        problem = stale_problem(None if found is None else found[0], options)
        if problem is not None or found is None:
            state = self._tracker.kept(problem or 'no reference')
        else:
            try:
                state = self._fit(depth, found[1], camera, options)
            except PixioRosError as err:  # a bad reference: counted by the caller, no traceback
                state = self._tracker.kept(f'reference refused: {err}')
        self.state = state
        return state

    def _fit(
        self,
        depth: np.ndarray,
        msg: Reference,
        camera: PinholeCamera | None,
        options: AlignOptions,
    ) -> AlignmentState:
        if isinstance(msg, Image):
            pairs = pairs_from_depth_image(depth, reference_depth(msg))
        else:
            if camera is None:
                raise AlignmentError(
                    'sparse_points needs the CameraInfo to project the cloud; publish '
                    'camera_info or use sparse_depth'
                )
            pairs = pairs_from_points(depth, cloud_xyz(msg), camera, options.extrinsic)
        if pairs.count == 0:
            return self._tracker.kept('no valid pairs between the depth and the reference')
        return self._tracker.update(fit_alignment(pairs, options.mode), options)
