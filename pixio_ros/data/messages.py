"""Build and serialise sensor_msgs messages with rosbags' typestore (no rclpy needed).

Used to write bags (the synthetic sample, eval's output bag) on machines without ROS. Layouts
follow the node's topics: depth 32FC1 metres, PointCloud2 x y z (+ rgb packed as float32).
"""

from __future__ import annotations

import functools
from typing import Any, Final

import numpy as np

from pixio_ros.runtime.cloud import pack_rgb

NS_PER_S: Final = 1_000_000_000
JPEG_FORMAT: Final = 'rgb8; jpeg compressed bgr8'  # what image_transport's compressed plugin writes
POINTFIELD_FLOAT32: Final = 7
POINTFIELD_UINT16: Final = 4
IMAGE_CHANNELS: Final = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, '16UC1': 1, '32FC1': 1}
IMAGE_DTYPES: Final = {'rgb8': np.uint8, 'bgr8': np.uint8, 'mono8': np.uint8,
                       '16UC1': np.dtype('<u2'), '32FC1': np.dtype('<f4')}


@functools.cache
def typestore() -> Any:
    """The ROS 2 Jazzy typestore (message classes and CDR (de)serialisation)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def msg_class(msgtype: str) -> Any:
    """The typestore's dataclass for e.g. 'sensor_msgs/msg/Image'."""
    return typestore().types[msgtype]


def serialize(msg: Any) -> bytes:
    """CDR bytes of a typestore message, ready for a rosbag2 writer or an rclpy raw publish."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def header(stamp_ns: int, frame_id: str) -> Any:
    """A std_msgs/Header for a stamp in integer nanoseconds."""
    time_cls = msg_class('builtin_interfaces/msg/Time')
    stamp = time_cls(sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S)
    return msg_class('std_msgs/msg/Header')(stamp=stamp, frame_id=frame_id)


def stamp_ns(msg_header: Any) -> int:
    """Integer nanoseconds of a header's stamp (any object with stamp.sec / stamp.nanosec)."""
    return int(msg_header.stamp.sec) * NS_PER_S + int(msg_header.stamp.nanosec)


def image_message(array: np.ndarray, encoding: str, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/Image from an (H, W[, C]) array; rgb8/bgr8/mono8 uint8, 16UC1, 32FC1."""
    dtype = np.dtype(IMAGE_DTYPES[encoding])
    data = np.ascontiguousarray(array, dtype=dtype)
    height, width = data.shape[:2]
    step = width * IMAGE_CHANNELS[encoding] * dtype.itemsize
    return msg_class('sensor_msgs/msg/Image')(
        header=header(stamp, frame_id), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=step, data=data.view(np.uint8).reshape(-1),
    )


def compressed_image_message(data: bytes, stamp: int, frame_id: str,
                             fmt: str = JPEG_FORMAT) -> Any:
    """sensor_msgs/CompressedImage holding already encoded bytes."""
    return msg_class('sensor_msgs/msg/CompressedImage')(
        header=header(stamp, frame_id), format=fmt, data=np.frombuffer(data, dtype=np.uint8),
    )


def camera_info_message(k: np.ndarray, height: int, width: int, stamp: int,
                        frame_id: str) -> Any:
    """sensor_msgs/CameraInfo of a rectified pinhole camera (plumb_bob, zero distortion)."""
    projection = np.zeros((3, 4))
    projection[:, :3] = k
    roi = msg_class('sensor_msgs/msg/RegionOfInterest')(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return msg_class('sensor_msgs/msg/CameraInfo')(
        header=header(stamp, frame_id), height=height, width=width,
        distortion_model='plumb_bob', d=np.zeros(5), k=np.asarray(k, np.float64).reshape(9),
        r=np.eye(3).reshape(9), p=projection.reshape(12), binning_x=0, binning_y=0, roi=roi,
    )


def _point_field(name: str, offset: int, datatype: int, count: int) -> Any:
    return msg_class('sensor_msgs/msg/PointField')(
        name=name, offset=offset, datatype=datatype, count=count
    )


def point_cloud_message(xyz: np.ndarray, stamp: int, frame_id: str, *,
                        rgb: np.ndarray | None = None,
                        extra: dict[str, np.ndarray] | None = None) -> Any:
    """sensor_msgs/PointCloud2 of float32 fields.

    Args:
        xyz: (H, W, 3) organized (NaN = no point) or (N, 3) metres.
        stamp: header stamp, nanoseconds.
        frame_id: the camera's optical frame.
        rgb: optional (..., 3) uint8 colours, packed into one float32 `rgb` field.
        extra: optional more fields, name -> (..., C) float32 (one field of count C each).
    """
    organized = xyz.ndim == 3
    height, width = (xyz.shape[0], xyz.shape[1]) if organized else (1, xyz.shape[0])
    columns: list[tuple[str, np.ndarray]] = [
        ('x', xyz[..., 0:1]), ('y', xyz[..., 1:2]), ('z', xyz[..., 2:3])
    ]
    if rgb is not None:
        columns.append(('rgb', pack_rgb(rgb)[..., None]))
    for name, values in (extra or {}).items():
        columns.append((name, values if values.ndim == xyz.ndim else values[..., None]))
    fields, offset = [], 0
    for name, values in columns:
        fields.append(_point_field(name, offset, POINTFIELD_FLOAT32, values.shape[-1]))
        offset += 4 * values.shape[-1]
    flat = np.concatenate(
        [v.astype(np.float32).reshape(height * width, -1) for _, v in columns], axis=1
    )
    dense = bool(np.isfinite(flat[:, :3]).all())
    return msg_class('sensor_msgs/msg/PointCloud2')(
        header=header(stamp, frame_id), height=height, width=width, fields=fields,
        is_bigendian=False, point_step=offset, row_step=offset * width,
        data=np.ascontiguousarray(flat).view(np.uint8).reshape(-1), is_dense=dense,
    )
