"""The real path on a small scale: make-sample-bag -> pixio-ros features -> train-policy."""

from __future__ import annotations

import numpy as np
import torch
from task_features import ACTION, TASK_SIZE

from pixio_ros.cli import main
from pixio_ros.data.bag import BagReader
from pixio_ros.data.messages import typestore
from pixio_ros.data.sample_bag import CMD_VEL_TOPIC, COLOR_INFO_TOPIC
from pixio_ros.policy import FeatureDataset, load_policy

EPISODES, FRAMES = 3, 5


def test_the_features_command_output_trains_a_policy(tiny_artifact, tmp_path):
    size = f'{TASK_SIZE[0]}x{TASK_SIZE[1]}'
    bags, data, run = tmp_path / 'demos', tmp_path / 'demos_ds', tmp_path / 'run'
    assert main(
        ['make-sample-bag', str(bags), '--task', 'turn-to-target', '--episodes', str(EPISODES),
         '--frames', str(FRAMES), '--size', size]
    ) == 0  # fmt: skip
    episode_bags = sorted(str(path) for path in bags.iterdir())
    model = tiny_artifact('depth', TASK_SIZE)
    assert main(
        ['features', *episode_bags, '--model', str(model), '-o', str(data),
         '--with', '/cmd_vel:angular.z', '--camera-info-topic', COLOR_INFO_TOPIC, '--device', 'cpu']
    ) == 0  # fmt: skip
    dataset = FeatureDataset(data, [ACTION])
    assert len(dataset) == EPISODES * FRAMES and dataset.unmatched == 0
    recorded = []
    for bag in episode_bags:
        with BagReader(bag) as reader:
            recorded += [
                typestore().deserialize_cdr(raw.data, raw.msgtype).angular.z
                for raw in reader.raw([CMD_VEL_TOPIC])
            ]
    rows = dataset.tensors()
    # Each command is logged at its frame's stamp, so the aligned column is the command itself.
    np.testing.assert_allclose(rows.action[:, 0].numpy(), recorded, rtol=1e-6)
    assert torch.isfinite(rows.xyz).all()  # CameraInfo given: patch centres back-projected
    assert main(
        ['train-policy', str(data), '--action', ACTION, '-o', str(run), '--epochs', '2', '--quiet',
         '--device', 'cpu', '--val-fraction', '0.34']
    ) == 0  # fmt: skip
    policy = load_policy(run / 'last.safetensors')
    assert policy.spec.grid == tuple(rows.features.shape[1:3])
