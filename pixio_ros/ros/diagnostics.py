"""Counters and rolling statistics of the node, and their /diagnostics message.

The callback thread counts received and dropped frames, the worker counts the rest; one lock
keeps the snapshot consistent.
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

__all__ = ['NodeStats', 'StatsSnapshot', 'diagnostic_array']

RATE_WINDOW_S = 5.0
LATENCY_SAMPLES = 200
TIMESTAMP_SAMPLES = 1000
MEDIAN = 50
P95 = 95
BYTES_PER_MIB = 1024.0 * 1024.0
KIB = 1024.0
MIN_RATE_EVENTS = 2  # a rate needs two events


@dataclass
class StatsSnapshot:
    """A consistent copy of the counters; rates in Hz, times in ms (NaN without samples)."""

    received: int
    processed: int
    dropped: int
    failed: int
    idle: int
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

    def frame_published(self, inference_ms: float, age_ms: float | None) -> None:
        """A frame's outputs went out; `age_ms` is now - header.stamp (None if unstamped)."""
        with self._lock:
            self.processed += 1
            self._published_at.append(time.monotonic())
            self._inference_ms.append(inference_ms)
            if age_ms is not None:
                self._age_ms.append(age_ms)

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


def process_memory_mib() -> float:
    """Resident memory of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open('/proc/self/statm', encoding='ascii') as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf('SC_PAGE_SIZE') / BYTES_PER_MIB
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB


def diagnostic_array(
    stamp: Time,
    name: str,
    hardware_id: str,
    stats: StatsSnapshot,
    *,
    failed_since_last: int,
    device_memory_bytes: int | None,
    extra: dict[str, str],
    problems: tuple[str, ...] = (),
) -> DiagnosticArray:
    """One DiagnosticStatus summarising the node.

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
        'point clouds built': str(stats.clouds_built),
        'feature clouds built': str(stats.feature_clouds_built),
        'memory rss mib': f'{process_memory_mib():.1f}',
    }
    if device_memory_bytes is not None:
        values['device memory mib'] = f'{device_memory_bytes / BYTES_PER_MIB:.1f}'
    for reason, count in sorted(stats.errors.items()):
        values[f'errors {reason}'] = str(count)
    status = DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
