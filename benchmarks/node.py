"""Node benchmark: end-to-end throughput vs bare Engine.infer, message age, PointCloud2 build time.

Run: `python benchmarks/node.py [--artifact model.ts] [--seconds 10] [--rounds 3]`
(after `make setup`, with .venv/pixio_env.sh sourced). Without --artifact it exports a random-init
`tiny` point-map artifact at 240x320 (~0.1-0.3 s per frame on these 2 shared cores, i.e. slower
than the 30 Hz camera; a vitb16 artifact takes seconds here and gives too few frames per round).
Everything is measured in one run, in alternating rounds; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import rclpy
from bench_rig import (
    HEIGHT,
    WIDTH,
    Camera,
    arrival_rate,
    random_init_artifact,
    use_private_dds,
)
from rclpy.context import Context
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from pixio_ros.ros.convert import cloud_msg
from pixio_ros.ros.node_process import NodeProcess
from pixio_ros.runtime.cloud import CloudOptions, select_points
from pixio_ros.runtime.engine import Engine, RandomInitWarning
from pixio_ros.units import MS_PER_S
from pixio_ros.wire import encode_points

CAMERA_HZ = 30.0
OUTPUTS = ('depth', 'points', 'features', 'embedding')
FAST_BUILDS = 20
NAIVE_BUILDS = 3
START_TIMEOUT_S = 300.0
WARMUP_FRAMES = 3


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


def node_cloud(points: np.ndarray, rgb: np.ndarray, header: Header) -> PointCloud2:
    """The node's builder: selection, the wire encoding, the rclpy message."""
    selected = select_points(points, CloudOptions(), rgb=rgb)
    return cloud_msg(encode_points(selected.points, rgb=selected.rgb), header)


def cloud_build_times() -> tuple[float, float]:
    """Median ms of the node's builder (xyzrgb, 640x480) and of the naive one."""
    rng = np.random.default_rng(1)
    points = rng.uniform(-3, 3, (HEIGHT, WIDTH, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    header = Header(frame_id='camera_optical')
    fast = []
    for _ in range(FAST_BUILDS):
        started = time.perf_counter()
        node_cloud(points, rgb, header)
        fast.append((time.perf_counter() - started) * MS_PER_S)
    naive = []
    for _ in range(NAIVE_BUILDS):
        started = time.perf_counter()
        naive_cloud(points, rgb, header)
        naive.append((time.perf_counter() - started) * MS_PER_S)
    reference = naive_cloud(points[:2, :3], rgb[:2, :3], header)
    ours = node_cloud(points[:2, :3], rgb[:2, :3], header)
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
    use_private_dds()
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or random_init_artifact(Path(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RandomInitWarning)
            engine = Engine(artifact, device='cpu')
        rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        parameters = {'model_path': str(artifact), 'device': 'cpu'}
        context = Context()
        rclpy.init(context=context)
        camera = Camera(context, outputs, CAMERA_HZ)
        try:
            with NodeProcess(Path(tmp) / 'node.log', parameters=parameters) as process:
                camera.wait_for_node(lambda: process.running, START_TIMEOUT_S, process.tail)
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
                    node_fps.append(arrival_rate(arrivals))
                    ages += [age for _, age, _ in arrivals]
                    with camera.lock:
                        node_inference.append(float(camera.diagnostics['inference ms p50']))
        finally:
            camera.close()
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
