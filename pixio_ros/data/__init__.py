"""Bags in and out (rosbags), stamp pairing, and the synthetic RGB-D sample scene."""

from pixio_ros.data.bag import BagReader, RawMessage, StampedMessage
from pixio_ros.data.decode import (
    decode_color,
    decode_depth_image,
    decode_point_cloud,
)
from pixio_ros.data.errors import DataError
from pixio_ros.data.ply import write_ply
from pixio_ros.data.sample_bag import SampleBagSpec, render_frame, write_sample_bag
from pixio_ros.data.scene import (
    Scene,
    build_scene,
    camera_path,
    realistic_camera,
    realistic_intrinsics,
)
from pixio_ros.data.stamps import StampPairing, nearest_index, pair_stamps

__all__ = [
    'BagReader',
    'DataError',
    'RawMessage',
    'SampleBagSpec',
    'StampPairing',
    'StampedMessage',
    'Scene',
    'build_scene',
    'camera_path',
    'decode_color',
    'decode_depth_image',
    'decode_point_cloud',
    'nearest_index',
    'pair_stamps',
    'realistic_camera',
    'realistic_intrinsics',
    'render_frame',
    'write_ply',
    'write_sample_bag',
]
