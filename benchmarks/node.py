"""Node benchmark: end-to-end throughput vs bare Engine.infer, message age, PointCloud2 build time.

Run: `python benchmarks/node.py [--artifact model.ts] [--seconds 10] [--rounds 3]`
(after `make setup`, with .venv/pixio_env.sh sourced). Without --artifact it exports a random-init
`tiny` point-map artifact at 240x320 (~0.1-0.3 s per frame on these 2 shared cores, i.e. slower
than the 30 Hz camera; a vitb16 artifact takes seconds here and gives too few frames per round).
Everything is measured in one run, in alternating rounds; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from pixio_ros.ros.fastdds import point_fast_dds_at

REPO = Path(__file__).resolve().parent.parent
# Loopback-only DDS in a random domain, set before rclpy is imported (as the tests do).
os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
point_fast_dds_at(REPO / 'config' / 'fastdds_shm_localhost.xml')  # the distro's variable
# (not ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: rmw then opens a UDP transport on every interface)
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pixio_ros.ros.convert import point_cloud_msg  # noqa: E402
from pixio_ros.runtime.cloud import CloudOptions, select_points  # noqa: E402
from pixio_ros.runtime.engine import Engine, RandomInitWarning  # noqa: E402

HEIGHT, WIDTH = 480, 640
CAMERA_HZ = 30.0
OUTPUTS = ('depth', 'points', 'features', 'embedding')
FAST_BUILDS = 20
NAIVE_BUILDS = 3
MS_PER_S = 1000.0
NS_PER_S = 1e9
MIN_ARRIVALS = 2  # a rate needs two events
IDLE_TIMEOUT_S = 60.0
WARMUP_FRAMES = 3
SPIN_TIMEOUT_S = 0.05
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def export_default_artifact(directory: Path) -> Path:
    """A random-init tiny point-map artifact at 240x320."""
    import torch

    from pixio_ros.model import build_network, export_artifact

    path = directory / 'tiny_points_240x320.ts'
    torch.manual_seed(0)
    export_artifact(
        build_network('tiny', 'points'),
        path,
        input_size=(240, 320),
        fmt='torchscript',
        encoder_pretrained=False,
        head_trained=False,
    )
    return path


def camera_frame() -> tuple[Image, CameraInfo]:
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
    image.data = rgb.tobytes()
    image.header.frame_id = 'camera_optical'
    info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob', d=[0.0] * 5)
    info.k = [525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0]
    info.p = [525.0, 0.0, 319.5, 0.0, 0.0, 525.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = 'camera_optical'
    return image, info


def bare_engine_round(
    engine: Engine, rgb: np.ndarray, frames: int, outputs: tuple[str, ...]
) -> tuple[float, list[float]]:
    """Frames per second of back-to-back Engine.infer calls, and their latencies (ms).

    Runs in a fresh thread, as the node's worker does: on these shared cores torch's OpenMP
    from the main thread was measured several times slower than from a worker thread, which
    would flatter the node.
    """
    latencies: list[float] = []
    elapsed: list[float] = []

    def loop() -> None:
        started = time.perf_counter()
        for _ in range(frames):
            prediction = engine.infer(rgb, outputs=outputs, output_size=(HEIGHT, WIDTH))
            latencies.append(prediction.inference_ms)
        elapsed.append(time.perf_counter() - started)

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return frames / elapsed[0], latencies


class Camera:
    """Publishes the same frame with a fresh stamp at CAMERA_HZ; collects output arrival times."""

    def __init__(self, context: Context, outputs: tuple[str, ...]):
        self.node = rclpy.create_node('pixio_bench_camera', context=context)
        self.image, self.info = camera_frame()
        self.image_pub = self.node.create_publisher(Image, 'image', RELIABLE)
        self.info_pub = self.node.create_publisher(CameraInfo, 'camera_info', RELIABLE)
        self.arrivals: list[tuple[float, float, int]] = []  # (receive time, age ms, stamp ns)
        self.lock = threading.Lock()
        self.node.create_subscription(Image, 'depth', self._on_depth, RELIABLE)
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        for topic in outputs[1:]:
            self.node.create_subscription(PointCloud2, topic, lambda _: None, RELIABLE, raw=True)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)

    def close(self) -> None:
        """Stop spinning and destroy the node (before the context shuts down)."""
        self._stop.set()
        self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()

    def _on_depth(self, msg: Image) -> None:
        now_ns = time.time_ns()
        stamp_ns = msg.header.stamp.sec * int(NS_PER_S) + msg.header.stamp.nanosec
        with self.lock:
            self.arrivals.append((time.monotonic(), (now_ns - stamp_ns) / 1e6, stamp_ns))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics = {kv.key: kv.value for kv in msg.status[0].values}

    def wait_for_node(self, process: subprocess.Popen) -> None:
        """Block until the node subscribes to the image (exits if the node died)."""
        while self.image_pub.get_subscription_count() == 0:
            if process.poll() is not None:
                sys.exit(f'pixio_node exited with {process.returncode}')
            time.sleep(0.05)

    def stream(self, seconds: float) -> list[tuple[float, float, int]]:
        """Publish for `seconds` at CAMERA_HZ; the outputs that arrived until the last frame's.

        The node always processes the newest frame, so once the last frame's output is in the
        node is idle and the next bare-engine round runs without competition.
        """
        with self.lock:
            self.arrivals.clear()
        period = 1.0 / CAMERA_HZ
        deadline = time.monotonic() + seconds
        next_frame = time.monotonic()
        last_ns = 0
        while time.monotonic() < deadline:
            now_ns = last_ns = time.time_ns()
            self.image.header.stamp.sec = now_ns // int(NS_PER_S)
            self.image.header.stamp.nanosec = now_ns % int(NS_PER_S)
            self.info.header.stamp = self.image.header.stamp
            self.info_pub.publish(self.info)
            self.image_pub.publish(self.image)
            next_frame += period
            time.sleep(max(0.0, next_frame - time.monotonic()))
        idle_deadline = time.monotonic() + IDLE_TIMEOUT_S
        while time.monotonic() < idle_deadline:
            with self.lock:
                if any(stamp == last_ns for _, _, stamp in self.arrivals):
                    break
            time.sleep(0.01)
        with self.lock:
            return list(self.arrivals)


def node_rate(arrivals: list[tuple[float, float, int]]) -> float:
    if len(arrivals) < MIN_ARRIVALS:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1][0] - arrivals[0][0])


def naive_cloud(points: np.ndarray, rgb: np.ndarray, header: Header) -> PointCloud2:
    """The straightforward builder: one struct.pack per point."""
    data = bytearray()
    height, width = points.shape[:2]
    for row in range(height):
        for column in range(width):
            x, y, z = points[row, column]
            r, g, b = rgb[row, column]
            packed = struct.unpack(
                '<f', struct.pack('<I', (int(r) << 16) | (int(g) << 8) | int(b))
            )[0]
            data += struct.pack('<ffff', x, y, z, packed)
    msg = PointCloud2(
        header=header,
        height=height,
        width=width,
        point_step=16,
        row_step=16 * width,
        is_dense=False,
        is_bigendian=False,
    )
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(('x', 'y', 'z', 'rgb'))
    ]
    msg.data = bytes(data)
    return msg


def cloud_build_times() -> tuple[float, float]:
    """Median ms of point_cloud_msg (xyzrgb, 640x480) and of the naive builder."""
    rng = np.random.default_rng(1)
    points = rng.uniform(-3, 3, (HEIGHT, WIDTH, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    header = Header(frame_id='camera_optical')
    fast = []
    for _ in range(FAST_BUILDS):
        started = time.perf_counter()
        point_cloud_msg(select_points(points, CloudOptions(), rgb=rgb), header)
        fast.append((time.perf_counter() - started) * MS_PER_S)
    naive = []
    for _ in range(NAIVE_BUILDS):
        started = time.perf_counter()
        naive_cloud(points, rgb, header)
        naive.append((time.perf_counter() - started) * MS_PER_S)
    reference = naive_cloud(points[:2, :3], rgb[:2, :3], header)
    ours = point_cloud_msg(select_points(points[:2, :3], CloudOptions(), rgb=rgb[:2, :3]), header)
    assert bytes(reference.data) == bytes(ours.data), 'builders disagree'
    return float(np.median(fast)), float(np.median(naive))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--artifact', type=Path, help='artifact to use (default: export one)')
    parser.add_argument('--seconds', type=float, default=6.0, help='camera seconds per round')
    parser.add_argument('--rounds', type=int, default=5, help='alternating rounds')
    parser.add_argument(
        '--outputs',
        default=','.join(OUTPUTS),
        help='comma-separated outputs to subscribe to; depth first (default all)',
    )
    args = parser.parse_args()
    outputs = tuple(args.outputs.split(','))
    if outputs[0] != 'depth' or not set(outputs) <= set(OUTPUTS):
        sys.exit(f'--outputs must start with depth and be a subset of {",".join(OUTPUTS)}')
    node_command = shutil.which('pixio_node')
    if node_command is None:
        sys.exit('pixio_node not on PATH: run `make setup` and source .venv/pixio_env.sh')
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or export_default_artifact(Path(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RandomInitWarning)
            engine = Engine(artifact, device='cpu')
        rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        params = Path(tmp) / 'params.yaml'
        params.write_text(
            f"/**:\n  ros__parameters:\n    model_path: '{artifact}'\n    device: cpu\n"
        )
        process = subprocess.Popen(
            [node_command, '--ros-args', '--params-file', str(params)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        context = Context()
        rclpy.init(context=context)
        try:
            camera = Camera(context, outputs)
            camera.wait_for_node(process)
            camera.stream(3.0)  # discovery of every output and warm-up
            # The first calls at a new image size are slow.
            bare_engine_round(engine, rgb, WARMUP_FRAMES, outputs)
            estimate, _ = bare_engine_round(engine, rgb, WARMUP_FRAMES, outputs)
            frames = max(3, round(args.seconds * estimate))
            bare_fps, node_fps, latencies, ages, node_inference = [], [], [], [], []
            for _ in range(args.rounds):
                fps, round_latencies = bare_engine_round(engine, rgb, frames, outputs)
                bare_fps.append(fps)
                latencies += round_latencies
                arrivals = camera.stream(args.seconds)
                node_fps.append(node_rate(arrivals))
                ages += [age for _, age, _ in arrivals]
                with camera.lock:
                    node_inference.append(float(camera.diagnostics['inference ms p50']))
        finally:
            if 'camera' in locals():
                camera.close()
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            rclpy.shutdown(context=context)
    fast_ms, naive_ms = cloud_build_times()
    inference_p50 = float(np.median(latencies))
    third = max(1, len(ages) // 3)
    print(
        f'artifact: {Path(artifact).name} ({engine.metadata.size}, input '
        f'{engine.input_size[0]}x{engine.input_size[1]}); camera {WIDTH}x{HEIGHT} rgb8 at '
        f'{CAMERA_HZ:.0f} Hz; outputs {", ".join(outputs)}; {args.rounds} rounds'
    )
    print(
        f'throughput  node {np.median(node_fps):6.2f} fps | bare Engine.infer '
        f'{np.median(bare_fps):6.2f} fps | ratio {np.median(node_fps) / np.median(bare_fps):.3f}'
        ' (goal >= 0.95)'
    )
    print(
        f'message age p50 {np.percentile(ages, 50):7.1f} ms | p95 {np.percentile(ages, 95):7.1f}'
        f' ms | inference p50 {inference_p50:7.1f} ms | p95 / inference '
        f'{np.percentile(ages, 95) / inference_p50:.2f} (goal <= 2)'
    )
    print(
        f'inference inside the node p50 {np.median(node_inference):7.1f} ms (same artifact; '
        'the node shares the cores with the camera, message building and DDS)'
    )
    print(
        f'age over time p50 first third {np.median(ages[:third]):7.1f} ms | last third '
        f'{np.median(ages[-third:]):7.1f} ms (flat = no queue growth)'
    )
    print(
        f'PointCloud2 xyzrgb 640x480  ours {fast_ms:7.2f} ms | per-point struct.pack '
        f'{naive_ms:8.1f} ms | speed-up {naive_ms / fast_ms:.0f}x (goal <= 5 ms)'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
