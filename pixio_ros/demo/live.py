"""The demo's live run: pixio_node as its own process, the bag played into it over DDS, recorded.

The node runs on sim time from the bag's /clock, so its diagnostics' message age is the
pipeline's latency, not the time since the bag was recorded. Every participant is on this host,
so DDS uses the loopback-only profile (set by the caller, `prepare_environment`). The ROS work
is done by pixio_ros.ros.player, .recorder and .node_process.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    'MODEL_INFO_TOPIC',
    'NODE_NAMESPACE',
    'OUTPUT_TOPICS',
    'LiveRun',
    'evaluate_recording',
    'prepare_environment',
]

NODE_NAMESPACE: Final = '/pixio'
COLORMAP_PERCENTILES: Final = (2.0, 98.0)
OUTPUT_TOPICS: Final = {
    'depth': 'sensor_msgs/msg/Image',
    'depth/camera_info': 'sensor_msgs/msg/CameraInfo',
    'points': 'sensor_msgs/msg/PointCloud2',
    'features': 'sensor_msgs/msg/PointCloud2',
    'embedding': 'sensor_msgs/msg/PointCloud2',
}
MODEL_INFO_TOPIC: Final = f'{NODE_NAMESPACE}/model_info'
DIAGNOSTICS_TOPIC: Final = '/diagnostics'
NODE_READY_TIMEOUT_S: Final = 180.0
DISCOVERY_TIMEOUT_S: Final = 30.0
SETTLE_S: Final = 2.0
DRAIN_TIMEOUT_S: Final = 60.0
LOOPBACK_PROFILE: Final = 'fastdds_shm_localhost.xml'
# TorchScript specialises its graph over the first calls; warm up past them before playback.
NODE_WARMUP_RUNS: Final = 3
DEPTH_COLORMAP: Final = 'depth_colormap.png'
POINTS_PLY: Final = 'points.ply'


def _loopback_profile() -> Path:
    """The shipped loopback Fast DDS profile: from the install's share dir, else the checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory('pixio_ros')) / 'config' / LOOPBACK_PROFILE
        if installed.is_file():
            return installed
    except Exception:  # no ament index (source checkout): use the source tree
        pass
    return Path(__file__).resolve().parents[2] / 'config' / LOOPBACK_PROFILE


def prepare_environment() -> None:
    """Loopback-only DDS in a private domain (unless chosen), OpenMP that yields its cores."""
    profile = str(_loopback_profile())
    os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 101)))
    # Sleeping (not spinning) OpenMP workers: with the node, the player and the recorder sharing
    # two cores, spinning workers tripled vitb16's inference time in our measurements.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


@dataclass
class LiveRun:
    """pixio_node on ``bag`` with ``model``: node process, playback, recording, pictures.

    Attributes:
        bag: the bag played (the synthetic RealSense topics).
        model: the artifact the node runs.
        stage: directory receiving recording/, node.log, depth_colormap.png, points.ply.
        rate: playback speed factor.
        device: the node's device.
    """

    bag: Path
    model: Path
    stage: Path
    rate: float
    device: str

    def __post_init__(self) -> None:
        self.played: list[tuple[str, str, int, bytes]] = []

    def run(self) -> dict[str, Any]:
        """Run the node on the bag; returns the live statistics (`summarise_live_run`'s)."""
        stats = self._run_pipeline()
        if stats['frames_out'] > 0:
            self._write_pictures(stats)
        return stats

    def _run_pipeline(self) -> dict[str, Any]:
        """Node process + player + recorder; the node runs on the bag's /clock (sim time)."""
        from pixio_ros.data.bag import BagReader
        from pixio_ros.data.errors import DataError
        from pixio_ros.data.sample_bag import (
            COLOR_INFO_TOPIC,
            COLOR_TOPIC,
            DEPTH_INFO_TOPIC,
            DEPTH_TOPIC,
        )
        from pixio_ros.ros.node_process import NodeProcess
        from pixio_ros.ros.player import BagPlayer
        from pixio_ros.ros.recorder import Recorder, spinning_node, write_recording

        topics = {f'{NODE_NAMESPACE}/{name}': msgtype for name, msgtype in OUTPUT_TOPICS.items()}
        topics[DIAGNOSTICS_TOPIC] = 'diagnostic_msgs/msg/DiagnosticArray'
        node_process = NodeProcess(
            self.stage / 'node.log',
            parameters={
                'model_path': str(self.model),
                'device': self.device,
                'warmup_runs': NODE_WARMUP_RUNS,
                'use_sim_time': True,
            },
            remappings={
                '__ns': NODE_NAMESPACE,
                'image': COLOR_TOPIC,
                'camera_info': COLOR_INFO_TOPIC,
            },
        )
        with spinning_node('pixio_demo') as node, BagReader(self.bag) as reader:
            recorder = Recorder(node, topics, latched={MODEL_INFO_TOPIC: 'std_msgs/msg/String'})
            player = BagPlayer(
                node,
                reader,
                [COLOR_TOPIC, COLOR_INFO_TOPIC, DEPTH_TOPIC, DEPTH_INFO_TOPIC],
                rate=self.rate,
                clock=True,
            )
            print(f'starting pixio_node with {self.model} ...')
            with node_process:
                deadline = time.monotonic() + NODE_READY_TIMEOUT_S
                while not recorder.wait_for_message(MODEL_INFO_TOPIC, 0.2):
                    if not node_process.running or time.monotonic() > deadline:
                        raise DataError(f'pixio_node did not come up: {node_process.tail()}')
                ready = player.wait_for_subscribers(
                    [COLOR_TOPIC, COLOR_INFO_TOPIC], DISCOVERY_TIMEOUT_S
                )
                if not (ready and recorder.wait_for_publishers(DISCOVERY_TIMEOUT_S)):
                    raise DataError(
                        f'pixio_node and the demo did not discover each other over '
                        f'DDS within {DISCOVERY_TIMEOUT_S:.0f} s; check the Fast DDS '
                        'profile.'
                    )
                print(f'playing {self.bag.name} into the node ...')
                player.play(on_publish=self._keep_played)
                # The bag's clock keeps running while the node finishes its last frames and its
                # (sim-time) diagnostics timer fires once more.
                clock_stop = threading.Event()
                clock = threading.Thread(target=player.run_clock, args=(clock_stop,), daemon=True)
                clock.start()
                try:
                    recorder.wait_quiet(f'{NODE_NAMESPACE}/depth', SETTLE_S, DRAIN_TIMEOUT_S)
                    recorder.wait_for_more(DIAGNOSTICS_TOPIC, SETTLE_S / self.rate + 1.0)
                finally:
                    clock_stop.set()
                    clock.join()
            received = recorder.messages
        write_recording(self.stage / 'recording', self.played + received)
        return self._statistics(received)

    def _keep_played(self, raw: Any, wall_ns: int) -> None:
        self.played.append((raw.topic, raw.msgtype, wall_ns, raw.data))

    def _statistics(self, received: list[tuple[str, str, int, bytes]]) -> dict[str, Any]:
        from pixio_ros.data.sample_bag import COLOR_TOPIC
        from pixio_ros.evaluation.live import summarise_live_run

        stats = summarise_live_run(
            self.played,
            received,
            image_topic=COLOR_TOPIC,
            depth_topic=f'{NODE_NAMESPACE}/depth',
            model_info_topic=MODEL_INFO_TOPIC,
        )
        stats['model'] = str(self.model)
        stats['missing_outputs'] = [
            name for name in OUTPUT_TOPICS if not stats['topics'].get(f'{NODE_NAMESPACE}/{name}')
        ]
        return stats

    def _write_pictures(self, stats: dict[str, Any]) -> None:
        """Depth colour map and PLY cloud of the last recorded frame."""
        import cv2
        import numpy as np

        from pixio_ros.data.bag import BagReader
        from pixio_ros.data.decode import decode_depth_image, decode_point_cloud
        from pixio_ros.data.ply import write_ply
        from pixio_ros.runtime.products import colorize

        with BagReader(self.stage / 'recording') as recording:
            depth = decode_depth_image(recording.messages(f'{NODE_NAMESPACE}/depth')[-1].msg)
            clouds = recording.messages(f'{NODE_NAMESPACE}/points')
        finite = depth[np.isfinite(depth)]
        # A robust auto range: the colours span the depth actually present in this frame.
        low, high = np.percentile(finite, COLORMAP_PERCENTILES) if finite.size else (0.0, 1.0)
        high = max(float(high), float(low) + 1e-6)
        cv2.imwrite(str(self.stage / DEPTH_COLORMAP), colorize(depth, float(low), high))
        if clouds:
            points, colors = decode_point_cloud(clouds[-1].msg)
            stats['ply_points'] = write_ply(self.stage / POINTS_PLY, points, colors)


def evaluate_recording(out: Path, *, align: str, rerun: Path | None = None) -> dict[str, Any]:
    """Score the node's recorded depth in ``out/recording`` against the bag's ground truth.

    Written to ``out/eval`` (in place, so its report names the final paths), with a Rerun
    recording of it at `rerun` when given. Returns what the demo's summary keeps: metrics kind,
    frames evaluated, AbsRel, delta1.
    """
    from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_INFO_TOPIC, DEPTH_TOPIC
    from pixio_ros.evaluation.config import EvalConfig
    from pixio_ros.evaluation.run import run_evaluation

    document = run_evaluation(
        EvalConfig(
            bag=out / 'recording',
            image_topic=COLOR_TOPIC,
            depth_topic=DEPTH_TOPIC,
            prediction_topic=f'{NODE_NAMESPACE}/depth',
            camera_info_topic=DEPTH_INFO_TOPIC,
            align=align,
            out=out / 'eval',
            stamp_tolerance_ms=0.0,
            rerun=rerun,
        )
    )
    summary = document['summary']
    return {
        'metrics_kind': summary['metrics_kind'],
        'evaluated': summary['frames']['evaluated'],
        'abs_rel': summary['depth']['abs_rel'],
        'delta1': summary['depth']['delta1'],
    }
