"""Write a feature dataset as a Hugging Face `datasets` dataset: what policy code loads as is.

Rows go through `datasets`' own ArrowWriter into one scratch Arrow file, and `Dataset.save_to_disk`
turns that into the shards, `dataset_info.json` and `state.json` that
`datasets.load_from_disk(OUT)` reads without this package. Tensor columns have fixed shapes
(Array2D / Array3D), so `.with_format('torch')` gives stacked tensors. The run's description
(artifact metadata and sha256, topics, alignment rule, episodes, counts) is a JSON document in
the dataset's `info.description`. The fingerprint is the sha256 of the rows and that document,
so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import datasets
import numpy as np
from datasets import Array2D, Array3D, Features, List, Value
from datasets.arrow_writer import ArrowWriter
from datasets.table import MemoryMappedTable

from pixio_ros.data import feature_schema as schema
from pixio_ros.files import file_sha256

__all__ = ['FeatureLayout', 'FeatureWriter', 'SignalLayout']

SCRATCH_NAME: Final = 'rows.arrow'
MAX_SHARD_SIZE: Final = '500MB'


@dataclass(frozen=True)
class SignalLayout:
    """One aligned-signal column: its name, values per row and whether it is a scalar."""

    column: str
    length: int
    scalar: bool


@dataclass(frozen=True)
class FeatureLayout:
    """The shapes of a dataset's columns, fixed by the artifact and the first frame.

    Attributes:
        grid: (h, w) of the patch grid.
        channels: C of the features and the embedding.
        features_dtype: the value type of the features column.
        depth_shape: (H, W) of the depth column, None without `--with-depth`.
        signals: the aligned-signal columns in option order.
    """

    grid: tuple[int, int]
    channels: int
    features_dtype: schema.FeaturesDtype
    depth_shape: tuple[int, int] | None
    signals: tuple[SignalLayout, ...]

    def features(self) -> Features:
        """The `datasets.Features` of the columns, in schema order."""
        height, width = self.grid
        columns: dict[str, Any] = {
            schema.EPISODE: Value('int64'),
            schema.FRAME: Value('int64'),
            schema.STAMP: Value('int64'),
            schema.FRAME_ID: Value('string'),
            schema.FEATURES: Array3D((height, width, self.channels), self.features_dtype),
            schema.EMBEDDING: List(Value('float32'), length=self.channels),
            schema.XYZ: Array3D((height, width, 3), 'float32'),
        }
        if self.depth_shape is not None:
            columns[schema.DEPTH] = Array2D(self.depth_shape, 'float32')
        columns[schema.MATCHED] = Value('bool')
        for signal in self.signals:
            value = Value('float64')
            columns[signal.column] = value if signal.scalar else List(value, length=signal.length)
        return Features(columns)

    def bytes_per_frame(self) -> int:
        """The tensor payload of one row (features, embedding, xyz, depth), without signals."""
        height, width = self.grid
        feature_bytes = np.dtype(self.features_dtype).itemsize * height * width * self.channels
        depth = 4 * self.depth_shape[0] * self.depth_shape[1] if self.depth_shape else 0
        return feature_bytes + 4 * self.channels + 4 * height * width * 3 + depth


class FeatureWriter:
    """Rows into a scratch Arrow file, then the dataset; use as a context manager.

    Args:
        scratch_dir: a directory removed afterwards (the staging directory of the output).
        layout: the column shapes.
    """

    def __init__(self, scratch_dir: Path, layout: FeatureLayout) -> None:
        self.layout = layout
        self._features = layout.features()
        self._path = scratch_dir / SCRATCH_NAME
        self._writer = ArrowWriter(features=self._features, path=str(self._path))
        self.rows = 0

    def __enter__(self) -> FeatureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write_batch(self, columns: Mapping[str, list[Any]]) -> None:
        """Append rows: each column a list with one value per row, in schema order."""
        if set(columns) != set(self._features):
            missing = sorted(set(self._features) - set(columns))
            extra = sorted(set(columns) - set(self._features))
            raise ValueError(f'rows lack columns {missing} / have unknown columns {extra}')
        count = len(next(iter(columns.values())))
        self._writer.write_batch({name: columns[name] for name in self._features})
        self.rows += count

    def save(self, target: Path, description: Mapping[str, Any]) -> None:
        """Finish the rows and write the dataset to `target` (a directory that must not exist).

        Args:
            target: where `save_to_disk` writes the shards and the dataset's json files.
            description: JSON-ready run description, stored as `info.description`.
        """
        self._writer.finalize()
        self._writer.close()
        text = json.dumps(description, sort_keys=True, indent=1)
        fingerprint = hashlib.sha256((file_sha256(self._path) + text).encode('utf-8')).hexdigest()[
            :16
        ]
        info = datasets.DatasetInfo(description=text, features=self._features)
        table = MemoryMappedTable.from_file(str(self._path))
        dataset = datasets.Dataset(table, info=info, fingerprint=fingerprint)
        was_enabled = datasets.utils.logging.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # the command shows its own progress
        try:
            dataset.save_to_disk(str(target), max_shard_size=MAX_SHARD_SIZE)
        finally:
            if was_enabled:
                datasets.enable_progress_bars()
