"""Several cameras: one batched node vs one node per camera, side by side in one run.

Run: `python benchmarks/cameras.py [--sizes tiny,vitb16] [--seconds 30] [--input 240x320]`
(after `make setup`, with .venv/pixio_env.sh sourced). For each model size it exports a
random-init point-map artifact (speed does not depend on the weights), then runs, in alternating
rounds, (a) one `pixio_node` with `cameras: [cam0, cam1, cam2]` and (b) three `pixio_node`
processes, one per camera in namespace /camN. Both read the same topics (`/camN/image`,
`/camN/camera_info`) and publish `/camN/depth`; this process is the three 640x480 rgb8 cameras
at 15 Hz (stamped with the ROS clock) and the depth subscriber. Reported per configuration:
aggregate processed frames/s, message age p50/p95 per camera (arrival - header stamp), the
nodes' summed resident memory (peak of samples); then the ratios batched / separate.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Loopback-only DDS in a random domain, set before rclpy is imported (as the tests do).
os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
for variable in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
    os.environ[variable] = str(REPO / 'config' / 'fastdds_shm_localhost.xml')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from pixio_ros.ros.node_process import NodeProcess  # noqa: E402

CAMERAS = ('cam0', 'cam1', 'cam2')
CAMERA_HZ = 15.0
HEIGHT, WIDTH = 480, 640
NS_PER_S = 1e9
MS_PER_S = 1000.0
READY_TIMEOUT_S = 600.0
SPIN_TIMEOUT_S = 0.05
RSS_SAMPLE_S = 0.5
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def export_artifact_for(size: str, input_size: tuple[int, int], directory: Path) -> Path:
    """A random-init point-map artifact of `size` at `input_size`."""
    import torch

    from pixio_ros.model import build_network, export_artifact
    from pixio_ros.model.artifact_format import RandomInitWarning

    path = directory / f'{size}_points_{input_size[0]}x{input_size[1]}.ts'
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        export_artifact(
            build_network(size, 'points'),
            path,
            input_size=input_size,
            fmt='torchscript',
            encoder_pretrained=False,
            head_trained=False,
        )
    return path


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` in MiB (0 once it is gone)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class Rig:
    """The three cameras (publishing from a thread) and the depth subscriber."""

    def __init__(self, context: Context) -> None:
        self.node = rclpy.create_node('pixio_cameras_bench', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.ages: dict[str, list[float]] = {name: [] for name in CAMERAS}
        self.recording = False
        self._lock = threading.Lock()
        self._publishers = {}
        rng = np.random.default_rng(0)
        self._frames = {}
        for name in CAMERAS:
            self._publishers[name] = (
                self.node.create_publisher(Image, f'/{name}/image', RELIABLE),
                self.node.create_publisher(CameraInfo, f'/{name}/camera_info', RELIABLE),
            )
            frame = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
            frame.data = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8).tobytes()
            frame.header.frame_id = f'{name}_optical'
            info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob')
            info.d = [0.0] * 5
            info.k = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
            info.p = [500.0, 0.0, 319.5, 0.0, 0.0, 500.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
            info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            info.header.frame_id = frame.header.frame_id
            self._frames[name] = (frame, info)
            self.node.create_subscription(
                Image, f'/{name}/depth', lambda msg, n=name: self._on_depth(n, msg), RELIABLE
            )
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._spin, daemon=True),
            threading.Thread(target=self._publish, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)

    def _publish(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += 1.0 / CAMERA_HZ
            stamp = self.node.get_clock().now().to_msg()
            for name in CAMERAS:
                image_pub, info_pub = self._publishers[name]
                frame, info = self._frames[name]
                frame.header.stamp = stamp
                info.header.stamp = stamp
                info_pub.publish(info)
                image_pub.publish(frame)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _on_depth(self, name: str, msg: Image) -> None:
        stamp = msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
        age_ms = (self.node.get_clock().now().nanoseconds - stamp) / 1e6
        with self._lock:
            if self.recording or not self.ages[name]:
                self.ages[name].append(age_ms)

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
        """Stop the camera and spinning threads and destroy the node."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.executor.shutdown()
        self.node.destroy_node()


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

    def age(self, name: str, q: float) -> float:
        """Percentile `q` of camera `name`'s message age (ms)."""
        values = self.ages[name]
        return float(np.percentile(values, q)) if values else float('nan')


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


def report(size: str, batched: Round, separate: Round) -> None:
    print(f'\n{size}: three {WIDTH}x{HEIGHT} cameras at {CAMERA_HZ:.0f} Hz')
    print('| measure | one batched node | three nodes | ratio |')
    print('|---|---|---|---|')
    print(
        f'| aggregate frames/s | {batched.fps:.2f} | {separate.fps:.2f} | '
        f'{batched.fps / separate.fps if separate.fps else float("nan"):.2f} |'
    )
    print(
        f'| resident memory MiB | {batched.rss_mib:.0f} | {separate.rss_mib:.0f} | '
        f'{batched.rss_mib / separate.rss_mib if separate.rss_mib else float("nan"):.2f} |'
    )
    for name in CAMERAS:
        for q in (50, 95):
            a, b = batched.age(name, q), separate.age(name, q)
            print(f'| {name} age p{q} ms | {a:.0f} | {b:.0f} | {a / b:.2f} |')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='tiny,vitb16', help='model sizes, comma separated')
    parser.add_argument('--input', default='240x320', help='artifact input size HxW')
    parser.add_argument('--seconds', type=float, default=30.0, help='measurement per round')
    args = parser.parse_args()
    height, width = (int(v) for v in args.input.lower().split('x'))
    context = Context()
    rclpy.init(context=context)
    rig = Rig(context)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            for size in args.sizes.split(','):
                artifact = export_artifact_for(size, (height, width), directory)
                batched = run_configuration(rig, artifact, True, args.seconds, directory)
                separate = run_configuration(rig, artifact, False, args.seconds, directory)
                report(size, batched, separate)
    finally:
        rig.close()
        rclpy.shutdown(context=context)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
