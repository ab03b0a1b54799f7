"""Bags (rosbags), stamp pairing, the synthetic scene, and RGB-D samples from every source.

Samples come from bags, folders and the public depth datasets (NYUv2, KITTI, TUM RGB-D).
"""

from pixio_ros.data.bag import BagReader, RawMessage, StampedMessage
from pixio_ros.data.camera_topics import default_camera_info_topic, default_image_topic
from pixio_ros.data.datasets import (
    DATASET_NAMES,
    DATASETS,
    Dataset,
    DatasetInfo,
    get_dataset_info,
    open_dataset,
)
from pixio_ros.data.decode import (
    decode_color,
    decode_depth_image,
    decode_point_cloud,
)
from pixio_ros.data.errors import DataError
from pixio_ros.data.ply import write_ply
from pixio_ros.data.sample_bag import SampleBagSpec, render_frame, write_sample_bag
from pixio_ros.data.samples import RGBDSample
from pixio_ros.data.scene import (
    Scene,
    build_scene,
    camera_path,
    realistic_camera,
    realistic_intrinsics,
)
from pixio_ros.data.signals import (
    ALIGNMENT_RULE,
    AlignedSignal,
    SignalRequest,
    SignalTrack,
    align_signal,
    parse_signal_request,
    read_signal_tracks,
)
from pixio_ros.data.stamps import StampPairing, nearest_index, pair_stamps

__all__ = [
    'ALIGNMENT_RULE',
    'AlignedSignal',
    'SignalRequest',
    'SignalTrack',
    'align_signal',
    'default_camera_info_topic',
    'default_image_topic',
    'parse_signal_request',
    'read_signal_tracks',
    'DATASETS',
    'DATASET_NAMES',
    'BagReader',
    'DataError',
    'Dataset',
    'DatasetInfo',
    'RGBDSample',
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
    'get_dataset_info',
    'nearest_index',
    'open_dataset',
    'pair_stamps',
    'realistic_camera',
    'realistic_intrinsics',
    'render_frame',
    'write_ply',
    'write_sample_bag',
]
