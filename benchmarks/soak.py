"""Soak test: pixio_node for N minutes at 30 Hz 640x480 with every output subscribed.

Run: `python benchmarks/soak.py [--artifact model.ts] [--minutes 10]` (after `make setup`, with
.venv/pixio_env.sh sourced). Without --artifact it exports a random-init `tiny` point-map artifact
at 240x320. The node runs as its own process (`pixio_ros.ros.node_process.NodeProcess`), as on a
robot; this process publishes the camera and subscribes to every output.

Every 10 s it samples the node's resident memory (the `memory rss mib` the node reports on
/diagnostics); per minute it prints the message age p50/p95 of the depth images received here
(now - header.stamp), the frames sent, processed, dropped and failed. At the end it prints the
RSS growth and the age p95 trend from the first minute to the last, and exits 1 when RSS grew
by more than 5 % or the age p95 by more than 20 % (a leak, or a queue that keeps growing).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from bench_rig import (
    HEIGHT,
    WIDTH,
    SpinningNode,
    age_ms,
    camera_info,
    random_init_artifact,
    rgb_images,
    stamp_now,
    use_private_dds,
)
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from pixio_ros.ros.node_process import NodeProcess

CAMERA_HZ = 30.0
RSS_PERIOD_S = 10.0
WINDOW_S = 60.0
MAX_RSS_GROWTH = 0.05
MAX_AGE_GROWTH = 0.20
DISTINCT_FRAMES = 8
START_TIMEOUT_S = 120.0
POLL_S = 0.05
P50, P95 = 50, 95
OUTPUT_TYPES = {
    'depth': Image,
    'depth/camera_info': CameraInfo,
    'depth/colored': Image,
    'points': PointCloud2,
    'features': PointCloud2,
    'embedding': PointCloud2,
}
RELIABLE = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class Window:
    """What one minute of the soak saw."""

    ages_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    sent: int = 0
    received: dict[str, int] = field(default_factory=dict)


class Soak(SpinningNode):
    """The camera publisher, the output subscribers and the per-minute bookkeeping."""

    def __init__(self, context: Context, namespace: str) -> None:
        super().__init__(context, 'pixio_soak')
        self.namespace = namespace
        self.image_pub = self.node.create_publisher(
            Image, f'{namespace}/image', qos_profile_sensor_data
        )
        self.info_pub = self.node.create_publisher(
            CameraInfo, f'{namespace}/camera_info', qos_profile_sensor_data
        )
        self.lock = threading.Lock()
        self.windows: list[Window] = []
        self.started = time.monotonic()
        self.latest_diagnostics: dict[str, str] = {}
        self.subscriptions = [
            self.node.create_subscription(
                msg_type, f'{namespace}/{topic}', self._on_output(topic), RELIABLE
            )
            for topic, msg_type in OUTPUT_TYPES.items()
        ]
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def window(self) -> Window:
        """The current minute's bookkeeping (call with the lock held)."""
        index = int((time.monotonic() - self.started) // WINDOW_S)
        while len(self.windows) <= index:
            self.windows.append(Window())
        return self.windows[index]

    def _on_output(self, topic: str) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            age = age_ms(msg.header) if topic == 'depth' else 0.0
            with self.lock:
                window = self.window()
                window.received[topic] = window.received.get(topic, 0) + 1
                if topic == 'depth':
                    window.ages_ms.append(age)

        return on_message

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f'{self.namespace}/pixio:'):
                with self.lock:
                    self.latest_diagnostics = {kv.key: kv.value for kv in status.values}

    def matched(self) -> bool:
        """Whether DDS matched the node's image subscription and every output we subscribe."""
        return self.image_pub.get_subscription_count() > 0 and all(
            sub.get_publisher_count() > 0 for sub in self.subscriptions
        )

    def publish_camera(self, stop: threading.Event) -> None:
        """30 Hz frames stamped with the wall clock, the CameraInfo beside each."""
        messages, info = rgb_images(DISTINCT_FRAMES), camera_info()
        period = 1.0 / CAMERA_HZ
        next_at = time.monotonic()
        index = 0
        while not stop.is_set():
            msg = messages[index % DISTINCT_FRAMES]
            stamp_now(msg.header, info.header)
            self.info_pub.publish(info)
            self.image_pub.publish(msg)
            with self.lock:
                self.window().sent += 1
            index += 1
            next_at += period
            stop.wait(max(0.0, next_at - time.monotonic()))

    def sample_rss(self, stop: threading.Event) -> None:
        """Every RSS_PERIOD_S, the node's resident memory from its latest /diagnostics."""
        while not stop.wait(RSS_PERIOD_S):
            with self.lock:
                rss = self.latest_diagnostics.get('memory rss mib')
                if rss is not None:
                    self.window().rss_mib.append(float(rss))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float('nan')


def growth(first: float, last: float) -> float:
    return (last - first) / first if first > 0 else float('nan')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--artifact', type=Path, help='artifact (.ts/.pt2); default: tiny')
    parser.add_argument('--minutes', type=float, default=10.0, help='soak duration (10)')
    parser.add_argument('--device', default='cpu', help='the node device parameter (cpu)')
    args = parser.parse_args()
    use_private_dds()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        artifact = args.artifact or random_init_artifact(directory)
        namespace = '/soak'
        node = NodeProcess(
            directory / 'node.log',
            parameters={
                'model_path': str(artifact),
                'device': args.device,
                'diagnostics_period': 1.0,
            },
            remappings={'__ns': namespace},
        )
        context = Context()
        rclpy.init(context=context)
        soak = Soak(context, namespace)
        stop = threading.Event()
        with node:
            soak.start_spinning()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not soak.matched():
                if not node.running or time.monotonic() > deadline:
                    print(f'pixio_node did not start:\n{node.tail()}', file=sys.stderr)
                    soak.close()
                    rclpy.shutdown(context=context)
                    return 2
                time.sleep(POLL_S)
            print(
                f'soaking {artifact.name} for {args.minutes:g} min at {CAMERA_HZ:g} Hz '
                f'{WIDTH}x{HEIGHT}, every output subscribed'
            )
            soak.started = time.monotonic()
            camera_stop = threading.Event()
            workers = [
                threading.Thread(target=soak.publish_camera, args=(camera_stop,), daemon=True),
                threading.Thread(target=soak.sample_rss, args=(stop,), daemon=True),
            ]
            for worker in workers:
                worker.start()
            end = soak.started + args.minutes * 60.0
            while time.monotonic() < end and node.running:
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            camera_stop.set()
            alive = node.running
            time.sleep(RSS_PERIOD_S / 10)  # let the last outputs and diagnostics arrive
            with soak.lock:
                diagnostics = dict(soak.latest_diagnostics)
                windows = soak.windows[: max(1, math.ceil(args.minutes * 60.0 / WINDOW_S))]
            stop.set()
            for worker in workers:
                worker.join()
        soak.close()
        rclpy.shutdown(context=context)

    print(
        f'{"minute":>6} {"peak rss MiB":>12} {"age p50":>8} {"age p95":>8} {"sent":>6} {"depth":>6}'
    )
    for index, window in enumerate(windows, start=1):
        rss = max(window.rss_mib, default=float('nan'))
        print(
            f'{index:>6} {rss:>12.1f} {percentile(window.ages_ms, P50):>8.1f} '
            f'{percentile(window.ages_ms, P95):>8.1f} {window.sent:>6} '
            f'{window.received.get("depth", 0):>6}'
        )
    print(
        f'node totals: received {diagnostics.get("frames received")}, processed '
        f'{diagnostics.get("frames processed")}, dropped {diagnostics.get("frames dropped")}, '
        f'failed {diagnostics.get("frames failed")}; errors '
        + (
            ', '.join(f'{k[7:]} {v}' for k, v in diagnostics.items() if k.startswith('errors '))
            or 'none'
        )
    )
    if not alive:
        print(f'FAIL: pixio_node exited during the soak:\n{node.tail()}')
        return 1
    first, last = windows[0], windows[-1]
    rss_first = max(first.rss_mib, default=float('nan'))
    rss_last = max(last.rss_mib, default=float('nan'))
    rss_growth = growth(rss_first, rss_last)
    age_growth = growth(percentile(first.ages_ms, P95), percentile(last.ages_ms, P95))
    print(
        f'RSS growth (first minute to last, peak per minute): {rss_first:.1f} -> '
        f'{rss_last:.1f} MiB ({rss_growth:+.1%})'
    )
    print(
        f'age p95 trend (first minute to last): {percentile(first.ages_ms, P95):.1f} -> '
        f'{percentile(last.ages_ms, P95):.1f} ms ({age_growth:+.1%})'
    )
    failed = []
    if not rss_growth <= MAX_RSS_GROWTH:
        failed.append(f'RSS grew {rss_growth:+.1%} (limit {MAX_RSS_GROWTH:.0%})')
    if not age_growth <= MAX_AGE_GROWTH:
        failed.append(f'age p95 grew {age_growth:+.1%} (limit {MAX_AGE_GROWTH:.0%})')
    if failed:
        print('FAIL: ' + '; '.join(failed))
        return 1
    print('PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
