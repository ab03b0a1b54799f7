"""`pixio-ros demo`: the README's first command (sample bag -> node -> outputs -> report).

Makes (or reuses from a cache) the synthetic RGB-D bag and a random-init artifact, starts
`pixio_node` as its own process (on sim time), plays the bag into it over DDS with the bag's
/clock, records what comes back, and prints what happened; the ROS work is done by
pixio_ros.ros.player, .recorder and .node_process. Every participant is on this host, so DDS uses
the loopback-only profile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HELP = 'Run the whole pipeline on a synthetic RGB-D bag and summarise what came out.'


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of one demo flavour: model, its input, the bag and the playback."""

    model_size: str
    input_size: tuple[int, int]
    bag_size: tuple[int, int]
    frames: int


# vitb16 at 192x256 (192 patches, ~35 GFLOP for the encoder) plus the DPT head runs a few frames
# a second on two idle cores; the 240x320 bag keeps rendering and DDS traffic small. 90 frames
# played at half speed (15 Hz, 6 s) give the node enough frames to show steady-state latency
# and drops, and the whole demo takes about a minute once the bag and artifact are cached (the
# first run adds the one-off export). --tiny is the same pipeline in seconds, for CI.
PRESETS: Final = {
    'default': DemoPreset('vitb16', (192, 256), (240, 320), 90),
    'tiny': DemoPreset('tiny', (64, 96), (48, 64), 20),
}
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
DEFAULT_RATE: Final = 0.5
# TorchScript specialises its graph over the first calls; warm up past them before playback.
NODE_WARMUP_RUNS: Final = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the demo's options."""
    parser.add_argument('--model', type=Path, help='artifact to run instead of a random-init one')
    parser.add_argument(
        '--tiny', action='store_true', help='tiny random model and a small bag (seconds; for CI)'
    )
    parser.add_argument(
        '--cache-dir',
        type=Path,
        default=Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'pixio_ros',
        help='where the sample bag and artifact are kept',
    )
    parser.add_argument(
        '--out', type=Path, help='result directory (default: CACHE/demo/run-<time>; never reused)'
    )
    parser.add_argument(
        '--rate',
        type=float,
        default=DEFAULT_RATE,
        help=f'playback speed factor (default {DEFAULT_RATE}: a 15 Hz camera)',
    )
    parser.add_argument('--device', default='cpu', help='node device (cpu, cuda, auto)')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')


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


def _prepare_environment() -> None:
    """Loopback-only DDS in a private domain (unless chosen), OpenMP that yields its cores."""
    profile = str(_loopback_profile())
    os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 101)))
    # Sleeping (not spinning) OpenMP workers: with the node, the player and the recorder sharing
    # two cores, spinning workers tripled vitb16's inference time in our measurements.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


def _sample_bag(cache: Path, preset: DemoPreset) -> Path:
    from pixio_ros.data.sample_bag import SampleBagSpec, write_sample_bag

    height, width = preset.bag_size
    path = cache / f'sample_{height}x{width}_{preset.frames}f_seed0'
    if not path.exists():
        print(f'writing the synthetic RGB-D bag {path} ...')
        spec = SampleBagSpec(frames=preset.frames, height=height, width=width)
        write_sample_bag(path, spec, progress=True)
    return path


def _artifact(cache: Path, preset: DemoPreset) -> Path:
    height, width = preset.input_size
    path = cache / f'{preset.model_size}_depth_random_{height}x{width}.ts'
    if not path.exists():
        import torch

        from pixio_ros.model import build_network, export_artifact

        print(f'exporting a random-init {preset.model_size} artifact {path} (once) ...')
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = build_network(preset.model_size, 'depth')
        export_artifact(
            net, path, input_size=preset.input_size, encoder_pretrained=False, head_trained=False
        )
    return path


class DemoRun:
    """One demo run: node process, playback, recording, summary and report into `out`."""

    def __init__(self, args: argparse.Namespace, bag: Path, model: Path, out: Path) -> None:
        self.args, self.bag, self.model, self.out = args, bag, model, out
        self.played: list[tuple[str, str, int, bytes]] = []

    def execute(self) -> int:
        """Run everything; returns the exit code."""
        from pixio_ros.evaluation.live import summary_lines
        from pixio_ros.files import atomic_output, write_atomically

        with atomic_output(self.out, force=self.args.force) as stage:
            stage.mkdir()
            stats = self._run_pipeline(stage)
            if stats['frames_out'] > 0:
                self._write_pictures(stage, stats)
            dump_json(stage / 'summary.json', stats)
        if stats['frames_out'] > 0:
            # Evaluated in place (its own atomic output) so the report names the final paths.
            self._evaluate(stats)
            write_atomically(self.out / 'summary.json', lambda temp: dump_json(temp, stats))
        for line in summary_lines(stats):
            print(line)
        if stats.get('random_weights'):
            print(
                'NOTE: the model has RANDOM weights; its depth is noise-like and the metrics '
                'only show that the pipeline works. Pass --model for a trained artifact.'
            )
        print(
            f'results in {self.out}: recording/ (mcap), depth_colormap.png, points.ply, '
            'eval/report.md, node.log, summary.json'
        )
        missing = stats['missing_outputs']
        if missing:
            hint = (
                ' (an artifact without a depth head publishes no depth or points; use one '
                'exported with --head-kind depth or points)'
                if 'depth' in missing
                else ''
            )
            print(
                f'pixio-ros demo: error: the node never published {", ".join(missing)} under '
                f'{NODE_NAMESPACE}{hint}; see {self.out / "node.log"}',
                file=sys.stderr,
            )
            return 1
        return 0

    def _run_pipeline(self, stage: Path) -> dict[str, Any]:
        """Node process + player + recorder; the node runs on the bag's /clock (sim time).

        With sim time the node's `now - header.stamp` (its diagnostics' message age) compares
        the replayed stamps with the bag's own clock, so the age is the pipeline's latency, not
        the time since the bag was recorded.
        """
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
            stage / 'node.log',
            parameters={
                'model_path': str(self.model),
                'device': self.args.device,
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
                rate=self.args.rate,
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
                    recorder.wait_for_more(DIAGNOSTICS_TOPIC, SETTLE_S / self.args.rate + 1.0)
                finally:
                    clock_stop.set()
                    clock.join()
            received = recorder.messages
        write_recording(stage / 'recording', self.played + received)
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

    def _write_pictures(self, stage: Path, stats: dict[str, Any]) -> None:
        """Depth colour map and PLY cloud of the last recorded frame."""
        import cv2
        import numpy as np

        from pixio_ros.data.bag import BagReader
        from pixio_ros.data.decode import decode_depth_image, decode_point_cloud
        from pixio_ros.data.ply import write_ply
        from pixio_ros.runtime.products import colorize

        with BagReader(stage / 'recording') as recording:
            depth = decode_depth_image(recording.messages(f'{NODE_NAMESPACE}/depth')[-1].msg)
            clouds = recording.messages(f'{NODE_NAMESPACE}/points')
        finite = depth[np.isfinite(depth)]
        # A robust auto range: the colours span the depth actually present in this frame.
        low, high = np.percentile(finite, COLORMAP_PERCENTILES) if finite.size else (0.0, 1.0)
        high = max(float(high), float(low) + 1e-6)
        cv2.imwrite(str(stage / 'depth_colormap.png'), colorize(depth, float(low), high))
        if clouds:
            points, colors = decode_point_cloud(clouds[-1].msg)
            stats['ply_points'] = write_ply(stage / 'points.ply', points, colors)

    def _evaluate(self, stats: dict[str, Any]) -> None:
        """Score the recorded depth against the bag's ground truth into `out/eval`."""
        from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_INFO_TOPIC, DEPTH_TOPIC
        from pixio_ros.evaluation.config import EvalConfig
        from pixio_ros.evaluation.run import run_evaluation

        align = 'scale_shift' if stats.get('random_weights') else 'none'
        document = run_evaluation(
            EvalConfig(
                bag=self.out / 'recording',
                image_topic=COLOR_TOPIC,
                depth_topic=DEPTH_TOPIC,
                prediction_topic=f'{NODE_NAMESPACE}/depth',
                camera_info_topic=DEPTH_INFO_TOPIC,
                align=align,
                out=self.out / 'eval',
                stamp_tolerance_ms=0.0,
            )
        )
        summary = document['summary']
        stats['eval'] = {
            'metrics_kind': summary['metrics_kind'],
            'evaluated': summary['frames']['evaluated'],
            'abs_rel': summary['depth']['abs_rel'],
            'delta1': summary['depth']['delta1'],
        }


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 only if every output of the node (OUTPUT_TOPICS) arrived."""
    from pixio_ros.data.errors import DataError
    from pixio_ros.files import check_writable

    if args.model is not None and not args.model.is_file():
        raise DataError(
            f'--model {args.model} does not exist; make one with `pixio-ros export '
            '...` or omit --model for a random-init demo.'
        )
    _prepare_environment()
    preset = PRESETS['tiny' if args.tiny else 'default']
    cache = args.cache_dir.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    out = args.out or cache / 'demo' / time.strftime('run-%Y%m%d-%H%M%S')
    check_writable(Path(out), force=args.force)
    bag = _sample_bag(cache, preset)
    model = args.model or _artifact(cache, preset)
    return DemoRun(args, bag, Path(model), Path(out)).execute()


def dump_json(path: Path, document: dict[str, Any]) -> None:
    """Write JSON with stable key order."""
    path.write_text(json.dumps(document, indent=2) + '\n')
