"""Counters and rolling statistics of the node, and their /diagnostics message.

The callback thread counts received and dropped frames, the worker counts the rest; one lock
keeps the snapshot consistent. A node serving several cameras reports one status per camera
(`NodeStats`) and one for the model (`BatchStats`: batch sizes and forward times).
"""

from __future__ import annotations

import collections
import os
import resource
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from pixio_ros.units import MS_PER_S

__all__ = [
    'BatchSnapshot',
    'BatchStats',
    'NodeStats',
    'StatsSnapshot',
    'camera_status',
    'model_status',
    'statuses_array',
]

RATE_WINDOW_S = 5.0
LATENCY_SAMPLES = 200
TIMESTAMP_SAMPLES = 1000
MEDIAN = 50
P95 = 95
BYTES_PER_MIB = 1024.0 * 1024.0
KIB = 1024.0
MIN_RATE_EVENTS = 2  # a rate needs two events
FUTURE_STAMP_TOLERANCE_MS = 100.0
"""How far ahead of the node's clock a stamp may be before it counts as "in the future".

Clocks of machines synchronised by NTP or PTP differ by well under this; a stamp further ahead
comes from an unsynchronised clock (or sim time without /clock) and would make the message age
negative, so it is counted and kept out of the age percentiles instead.
"""


@dataclass
class StatsSnapshot:
    """A consistent copy of the counters; rates in Hz, times in ms (NaN without samples)."""

    received: int
    processed: int
    dropped: int
    failed: int
    idle: int
    unstamped: int
    future_stamped: int
    errors: dict[str, int]
    clouds_built: int
    feature_clouds_built: int
    input_rate_hz: float
    output_rate_hz: float
    inference_ms_p50: float
    inference_ms_p95: float
    age_ms_p50: float
    age_ms_p95: float


def _rate(stamps: collections.deque[float], now: float) -> float:
    recent = [stamp for stamp in stamps if now - stamp <= RATE_WINDOW_S]
    if len(recent) < MIN_RATE_EVENTS:
        return 0.0
    span = recent[-1] - recent[0]
    return (len(recent) - 1) / span if span > 0 else 0.0


def _percentile(values: collections.deque[float], q: float) -> float:
    if not values:
        return float('nan')
    return float(np.percentile(np.fromiter(values, dtype=np.float64), q))


@dataclass
class NodeStats:
    """Thread-safe frame counters and rolling inference time / message age samples."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    failed: int = 0
    idle: int = 0
    unstamped: int = 0
    future_stamped: int = 0
    clouds_built: int = 0
    feature_clouds_built: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _received_at: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=TIMESTAMP_SAMPLES)
    )
    _published_at: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=TIMESTAMP_SAMPLES)
    )
    _inference_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES)
    )
    _age_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES)
    )

    def frame_received(self, *, replaced: bool) -> None:
        """A frame arrived; `replaced` means it pushed out an unprocessed one."""
        with self._lock:
            self.received += 1
            self.dropped += int(replaced)
            self._received_at.append(time.monotonic())

    def frame_dropped(self) -> None:
        """A processed frame's result was replaced before it could be published."""
        with self._lock:
            self.dropped += 1

    def frame_failed(self, reason: str) -> None:
        """A frame was skipped because of `reason` (a short key such as 'decode')."""
        with self._lock:
            self.failed += 1
            self.errors[reason] += 1

    def input_rejected(self, reason: str) -> None:
        """An input other than a frame (a CameraInfo) was refused; counted under `reason`."""
        with self._lock:
            self.errors[reason] += 1

    def frame_idle(self) -> None:
        """A frame was skipped because no output had a subscriber."""
        with self._lock:
            self.idle += 1

    def cloud_built(self, *, features: bool = False) -> None:
        """A PointCloud2 was built (points, or the feature cloud)."""
        with self._lock:
            if features:
                self.feature_clouds_built += 1
            else:
                self.clouds_built += 1

    def frame_published(self, inference_ms: float, age_ms: float | None) -> str | None:
        """A frame's outputs went out; `age_ms` is now - header.stamp (None if unstamped).

        Only plausible ages enter the percentiles: an unstamped frame has none, and a stamp
        ahead of the node's clock would report a negative latency. Both are counted.

        Returns:
            A one-line warning for a stamp in the future (for the node's throttled log), else
            None.
        """
        with self._lock:
            self.processed += 1
            self._published_at.append(time.monotonic())
            self._inference_ms.append(inference_ms)
            if age_ms is None:
                self.unstamped += 1
            elif age_ms < -FUTURE_STAMP_TOLERANCE_MS:
                self.future_stamped += 1
                return (
                    f"frame stamped {-age_ms / MS_PER_S:.3f} s ahead of this node's clock: "
                    'published, but left out of the message age; synchronise the clocks '
                    '(NTP/PTP), or with use_sim_time check that /clock is published'
                )
            else:
                self._age_ms.append(age_ms)
        return None

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of everything, with rates and percentiles computed."""
        now = time.monotonic()
        with self._lock:
            return StatsSnapshot(
                received=self.received,
                processed=self.processed,
                dropped=self.dropped,
                failed=self.failed,
                idle=self.idle,
                unstamped=self.unstamped,
                future_stamped=self.future_stamped,
                errors=dict(self.errors),
                clouds_built=self.clouds_built,
                feature_clouds_built=self.feature_clouds_built,
                input_rate_hz=_rate(self._received_at, now),
                output_rate_hz=_rate(self._published_at, now),
                inference_ms_p50=_percentile(self._inference_ms, MEDIAN),
                inference_ms_p95=_percentile(self._inference_ms, P95),
                age_ms_p50=_percentile(self._age_ms, MEDIAN),
                age_ms_p95=_percentile(self._age_ms, P95),
            )


@dataclass
class BatchSnapshot:
    """The model's batch statistics: how many forwards ran with each batch size, and their time.

    Attributes:
        sizes: batch size -> number of forwards with that many frames.
        batch_ms_p50: median wall time of a batch (ms), NaN without samples.
        batch_ms_p95: 95th percentile of that time (ms).
    """

    sizes: dict[int, int]
    batch_ms_p50: float
    batch_ms_p95: float

    @property
    def batches(self) -> int:
        """Forwards run so far."""
        return sum(self.sizes.values())


@dataclass
class BatchStats:
    """Thread-safe histogram of batch sizes and rolling batch times (the model's status)."""

    _sizes: collections.Counter[int] = field(default_factory=collections.Counter)
    _batch_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def batch_ran(self, size: int, batch_ms: float) -> None:
        """A forward pass over `size` frames took `batch_ms` milliseconds."""
        with self._lock:
            self._sizes[size] += 1
            self._batch_ms.append(batch_ms)

    def snapshot(self) -> BatchSnapshot:
        """A consistent copy of the histogram and the time percentiles."""
        with self._lock:
            return BatchSnapshot(
                sizes=dict(sorted(self._sizes.items())),
                batch_ms_p50=_percentile(self._batch_ms, MEDIAN),
                batch_ms_p95=_percentile(self._batch_ms, P95),
            )


def process_memory_mib() -> float:
    """Resident memory of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open('/proc/self/statm', encoding='ascii') as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf('SC_PAGE_SIZE') / BYTES_PER_MIB
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB


def statuses_array(stamp: Time, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    """A DiagnosticArray stamped `stamp` holding `statuses`."""
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp
    return array


def camera_status(
    name: str,
    hardware_id: str,
    stats: StatsSnapshot,
    *,
    failed_since_last: int,
    device_memory_bytes: int | None,
    extra: dict[str, str],
    problems: tuple[str, ...] = (),
) -> DiagnosticStatus:
    """The DiagnosticStatus of one camera's frames (the whole node when it has one camera).

    WARN while a `problem` lasts (e.g. the camera sends an invalid CameraInfo) and when frames
    failed since the last report.
    """
    if problems:
        level = DiagnosticStatus.WARN
        message = '; '.join(problems)
    elif failed_since_last:
        level = DiagnosticStatus.WARN
        message = f'{failed_since_last} frame(s) failed since the last report'
    elif stats.received == 0:
        level = DiagnosticStatus.OK
        message = 'waiting for images'
    else:
        level = DiagnosticStatus.OK
        message = 'running'
    values = {
        **extra,
        'input rate hz': f'{stats.input_rate_hz:.2f}',
        'output rate hz': f'{stats.output_rate_hz:.2f}',
        'inference ms p50': f'{stats.inference_ms_p50:.2f}',
        'inference ms p95': f'{stats.inference_ms_p95:.2f}',
        'message age ms p50': f'{stats.age_ms_p50:.2f}',
        'message age ms p95': f'{stats.age_ms_p95:.2f}',
        'frames received': str(stats.received),
        'frames processed': str(stats.processed),
        'frames dropped': str(stats.dropped),
        'frames failed': str(stats.failed),
        'frames without subscribers': str(stats.idle),
        'frames without stamp': str(stats.unstamped),
        'frames stamped in the future': str(stats.future_stamped),
        'point clouds built': str(stats.clouds_built),
        'feature clouds built': str(stats.feature_clouds_built),
        'memory rss mib': f'{process_memory_mib():.1f}',
    }
    if device_memory_bytes is not None:
        values['device memory mib'] = f'{device_memory_bytes / BYTES_PER_MIB:.1f}'
    for reason, count in sorted(stats.errors.items()):
        values[f'errors {reason}'] = str(count)
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values.items()],
    )


def model_status(
    name: str,
    hardware_id: str,
    batches: BatchSnapshot,
    *,
    device_memory_bytes: int | None,
    extra: dict[str, str],
    problems: tuple[str, ...] = (),
) -> DiagnosticStatus:
    """The model's DiagnosticStatus in a several-camera node: batch size histogram, batch time.

    `batches of N` counts the forward passes that took N frames together; WARN while a
    `problem` lasts (e.g. the artifact refused batches and runs one forward per frame).
    """
    if problems:
        level, message = DiagnosticStatus.WARN, '; '.join(problems)
    elif batches.batches == 0:
        level, message = DiagnosticStatus.OK, 'waiting for images'
    else:
        level, message = DiagnosticStatus.OK, 'running'
    values = {
        **extra,
        'batches': str(batches.batches),
        **{f'batches of {size}': str(count) for size, count in batches.sizes.items()},
        'batch ms p50': f'{batches.batch_ms_p50:.2f}',
        'batch ms p95': f'{batches.batch_ms_p95:.2f}',
        'memory rss mib': f'{process_memory_mib():.1f}',
    }
    if device_memory_bytes is not None:
        values['device memory mib'] = f'{device_memory_bytes / BYTES_PER_MIB:.1f}'
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values.items()],
    )
