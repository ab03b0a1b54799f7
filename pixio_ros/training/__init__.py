"""Frozen-encoder training of depth and point-map heads from RGB-D bags or folders."""

from pixio_ros.training.config import TrainConfig
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.losses import point_map_loss, silog_loss
from pixio_ros.training.samples import (
    RGBDSample,
    load_bag_samples,
    load_folder_samples,
    split_by_time,
)
from pixio_ros.training.trainer import HeadTrainer, TrainResult, train_head

__all__ = [
    'HeadTrainer',
    'RGBDSample',
    'TrainConfig',
    'TrainResult',
    'TrainingError',
    'load_bag_samples',
    'load_folder_samples',
    'point_map_loss',
    'silog_loss',
    'split_by_time',
    'train_head',
]
