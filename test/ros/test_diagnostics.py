"""NodeStats and the /diagnostics message, without DDS (plain message objects)."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus

from pixio_ros.ros.diagnostics import NodeStats, camera_status, statuses_array


def values_of(array) -> dict[str, str]:
    return {kv.key: kv.value for kv in array.status[0].values}


def report(stats: NodeStats, **kwargs):
    options = {'failed_since_last': 0, 'device_memory_bytes': None, 'extra': {}}
    options.update(kwargs)
    status = camera_status('pixio', 'cpu', stats.snapshot(), **options)
    return statuses_array(Time(sec=3), [status])


def test_counters_and_percentiles():
    stats = NodeStats()
    for index in range(4):
        stats.frame_received(replaced=index == 3)
    for ms in (10.0, 20.0, 30.0):
        stats.frame_published(ms, age_ms=ms * 2)
    stats.frame_failed('decode')
    stats.input_rejected('camera_info')
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.dropped, snapshot.processed) == (4, 1, 3)
    assert snapshot.failed == 1  # a refused CameraInfo is not a failed frame
    assert snapshot.errors == {'decode': 1, 'camera_info': 1}
    assert snapshot.inference_ms_p50 == 20.0
    assert snapshot.age_ms_p50 == 40.0


def test_no_samples_are_nan_not_zero():
    snapshot = NodeStats().snapshot()
    assert math.isnan(snapshot.inference_ms_p95) and math.isnan(snapshot.age_ms_p50)
    assert snapshot.input_rate_hz == 0.0


def test_levels_and_values():
    stats = NodeStats()
    idle = report(stats)
    assert idle.status[0].level == DiagnosticStatus.OK
    assert idle.status[0].message == 'waiting for images'
    stats.frame_received(replaced=False)
    stats.frame_failed('inference')
    failed = report(stats, failed_since_last=1)
    assert failed.status[0].level == DiagnosticStatus.WARN
    assert values_of(failed)['errors inference'] == '1'
    problem = report(
        stats,
        problems=('invalid CameraInfo: fx=0',),
        extra={'points source': 'head'},
        device_memory_bytes=2 * 1024 * 1024,
    )
    assert problem.status[0].level == DiagnosticStatus.WARN
    assert 'invalid CameraInfo' in problem.status[0].message
    values = values_of(problem)
    assert values['points source'] == 'head'
    assert values['device memory mib'] == '2.0'
    assert problem.header.stamp.sec == 3


def test_unstamped_and_future_stamped_frames_are_counted_not_sampled():
    """Issue 12: a stamp ahead of the node's clock made the message age negative."""
    stats = NodeStats()
    assert stats.frame_published(10.0, age_ms=None) is None
    assert stats.frame_published(10.0, age_ms=-50.0) is None  # clock skew within tolerance
    warning = stats.frame_published(10.0, age_ms=-3_600_000.0)
    assert warning is not None and '3600.000 s ahead' in warning and '\n' not in warning
    snapshot = stats.snapshot()
    assert (snapshot.processed, snapshot.unstamped, snapshot.future_stamped) == (3, 1, 1)
    assert snapshot.age_ms_p50 == -50.0  # only the plausible age was sampled
    values = values_of(report(stats))
    assert values['frames without stamp'] == '1'
    assert values['frames stamped in the future'] == '1'
