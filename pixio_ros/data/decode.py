"""Bag messages -> numpy: colour images, depth in metres, point clouds (through the runtime codec).

CameraInfo is not decoded here: `PinholeCamera.from_camera_info` is the one conversion.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.runtime.image_codec import (
    ImageCodecError,
    decode_compressed_rgb,
    decode_depth,
    decode_rgb,
)
from pixio_ros.wire import RGB, XYZ, field_dtype

IMAGE_TYPE: Final = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE: Final = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE: Final = 'sensor_msgs/msg/CameraInfo'
COLOR_TYPES: Final = (IMAGE_TYPE, COMPRESSED_TYPE)
DEPTH_TYPES: Final = (IMAGE_TYPE,)


def decode_color(msg: Any) -> np.ndarray:
    """An Image or CompressedImage message -> (H, W, 3) uint8 RGB.

    Raises:
        ImageCodecError: unsupported encoding or corrupt payload (callers skip and count).
    """
    if hasattr(msg, 'format'):
        return decode_compressed_rgb(msg.format, msg.data)
    return decode_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)


def decode_depth_image(msg: Any) -> np.ndarray:
    """A 16UC1 (mm) or 32FC1 (m) Image -> (H, W) float32 metres, NaN where invalid."""
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)


def decode_point_cloud(msg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A PointCloud2 -> ((N, 3) float32 xyz, (N, 3) uint8 RGB from a packed `rgb` field or None).

    The numpy dtype is built from the message's own fields, offsets and point_step, so any
    field layout (padding, extra fields, big-endian) decodes.
    """
    big_endian = bool(msg.is_bigendian)
    order = '>' if big_endian else '<'
    fields = {f.name: f for f in msg.fields}
    missing = set(XYZ) - set(fields)
    if missing:
        raise DataError(f'PointCloud2 lacks fields {sorted(missing)}; it has {sorted(fields)}.')
    names = [name for name in (*XYZ, RGB) if name in fields]
    try:
        formats = [field_dtype(fields[n].datatype, big_endian=big_endian) for n in names]
    except ValueError as err:
        raise DataError(f'PointCloud2: {err}.') from err
    dtype = np.dtype(
        {
            'names': names,
            'formats': formats,
            'offsets': [fields[n].offset for n in names],
            'itemsize': msg.point_step,
        }
    )
    count = msg.width * msg.height
    raw = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), dtype=dtype, count=count)
    xyz = np.stack([raw['x'], raw['y'], raw['z']], axis=1).astype(np.float32)
    colors = None
    if RGB in names:
        packed = raw[RGB].astype(order + 'f4').view(order + 'u4')
        colors = np.stack(
            [(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=1
        ).astype(np.uint8)
    return xyz, colors


__all__ = [
    'CAMERA_INFO_TYPE',
    'COLOR_TYPES',
    'COMPRESSED_TYPE',
    'DEPTH_TYPES',
    'IMAGE_TYPE',
    'ImageCodecError',
    'decode_color',
    'decode_depth_image',
    'decode_point_cloud',
]
