"""Fixtures of the policy tests: a tiny artifact's features of the turn-to-target task."""

from __future__ import annotations

import pytest
from task_features import TASK_SIZE, task_rows, write_dataset

# Episodes x frames: enough for the head to beat the mean action on held-out episodes.
TASK_EPISODES = 20
TASK_FRAMES = 12


@pytest.fixture(scope='session')
def task_engine(tiny_artifact):
    from pixio_ros.runtime.engine import Engine

    return Engine(tiny_artifact('depth', TASK_SIZE), device='cpu', warmup_runs=0)


@pytest.fixture(scope='session')
def task_dataset(tmp_path_factory, task_engine):
    """The task dataset: TASK_EPISODES episodes; episode 0 has two unmatched frames."""
    rows = task_rows(task_engine, range(TASK_EPISODES), TASK_FRAMES, unmatched={(0, 3), (0, 4)})
    return write_dataset(tmp_path_factory.mktemp('features') / 'task', rows)
