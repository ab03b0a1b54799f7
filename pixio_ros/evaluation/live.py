"""Summarise a live run (the demo): what was played into the node and what came back.

Works on raw CDR messages with their wall-clock times, so it needs rosbags but not rclpy. Message
age is measured from publishing an image to receiving the depth with the same header stamp: the
played bag keeps its original stamps, so the node's own `now - stamp` would measure the bag's age.
"""

from __future__ import annotations

import json
from typing import Any, Final

import numpy as np

from pixio_ros.data.messages import typestore
from pixio_ros.model.artifact_format import ArtifactMetadata, random_init_parts
from pixio_ros.units import NS_PER_MS, stamp_ns

DIAGNOSTICS_TOPIC: Final = '/diagnostics'
# diagnostics key of pixio_node -> summary name; frame counters are integers
DIAGNOSTIC_KEYS: Final = {
    'inference ms p50': 'inference_ms_p50',
    'inference ms p95': 'inference_ms_p95',
    'frames dropped': 'dropped',
    'frames failed': 'failed',
    'frames received': 'node_received',
}

TimedMessage = tuple[str, str, int, bytes]  # topic, type, wall time ns, CDR bytes


def _deserialize(data: bytes, msgtype: str) -> Any:
    return typestore().deserialize_cdr(data, msgtype)


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(float(np.percentile(values, 50)), 1), round(float(np.percentile(values, 95)), 1)


def summarise_live_run(
    played: list[TimedMessage],
    received: list[TimedMessage],
    *,
    image_topic: str,
    depth_topic: str,
    model_info_topic: str,
) -> dict[str, Any]:
    """Frames in/out, drops and inference time (node diagnostics), message age, topics seen.

    Args:
        played: messages the player published, with their publish wall times.
        received: messages the recorder got from the node, with their receive wall times.
        image_topic: the played image topic (frames in).
        depth_topic: the node's depth output (frames out).
        model_info_topic: the node's latched metadata (random weights or not).
    """
    published = {
        stamp_ns(_deserialize(data, msgtype).header): wall
        for topic, msgtype, wall, data in played
        if topic == image_topic
    }
    depth = [
        (wall, _deserialize(data, msgtype))
        for topic, msgtype, wall, data in received
        if topic == depth_topic
    ]
    ages = [
        (wall - published[stamp_ns(msg.header)]) / NS_PER_MS
        for wall, msg in depth
        if stamp_ns(msg.header) in published
    ]
    topics: dict[str, int] = {}
    for topic, *_ in received:
        topics[topic] = topics.get(topic, 0) + 1
    stats: dict[str, Any] = {
        'frames_in': len(published),
        'frames_out': len(depth),
        'topics': dict(sorted(topics.items())),
    }
    stats['age_ms_p50'], stats['age_ms_p95'] = _percentiles(ages)
    diagnostics = [
        _deserialize(data, msgtype)
        for topic, msgtype, _, data in received
        if topic == DIAGNOSTICS_TOPIC
    ]
    if diagnostics and diagnostics[-1].status:
        values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
        for key, name in DIAGNOSTIC_KEYS.items():
            if key in values:
                number = float(values[key])
                stats[name] = number if name.startswith('inference') else int(number)
    info = [data for topic, _, _, data in received if topic == model_info_topic]
    if info:
        metadata = ArtifactMetadata.from_dict(
            json.loads(_deserialize(info[-1], 'std_msgs/msg/String').data),
            source=f'{model_info_topic} message',
        )
        stats['random_weights'] = bool(random_init_parts(metadata))
    return stats


def summary_lines(stats: dict[str, Any]) -> list[str]:
    """The demo's printed summary."""
    lines = [
        f'frames in: {stats["frames_in"]}   frames out (depth): {stats["frames_out"]}   '
        f'dropped by the node: {stats.get("dropped", "n/a")}',
        f'inference ms p50/p95 (node): {stats.get("inference_ms_p50", "n/a")} / '
        f'{stats.get("inference_ms_p95", "n/a")}',
        f'message age ms p50/p95 (image published -> depth received): '
        f'{stats.get("age_ms_p50", "n/a")} / {stats.get("age_ms_p95", "n/a")}',
        'topics seen: ' + ', '.join(f'{t} x{n}' for t, n in stats['topics'].items()),
    ]
    if 'eval' in stats:
        report = stats['eval']
        lines.append(
            f'eval of the recording ({report["metrics_kind"]}, {report["evaluated"]} '
            f'frames): AbsRel {report["abs_rel"]:.3f}, delta1 {report["delta1"]:.3f}'
        )
    return lines
