"""The policy demo: record, featurize, train, deploy on the turn-to-target task, and score.

The README's four commands, run in one process on a tiny random-init artifact so it takes a
couple of minutes on a CPU: `make-sample-bag --task turn-to-target` (training episodes and
held-out episodes: other rooms and targets), `features` (both), `train-policy`, then pixio_node
and pixio_policy_node as processes with each held-out bag played into them over DDS (sim time
from the bag's /clock; a fresh pair of processes per bag, as every bag's clock starts at the same
time). The live actions are scored against the bags' recorded `/cmd_vel` at each frame's stamp,
beside the mean-action baseline; the same policy on the held-out episodes' offline features gives
the offline score.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ['PolicyDemo', 'PolicyDemoResult']

NAMESPACE: Final = '/pixio'
ACTION_TOPIC: Final = f'{NAMESPACE}/action'
ACTION_TYPE: Final = 'geometry_msgs/msg/TwistStamped'
FEATURES_TOPIC: Final = f'{NAMESPACE}/features'
SIGNAL: Final = '/cmd_vel:angular.z'
HELD_OUT_SEED: Final = 1000
READY_TIMEOUT_S: Final = 180.0
SETTLE_S: Final = 3.0
DRAIN_TIMEOUT_S: Final = 60.0
# The node on a loaded CPU can lag the sim clock by a few frames; the policy refuses older ones.
MAX_FEATURE_AGE_MS: Final = 2000.0
NODE_WARMUP_RUNS: Final = 3


@dataclass
class PolicyDemoResult:
    """Scores and step times of a policy demo run.

    Attributes:
        seconds: wall time of each step (record, featurize, train, deploy).
        offline: held-out episode, offline features: the policy's and the baseline's MSE.
        validation: the run's best validation epoch (held-out training episodes).
        live: held-out episode through the live node: the policy's and the baseline's MSE.
        live_actions: actions received; frames: frames in the held-out bag.
        stale: frames the policy node refused as too old (from its log line count).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    offline: dict[str, float] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    live: dict[str, float] = field(default_factory=dict)
    live_actions: int = 0
    frames: int = 0


@dataclass
class PolicyDemo:
    """The demo's sizes and where it writes.

    Attributes:
        out: result directory (bags, datasets, run, logs); must not exist.
        episodes: training episodes (one bag each).
        frames: frames per episode.
        held_out: held-out episodes (seeds HELD_OUT_SEED, ...).
        held_out_frames: frames of each held-out episode.
        size: (H, W) of the images and of the artifact input.
        rate: playback speed of the held-out bag.
        device: node, featurizer and training device.
    """

    out: Path
    episodes: int = 20
    frames: int = 16
    held_out: int = 3
    held_out_frames: int = 40
    size: tuple[int, int] = (96, 128)
    rate: float = 0.5
    device: str = 'cpu'

    def run(self) -> PolicyDemoResult:
        """Every step in order; returns the scores and times."""
        from pixio_ros.cli import main as cli

        result = PolicyDemoResult(frames=self.held_out * self.held_out_frames)
        out = self.out
        height, width = self.size
        size = f'{height}x{width}'
        started = time.monotonic()
        self._call(
            cli,
            'make-sample-bag', str(out / 'train_bags'), '--task', 'turn-to-target',
            '--episodes', str(self.episodes), '--frames', str(self.frames), '--size', size,
        )  # fmt: skip
        self._call(
            cli,
            'make-sample-bag', str(out / 'held_out_bags'), '--task', 'turn-to-target',
            '--seed', str(HELD_OUT_SEED), '--episodes', str(self.held_out),
            '--frames', str(self.held_out_frames), '--size', size,
        )  # fmt: skip
        result.seconds['record'] = time.monotonic() - started
        model = self._artifact()
        started = time.monotonic()
        bags = sorted(str(path) for path in (out / 'train_bags').iterdir())
        self._featurize(cli, bags, model, out / 'features')
        result.seconds['featurize'] = time.monotonic() - started
        self._featurize(cli, self._held_out_bags(), model, out / 'held_out_features')
        started = time.monotonic()
        self._call(
            cli,
            'train-policy', str(out / 'features'), '--action', 'cmd_vel:angular.z',
            '-o', str(out / 'run'), '--device', self.device, '--quiet',
        )  # fmt: skip
        result.seconds['train'] = time.monotonic() - started
        result.validation = self._validation()
        result.offline = self._offline_score()
        started = time.monotonic()
        pairs: list[tuple[float, float]] = []
        for bag in self._held_out_bags():
            live_pairs, received = self._live(model, Path(bag))
            pairs += live_pairs
            result.live_actions += received
        result.live = self._live_score(pairs)
        result.seconds['deploy'] = time.monotonic() - started
        return result

    def _held_out_bags(self) -> list[str]:
        return sorted(str(path) for path in (self.out / 'held_out_bags').iterdir())

    @staticmethod
    def _call(cli: Any, *argv: str) -> None:
        from pixio_ros.errors import PixioRosError

        print('$ pixio-ros ' + ' '.join(argv), flush=True)
        if cli(list(argv)) != 0:
            raise PixioRosError(f'`pixio-ros {argv[0]}` failed (see above)')

    def _featurize(self, cli: Any, bags: list[str], model: Path, out: Path) -> None:
        from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC

        self._call(
            cli,
            'features', *bags, '--model', str(model), '-o', str(out), '--with', SIGNAL,
            '--camera-info-topic', COLOR_INFO_TOPIC, '--device', self.device,
        )  # fmt: skip

    def _artifact(self) -> Path:
        """A random-init tiny depth artifact at the demo's size (no weights are downloaded)."""
        import torch

        from pixio_ros.model import build_network, export_artifact

        path = self.out / 'tiny_depth.ts'
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = build_network('tiny', 'depth')
        export_artifact(
            net,
            path,
            input_size=self.size,
            fmt='torchscript',
            encoder_pretrained=False,
            head_trained=False,
        )
        return path

    def _validation(self) -> dict[str, float]:
        import json

        best = json.loads((self.out / 'run' / 'best.json').read_text())['metrics']
        return {
            'mse': best['val_mse'],
            'baseline_mse': best['val_baseline_mse'],
            'margin': best['val_margin'],
        }

    def _policy(self) -> Any:
        from pixio_ros.policy import load_policy

        return load_policy(self.out / 'run' / 'last.safetensors')

    def _offline_score(self) -> dict[str, float]:
        from pixio_ros.policy import FeatureDataset, score_policy

        data = FeatureDataset(self.out / 'held_out_features', ['cmd_vel:angular.z']).tensors()
        return score_policy(self._policy(), data).as_dict()

    def _live_score(self, pairs: list[tuple[float, float]]) -> dict[str, float]:
        """Live (action, recorded command) pairs scored beside the training mean action."""
        import torch

        from pixio_ros.data.errors import DataError
        from pixio_ros.policy import score_actions

        if not pairs:
            raise DataError(f'no live action arrived; see the node logs in {self.out}')
        predicted = torch.tensor([[p] for p, _ in pairs])
        target = torch.tensor([[t] for _, t in pairs])
        mean = self._policy().action_mean.detach()
        return score_actions(predicted, target, mean).as_dict()

    def _live(self, model: Path, bag: Path) -> tuple[list[tuple[float, float]], int]:
        """Both nodes as processes, `bag` played in: (live action, recorded command) pairs."""
        from pixio_ros.data.bag import BagReader
        from pixio_ros.data.errors import DataError
        from pixio_ros.data.messages import typestore
        from pixio_ros.data.sample_bag import CMD_VEL_TOPIC, COLOR_INFO_TOPIC, COLOR_TOPIC
        from pixio_ros.demo.live import prepare_environment
        from pixio_ros.ros.node_process import NodeProcess
        from pixio_ros.ros.player import BagPlayer
        from pixio_ros.ros.recorder import Recorder, spinning_node
        from pixio_ros.units import stamp_ns

        prepare_environment()
        node = NodeProcess(
            self.out / f'{bag.name}_node.log',
            parameters={
                'model_path': str(model),
                'device': self.device,
                'warmup_runs': NODE_WARMUP_RUNS,
                'use_sim_time': True,
            },
            remappings={'__ns': NAMESPACE, 'image': COLOR_TOPIC, 'camera_info': COLOR_INFO_TOPIC},
        )
        policy = NodeProcess(
            self.out / f'{bag.name}_policy_node.log',
            parameters={
                'policy_path': str(self.out / 'run' / 'last.safetensors'),
                'output_type': 'twist_stamped',  # the stamp pairs each action with its frame
                'max_feature_age_ms': MAX_FEATURE_AGE_MS,
                'use_sim_time': True,
            },
            remappings={'__ns': NAMESPACE},
            module='pixio_ros.ros.policy_node',
        )
        print(f'playing {bag.name} into pixio_node + pixio_policy_node ...', flush=True)
        with spinning_node('pixio_policy_demo') as ros, BagReader(bag) as reader:
            recorder = Recorder(ros, {ACTION_TOPIC: ACTION_TYPE})
            player = BagPlayer(
                ros, reader, [COLOR_TOPIC, COLOR_INFO_TOPIC], rate=self.rate, clock=True
            )
            truth = {
                raw.log_time_ns: typestore().deserialize_cdr(raw.data, raw.msgtype).angular.z
                for raw in reader.raw([CMD_VEL_TOPIC])
            }
            with node, policy:
                deadline = time.monotonic() + READY_TIMEOUT_S
                while not (
                    player.wait_for_subscribers([COLOR_TOPIC, COLOR_INFO_TOPIC], 0.2)
                    and recorder.wait_for_publishers(0.2)
                    and ros.count_subscribers(FEATURES_TOPIC) > 0
                    and ros.count_publishers(FEATURES_TOPIC) > 0
                ):
                    if not (node.running and policy.running) or time.monotonic() > deadline:
                        raise DataError(
                            f'the nodes did not come up: {node.tail()}\n{policy.tail()}'
                        )
                player.play()
                clock_stop = threading.Event()
                clock = threading.Thread(target=player.run_clock, args=(clock_stop,), daemon=True)
                clock.start()
                try:
                    recorder.wait_quiet(ACTION_TOPIC, SETTLE_S, DRAIN_TIMEOUT_S)
                finally:
                    clock_stop.set()
                    clock.join()
            received = recorder.messages
        actions = [typestore().deserialize_cdr(data, ACTION_TYPE) for _, _, _, data in received]
        pairs = [
            (a.twist.angular.z, truth[stamp_ns(a.header)])
            for a in actions
            if stamp_ns(a.header) in truth
        ]
        return pairs, len(actions)
