"""FeatureDataset: schema columns to tensors, float16 as written, one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from task_features import ACTION, task_rows, write_dataset

from pixio_ros.data import feature_schema as schema
from pixio_ros.policy import FeatureDataset, PolicyError


@pytest.fixture(scope='module')
def rows(task_engine):
    return task_rows(task_engine, range(2), 3, unmatched={(1, 0)})


def test_items_are_the_written_rows_with_unmatched_ones_skipped(rows, tmp_path):
    data = FeatureDataset(write_dataset(tmp_path / 'd', rows), [ACTION])
    kept = [i for i, matched in enumerate(rows[schema.MATCHED]) if matched]
    assert len(data) == len(kept) == 5
    for position, row in enumerate(kept):
        item = data[position]
        assert torch.equal(item[schema.FEATURES], torch.from_numpy(rows[schema.FEATURES][row]))
        assert torch.equal(item[schema.EMBEDDING], torch.from_numpy(rows[schema.EMBEDDING][row]))
        assert item['action'].tolist() == pytest.approx([rows[ACTION][row]], rel=1e-6)
        assert int(item[schema.EPISODE]) == rows[schema.EPISODE][row]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    batch = next(iter(loader))
    assert batch[schema.FEATURES].shape == (2, *rows[schema.FEATURES][0].shape)


def test_float16_features_read_as_their_half_values(rows, tmp_path):
    data = FeatureDataset(write_dataset(tmp_path / 'h', rows, dtype='float16'), [ACTION])
    half = rows[schema.FEATURES][0].astype(np.float16).astype(np.float32)
    assert torch.equal(data[0][schema.FEATURES].float(), torch.from_numpy(half))


def test_unknown_action_column_names_the_known_ones(rows, tmp_path):
    path = write_dataset(tmp_path / 'd', rows)
    with pytest.raises(
        PolicyError,
        match=r'--action cmd_vel:linear\.x: not a column .* its signal '
        r'columns are cmd_vel:angular\.z\.',
    ):
        FeatureDataset(path, ['cmd_vel:linear.x'])


def test_a_folder_that_is_no_dataset_is_refused(tmp_path):
    with pytest.raises(PolicyError, match='does not exist; write a feature dataset'):
        FeatureDataset(tmp_path / 'missing', [ACTION])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(PolicyError, match='is not a saved Hugging Face dataset'):
        FeatureDataset(tmp_path / 'empty', [ACTION])
