"""What the ROS benchmarks share: a private DDS domain, random-init artifacts, a 640x480 camera."""

from __future__ import annotations

import os
import random
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from pixio_ros.model.artifact_format import ArtifactFormat
from pixio_ros.ros.fastdds import point_fast_dds_at
from pixio_ros.units import NS_PER_MS, NS_PER_S, stamp_ns

REPO = Path(__file__).resolve().parent.parent

HEIGHT, WIDTH = 480, 640
FOCAL_PX = 525.0
SPIN_TIMEOUT_S = 0.05
POLL_S = 0.05
MIN_ARRIVALS = 2  # a rate needs two events
SEED = 0  # of every random-init network
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)

Arrival = tuple[float, float, int]  # (monotonic receive time, message age ms, header stamp ns)


def use_private_dds() -> None:
    """Move this process, and the node processes it starts, to a private loopback DDS domain.

    Call before rclpy.init: a random domain id with the shipped Fast DDS shared-memory profile,
    as the tests do, so that a benchmark neither sees nor disturbs another ROS graph on the
    machine. Not ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: with it rmw_fastrtps adds a UDP
    transport on every interface beside the profile's (see test/conftest.py).
    """
    os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
    point_fast_dds_at(REPO / 'config' / 'fastdds_shm_localhost.xml')  # the distro's variable
    os.environ.pop('ROS_AUTOMATIC_DISCOVERY_RANGE', None)
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')


def random_init_artifact(
    directory: Path,
    size: str = 'tiny',
    head: str = 'points',
    input_size: tuple[int, int] = (240, 320),
    fmt: ArtifactFormat = 'torchscript',
) -> Path:
    """The random-init artifact of these settings in `directory`, exported once (seed SEED).

    Speed does not depend on the weights, so every benchmark times random-init networks.
    """
    import torch

    from pixio_ros.model import build_network, export_artifact
    from pixio_ros.model.artifact_format import FORMAT_SUFFIXES, RandomInitWarning

    path = directory / f'{size}_{head}_{input_size[0]}x{input_size[1]}{FORMAT_SUFFIXES[fmt]}'
    if path.exists():
        return path
    started = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        net = build_network(size, head)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RandomInitWarning)
        export_artifact(
            net,
            path,
            input_size=input_size,
            fmt=fmt,
            encoder_pretrained=False,
            head_trained=False,
        )
    print(f'  exported {path.name} in {time.perf_counter() - started:.0f} s', flush=True)
    return path


def camera_info(frame_id: str = 'camera_optical') -> CameraInfo:
    """A plausible 640x480 calibration (fx = fy = 525, centred principal point, no distortion)."""
    info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob', d=[0.0] * 5)
    cx, cy = (WIDTH - 1) / 2, (HEIGHT - 1) / 2
    info.k = [FOCAL_PX, 0.0, cx, 0.0, FOCAL_PX, cy, 0.0, 0.0, 1.0]
    info.p = [FOCAL_PX, 0.0, cx, 0.0, 0.0, FOCAL_PX, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.header.frame_id = frame_id
    return info


def rgb_images(count: int = 1, frame_id: str = 'camera_optical') -> list[Image]:
    """`count` distinct random 640x480 rgb8 frames, made once (no per-frame generation cost)."""
    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        image = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
        image.data = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8).tobytes()
        image.header.frame_id = frame_id
        images.append(image)
    return images


def stamp_now(*headers: Header) -> int:
    """Stamp `headers` with the wall clock (as a camera driver does); the stamp in ns."""
    now_ns = time.time_ns()
    for header in headers:
        header.stamp.sec, header.stamp.nanosec = divmod(now_ns, NS_PER_S)
    return now_ns


def age_ms(header: Header) -> float:
    """How old a message stamped with the wall clock is now, in ms."""
    return (time.time_ns() - stamp_ns(header)) / NS_PER_MS


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (0 once it is gone)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def arrival_rate(arrivals: list[Arrival]) -> float:
    """Outputs per second between the first and the last arrival."""
    if len(arrivals) < MIN_ARRIVALS:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1][0] - arrivals[0][0])


class SpinningNode:
    """An rclpy node spun by a daemon thread; `close()` before the context shuts down."""

    def __init__(self, context: Context, name: str) -> None:
        self.node: Node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def start_spinning(self) -> None:
        """Start the spin thread (after the subclass created its entities)."""
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()


class Camera(SpinningNode):
    """A 640x480 rgb8 camera with CameraInfo that subscribes to a node's outputs.

    `outputs` are relative topic names, depth first: the depth images are timed, the others
    (PointCloud2) are subscribed raw so that the node builds them. The node's latest
    /diagnostics values are kept in `diagnostics`.
    """

    def __init__(self, context: Context, outputs: tuple[str, ...], hz: float) -> None:
        super().__init__(context, 'pixio_bench_camera')
        self.period_s = 1.0 / hz
        self.image = rgb_images()[0]
        self.info = camera_info()
        self.image_pub = self.node.create_publisher(Image, 'image', RELIABLE)
        self.info_pub = self.node.create_publisher(CameraInfo, 'camera_info', RELIABLE)
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(Image, outputs[0], self._on_depth, RELIABLE)
        for topic in outputs[1:]:
            self.node.create_subscription(PointCloud2, topic, lambda _: None, RELIABLE, raw=True)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.start_spinning()

    def _on_depth(self, msg: Image) -> None:
        with self.lock:
            self.arrivals.append((time.monotonic(), age_ms(msg.header), stamp_ns(msg.header)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics = {kv.key: kv.value for kv in msg.status[0].values}

    def wait_for_node(
        self, alive: Callable[[], bool], timeout_s: float, tail: Callable[[], str]
    ) -> None:
        """Until the node subscribes to the image; RuntimeError (with its log tail) if it died."""
        deadline = time.monotonic() + timeout_s
        while self.image_pub.get_subscription_count() == 0:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f'pixio_node did not start:\n{tail()}')
            time.sleep(POLL_S)

    def wait_for_no_node(self, timeout_s: float = 10.0) -> None:
        """Until the last node's image subscription is gone (so the next one starts alone)."""
        deadline = time.monotonic() + timeout_s
        while self.image_pub.get_subscription_count() and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def stream(self, seconds: float, last_frame_timeout_s: float = 60.0) -> list[Arrival]:
        """Publish for `seconds`; the depth arrivals until the last frame's output is in.

        The node always processes the newest frame, so once the last frame's output is in the
        node is idle and whatever is measured next runs without competition.
        """
        with self.lock:
            self.arrivals.clear()
        next_frame = time.monotonic()
        deadline = next_frame + seconds
        last_ns = 0
        while time.monotonic() < deadline:
            last_ns = stamp_now(self.image.header, self.info.header)
            self.info_pub.publish(self.info)
            self.image_pub.publish(self.image)
            next_frame += self.period_s
            time.sleep(max(0.0, next_frame - time.monotonic()))
        wait_until = time.monotonic() + last_frame_timeout_s
        while time.monotonic() < wait_until:
            with self.lock:
                if any(stamp == last_ns for _, _, stamp in self.arrivals):
                    break
            time.sleep(0.01)
        with self.lock:
            return list(self.arrivals)
