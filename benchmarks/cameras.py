"""Several cameras: one batched node vs one node per camera, side by side in one run.

Run: `python benchmarks/cameras.py [--sizes tiny,vitb16] [--seconds 30] [--rounds 1]
[--input 240x320]` (after `make setup`, with .venv/pixio_env.sh sourced). For each model size it
exports a random-init point-map artifact (speed does not depend on the weights), then runs, in
alternating rounds, (a) one `pixio_node` with `cameras: [cam0, cam1, cam2]` and (b) three
`pixio_node` processes, one per camera in namespace /camN. Both read the same topics
(`/camN/image`, `/camN/camera_info`) and publish `/camN/depth`; this process is the three
640x480 rgb8 cameras at 15 Hz (stamped with the ROS clock) and the depth subscriber. Reported per
configuration: aggregate processed frames/s and the nodes' summed resident memory (peak of
samples), medians over the rounds; message age p50/p95 per camera (arrival - header stamp) over
every round; then the ratios batched / separate.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from bench_rig import (
    HEIGHT,
    RELIABLE,
    WIDTH,
    SpinningNode,
    age_ms,
    camera_info,
    random_init_artifact,
    rgb_images,
    rss_mib,
    stamp_now,
    use_private_dds,
)
from rclpy.context import Context
from sensor_msgs.msg import CameraInfo, Image

from pixio_ros.commands.args import parse_hxw
from pixio_ros.ros.node_process import NodeProcess

CAMERAS = ('cam0', 'cam1', 'cam2')
CAMERA_HZ = 15.0
READY_TIMEOUT_S = 600.0
RSS_SAMPLE_S = 0.5


class Rig(SpinningNode):
    """The three cameras (publishing from a thread) and the depth subscriber."""

    def __init__(self, context: Context) -> None:
        super().__init__(context, 'pixio_cameras_bench')
        self.ages: dict[str, list[float]] = {name: [] for name in CAMERAS}
        self.recording = False
        self._lock = threading.Lock()
        self._publishers = {}
        self._frames = {}
        for name in CAMERAS:
            self._publishers[name] = (
                self.node.create_publisher(Image, f'/{name}/image', RELIABLE),
                self.node.create_publisher(CameraInfo, f'/{name}/camera_info', RELIABLE),
            )
            frame_id = f'{name}_optical'
            self._frames[name] = (rgb_images(1, frame_id)[0], camera_info(frame_id))
            self.node.create_subscription(
                Image, f'/{name}/depth', lambda msg, n=name: self._on_depth(n, msg), RELIABLE
            )
        self._camera_stop = threading.Event()
        self._camera = threading.Thread(target=self._publish, daemon=True)
        self._camera.start()
        self.start_spinning()

    def _publish(self) -> None:
        next_at = time.monotonic()
        while not self._camera_stop.is_set():
            next_at += 1.0 / CAMERA_HZ
            for name in CAMERAS:
                image_pub, info_pub = self._publishers[name]
                frame, info = self._frames[name]
                stamp_now(frame.header, info.header)
                info_pub.publish(info)
                image_pub.publish(frame)
            self._camera_stop.wait(max(0.0, next_at - time.monotonic()))

    def _on_depth(self, name: str, msg: Image) -> None:
        age = age_ms(msg.header)
        with self._lock:
            if self.recording or not self.ages[name]:
                self.ages[name].append(age)

    def wait_ready(self, processes: list[NodeProcess]) -> None:
        """Until every camera's depth arrived once (the model loaded and warm)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while any(not ages for ages in self.ages.values()):
            if not all(process.running for process in processes):
                raise RuntimeError('a node exited:\n' + '\n'.join(p.tail() for p in processes))
            if time.monotonic() > deadline:
                raise RuntimeError(f'no depth from every camera after {READY_TIMEOUT_S} s')
            time.sleep(0.1)

    def measure(self, seconds: float, processes: list[NodeProcess]) -> Round:
        """Depth arrivals and message ages for `seconds`, with the nodes' peak memory."""
        with self._lock:
            for ages in self.ages.values():
                ages.clear()
            self.recording = True
        peak_rss = 0.0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pids = [process.pid for process in processes if process.pid is not None]
            peak_rss = max(peak_rss, sum(rss_mib(pid) for pid in pids))
            time.sleep(RSS_SAMPLE_S)
        with self._lock:
            self.recording = False
            ages = {name: list(values) for name, values in self.ages.items()}
            for values in self.ages.values():
                values.clear()
        return Round(ages=ages, seconds=seconds, rss_mib=peak_rss)

    def close(self) -> None:
        """Stop the cameras, then spinning."""
        self._camera_stop.set()
        self._camera.join()
        super().close()


@dataclass
class Round:
    """One configuration's measurement."""

    ages: dict[str, list[float]]
    seconds: float
    rss_mib: float

    @property
    def fps(self) -> float:
        """Depth images of all cameras per second."""
        return sum(len(ages) for ages in self.ages.values()) / self.seconds


def run_configuration(
    rig: Rig, artifact: Path, batched: bool, seconds: float, log_dir: Path
) -> Round:
    common = {'model_path': str(artifact), 'device': 'cpu', 'warmup_runs': 1}
    common.update({'publish.depth_colored': False, 'input_qos.reliability': 'reliable'})
    if batched:
        processes = [
            NodeProcess(log_dir / 'batched.log', parameters={**common, 'cameras': list(CAMERAS)})
        ]
    else:
        processes = [
            NodeProcess(log_dir / f'{name}.log', parameters=common, remappings={'__ns': f'/{name}'})
            for name in CAMERAS
        ]
    for process in processes:
        process.start()
    try:
        rig.wait_ready(processes)
        return rig.measure(seconds, processes)
    finally:
        for process in processes:
            process.stop()


def report(size: str, batched: list[Round], separate: list[Round]) -> None:
    """Median frames/s and memory over the rounds; ages pooled over every round."""
    cameras = f'three {WIDTH}x{HEIGHT} cameras at {CAMERA_HZ:.0f} Hz'
    print(f'\n{size}: {cameras}, {len(batched)} round(s)')
    print('| measure | one batched node | three nodes | ratio |')
    print('|---|---|---|---|')
    rows = [
        ('aggregate frames/s (median)', [r.fps for r in batched], [r.fps for r in separate]),
        ('resident MiB (median)', [r.rss_mib for r in batched], [r.rss_mib for r in separate]),
    ]
    for label, a_values, b_values in rows:
        a, b = float(np.median(a_values)), float(np.median(b_values))
        print(f'| {label} | {a:.2f} | {b:.2f} | {a / b if b else float("nan"):.2f} |')
    for name in CAMERAS:
        for q in (50, 95):
            a, b = pooled_age(batched, name, q), pooled_age(separate, name, q)
            print(f'| {name} age p{q} ms | {a:.0f} | {b:.0f} | {a / b:.2f} |')


def pooled_age(rounds: list[Round], name: str, q: float) -> float:
    """Percentile `q` of camera `name`'s message age (ms) over every round."""
    values = [age for r in rounds for age in r.ages[name]]
    return float(np.percentile(values, q)) if values else float('nan')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='tiny,vitb16', help='model sizes, comma separated')
    parser.add_argument('--input', default='240x320', help='artifact input size HxW')
    parser.add_argument('--seconds', type=float, default=30.0, help='measurement per round')
    parser.add_argument('--rounds', type=int, default=1, help='alternating rounds per size')
    args = parser.parse_args()
    use_private_dds()
    height, width = parse_hxw(args.input)
    context = Context()
    rclpy.init(context=context)
    rig = Rig(context)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            for size in args.sizes.split(','):
                artifact = random_init_artifact(directory, size, 'points', (height, width))
                batched: list[Round] = []
                separate: list[Round] = []
                for _ in range(args.rounds):
                    batched.append(run_configuration(rig, artifact, True, args.seconds, directory))
                    separate.append(
                        run_configuration(rig, artifact, False, args.seconds, directory)
                    )
                report(size, batched, separate)
    finally:
        rig.close()
        rclpy.shutdown(context=context)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
