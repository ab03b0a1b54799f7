"""FeatureDataset: the rows of a `pixio-ros features` dataset as torch tensors, actions included.

The dataset on disk is a Hugging Face `datasets` dataset (Arrow); its columns are named in
`pixio_ros.data.feature_schema`. Rows whose aligned signals had no message close enough
(`matched` false) are skipped, as their signal columns hold NaN. Everything else is read as
written: no normalisation, no resizing, so what a policy trains on is what the node publishes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pixio_ros.data.feature_schema import EMBEDDING, EPISODE, FEATURES, FRAME, MATCHED, XYZ
from pixio_ros.policy.errors import PolicyError

__all__ = ['FeatureDataset', 'FeatureTensors', 'load_feature_dataset', 'split_episodes']

REQUIRED_COLUMNS = (EPISODE, FRAME, FEATURES, EMBEDDING, XYZ, MATCHED)


def load_feature_dataset(path: Path) -> Any:
    """The `datasets.Dataset` at `path`, refused with one line when it is not a feature dataset.

    Raises:
        PolicyError: `path` is missing, not a saved dataset, or lacks the schema's columns.
    """
    import datasets

    path = Path(path)
    if not path.exists():
        raise PolicyError(
            f'{path} does not exist; write a feature dataset with `pixio-ros features BAG ... '
            f'--model ARTIFACT -o {path}`.'
        )
    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise PolicyError(
            f'{path} is not a saved Hugging Face dataset ({err}); pass the folder '
            '`pixio-ros features -o` wrote.'
        ) from err
    if isinstance(data, datasets.DatasetDict):
        raise PolicyError(
            f'{path} holds several splits ({", ".join(data)}); pass one split folder.'
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in data.column_names]
    if missing:
        raise PolicyError(
            f'{path} lacks the columns {", ".join(missing)} of a pixio feature dataset (it has '
            f'{", ".join(data.column_names)}); write it with `pixio-ros features`.'
        )
    return data


def split_episodes(episodes: Sequence[int], val_fraction: float) -> tuple[list[int], list[int]]:
    """(training, validation) episodes: the last `val_fraction` of them (at least one) validate.

    Whole episodes go to one side, so validation frames are never neighbours of training frames
    (consecutive frames of one episode are nearly identical). One episode trains and nothing
    validates.

    Raises:
        PolicyError: `val_fraction` outside [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise PolicyError(f'--val-fraction {val_fraction} must be in [0, 1).')
    ordered = sorted(set(int(e) for e in episodes))
    held = min(len(ordered) - 1, math.ceil(len(ordered) * val_fraction)) if val_fraction else 0
    held = max(held, 0)
    return ordered[: len(ordered) - held], ordered[len(ordered) - held :]


class FeatureTensors:
    """Rows of a feature dataset stacked in memory (a small dataset's whole training set).

    Attributes:
        features: (N, h, w, C) float32 or float16 patch features, as written.
        embedding: (N, C) float32.
        xyz: (N, h, w, 3) float32 patch centres (NaN without depth).
        action: (N, A) float32 the chosen signal columns, flattened in order.
        episode: (N,) int64 episode of each row.
        frame: (N,) int64 frame index within the episode.
    """

    def __init__(self, rows: dict[str, Tensor]):
        self.features = rows[FEATURES]
        self.embedding = rows[EMBEDDING].float()
        self.xyz = rows[XYZ].float()
        self.action = rows['action']
        self.episode = rows[EPISODE]
        self.frame = rows[FRAME]

    def __len__(self) -> int:
        return int(self.action.shape[0])


class FeatureDataset(torch.utils.data.Dataset[dict[str, Tensor]]):
    """A `pixio-ros features` dataset as a torch Dataset; only rows with `matched` true.

    Each item is a dict: `features` (h, w, C) as written (float32 or float16), `embedding` (C,),
    `xyz` (h, w, 3), `action` (A,) float32 (the `actions` columns, flattened in order),
    `episode_index` and `frame_index` (int64 scalars).

    Args:
        path: the dataset folder (`datasets.load_from_disk`).
        actions: signal columns that form the action, e.g. `['cmd_vel:angular.z']`
            (`pixio_ros.data.feature_schema.signal_column` names them).
        episodes: keep only these episodes (None = all).

    Raises:
        PolicyError: not a feature dataset, an unknown action column (the known ones are
            listed), a non-numeric action, or no row left.
    """

    def __init__(
        self,
        path: Path,
        actions: Sequence[str],
        *,
        episodes: Collection[int] | None = None,
    ):
        self.path = Path(path)
        self.actions = tuple(actions)
        data = load_feature_dataset(self.path)
        unknown = [name for name in self.actions if name not in data.column_names]
        if not self.actions or unknown:
            signals = [name for name in data.column_names if ':' in name]
            raise PolicyError(
                f'--action {",".join(unknown) or "(none)"}: not a column of {self.path}; its '
                f'signal columns are {", ".join(signals) or "none (pixio-ros features --with)"}.'
            )
        columns = data.select_columns([EPISODE, MATCHED]).with_format('numpy')
        matched = np.asarray(columns[MATCHED], dtype=bool)
        keep = matched.copy()
        self.all_episodes = sorted(set(np.asarray(columns[EPISODE]).tolist()))
        if episodes is not None:
            chosen = np.array(sorted(episodes), dtype=np.int64)
            keep &= np.isin(np.asarray(columns[EPISODE]), chosen)
        self.unmatched = int((~matched).sum())
        self.indices = np.flatnonzero(keep).tolist()
        if not self.indices:
            raise PolicyError(
                f'{self.path}: no row with matched true in episodes {sorted(episodes or [])}; '
                'check the episodes and the unmatched count `pixio-ros features` printed.'
            )
        self._data = data.select_columns(list(REQUIRED_COLUMNS) + list(self.actions))
        self._data = self._data.with_format('torch')
        self.action_names = self._action_names()

    def _action_names(self) -> tuple[str, ...]:
        """One name per action dimension: the column, or `column[i]` for an array column."""
        names: list[str] = []
        first = self._data[self.indices[0]]
        for column in self.actions:
            value = first[column]
            if not isinstance(value, Tensor) or not value.dtype.is_floating_point:
                raise PolicyError(
                    f'--action {column} holds {type(value).__name__}, not numbers; pick a '
                    'numeric signal column.'
                )
            if value.ndim == 0:
                names.append(column)
            else:
                names.extend(f'{column}[{i}]' for i in range(value.numel()))
        return tuple(names)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        row = self._data[self.indices[index]]
        action = torch.cat([row[c].reshape(-1).float() for c in self.actions])
        return {
            FEATURES: row[FEATURES],
            EMBEDDING: row[EMBEDDING].float(),
            XYZ: row[XYZ].float(),
            'action': action,
            EPISODE: row[EPISODE],
            FRAME: row[FRAME],
        }

    def tensors(self) -> FeatureTensors:
        """Every row stacked in memory (fine for the example's datasets; stream large ones)."""
        rows = self._data[self.indices]
        action = torch.cat(
            [rows[c].reshape(len(self.indices), -1).float() for c in self.actions], dim=1
        )
        return FeatureTensors({**{k: rows[k] for k in REQUIRED_COLUMNS}, 'action': action})
