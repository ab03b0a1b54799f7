"""Feature datasets of the turn-to-target task for the policy tests, written with `datasets`.

Frames are rendered by the sample bag's renderer and encoded by a real TorchScript artifact
through the Engine; the rows follow `pixio_ros.data.feature_schema` (what `pixio-ros features`
writes), with the expert's command as the signal column `cmd_vel:angular.z`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixio_ros.data import feature_schema as schema
from pixio_ros.data.sample_bag import FRAME_ID, FRAME_RATE_HZ, SampleBagSpec, render_frame
from pixio_ros.data.turn_task import turn_episode
from pixio_ros.evaluation.featurize import ROW_COLUMNS

ACTION = schema.signal_column('/cmd_vel', 'angular.z')
TASK_SIZE = (96, 128)


def task_rows(engine, episodes: range, frames: int, *, unmatched=frozenset()):
    """Schema rows of `episodes` x `frames` task frames; (episode, frame) in `unmatched` get NaN."""
    rows: dict[str, list] = {name: [] for name in (*ROW_COLUMNS, ACTION)}
    for episode in episodes:
        spec = SampleBagSpec(
            frames=frames,
            height=TASK_SIZE[0],
            width=TASK_SIZE[1],
            seed=episode,
            task='turn-to-target',
        )
        commands = turn_episode(episode, frames, 1.0 / FRAME_RATE_HZ).angular_z
        images = [render_frame(spec, index)[0] for index in range(frames)]
        predictions = engine.infer_batch(images, outputs=['features', 'embedding'])
        for index, prediction in enumerate(predictions):
            missing = (episode, index) in unmatched
            rows[schema.EPISODE].append(episode)
            rows[schema.FRAME].append(index)
            rows[schema.STAMP].append(index * round(1e9 / FRAME_RATE_HZ))
            rows[schema.FRAME_ID].append(FRAME_ID)
            rows[schema.FEATURES].append(prediction.features)
            rows[schema.EMBEDDING].append(prediction.embedding)
            grid = prediction.features.shape[:2]
            rows[schema.XYZ].append(np.full((*grid, 3), np.nan, np.float32))
            rows[schema.MATCHED].append(not missing)
            rows[ACTION].append(float('nan') if missing else float(commands[index]))
    return rows


def write_dataset(path: Path, rows: dict[str, list], *, dtype: str = 'float32') -> Path:
    """Save `rows` as the `datasets` dataset `pixio-ros features` writes (save_to_disk)."""
    import datasets

    height, width, channels = rows[schema.FEATURES][0].shape
    features = datasets.Features(
        {
            schema.EPISODE: datasets.Value('int64'),
            schema.FRAME: datasets.Value('int64'),
            schema.STAMP: datasets.Value('int64'),
            schema.FRAME_ID: datasets.Value('string'),
            schema.FEATURES: datasets.Array3D((height, width, channels), dtype),
            schema.EMBEDDING: datasets.Sequence(datasets.Value('float32'), length=channels),
            schema.XYZ: datasets.Array3D((height, width, 3), 'float32'),
            schema.MATCHED: datasets.Value('bool'),
            ACTION: datasets.Value('float64'),
        }
    )
    data = dict(rows)
    if dtype == 'float16':
        data[schema.FEATURES] = [f.astype(np.float16) for f in rows[schema.FEATURES]]
    datasets.Dataset.from_dict(data, features=features).save_to_disk(str(path))
    return path
