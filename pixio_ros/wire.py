"""The byte layouts the node publishes: PointField datatypes, cloud fields, image encodings.

One home for every wire constant, so the node (rclpy messages), the eval bag (rosbags messages)
and the policy-side decoder (`pixio_ros.features`) cannot drift apart. Everything here is numpy:
the payload of each cloud or image is built once, little-endian (``is_bigendian`` false) on any
host, and the transport adapters only copy it into their message type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

__all__ = [
    'COLORED_TOPIC',
    'DEPTH_INFO_TOPIC',
    'DEPTH_TOPIC',
    'EMBEDDING_TOPIC',
    'FEATURES_TOPIC',
    'FRAME_TOPICS',
    'POINTS_TOPIC',
    'CONFIDENCE',
    'DEPTH_COLORED_ENCODING',
    'DEPTH_ENCODING',
    'EMBEDDING',
    'FEATURE',
    'FEATURE_F16',
    'FLOAT32',
    'RGB',
    'UINT16',
    'XYZ',
    'CloudField',
    'EncodedCloud',
    'EncodedImage',
    'encode_bgr8',
    'encode_depth',
    'encode_embedding',
    'encode_features',
    'encode_points',
    'field_dtype',
    'pack_rgb',
    'type_code',
    'xyz_finite',
]

# sensor_msgs/PointField datatypes.
INT8: Final = 1
UINT8: Final = 2
INT16: Final = 3
UINT16: Final = 4
INT32: Final = 5
UINT32: Final = 6
FLOAT32: Final = 7
FLOAT64: Final = 8
DATATYPE_CODES: Final = {
    INT8: 'i1',
    UINT8: 'u1',
    INT16: 'i2',
    UINT16: 'u2',
    INT32: 'i4',
    UINT32: 'u4',
    FLOAT32: 'f4',
    FLOAT64: 'f8',
}

# Field names of the published clouds.
XYZ: Final = ('x', 'y', 'z')
RGB: Final = 'rgb'
CONFIDENCE: Final = 'confidence'
FEATURE: Final = 'feature'
FEATURE_F16: Final = 'feature_f16'
EMBEDDING: Final = 'embedding'

# Output topics, relative to the node's namespace (the eval bag puts them under /pixio).
DEPTH_TOPIC: Final = 'depth'
DEPTH_INFO_TOPIC: Final = 'depth/camera_info'
COLORED_TOPIC: Final = 'depth/colored'
POINTS_TOPIC: Final = 'points'
FEATURES_TOPIC: Final = 'features'
EMBEDDING_TOPIC: Final = 'embedding'
FRAME_TOPICS: Final = (
    DEPTH_TOPIC,
    DEPTH_INFO_TOPIC,
    COLORED_TOPIC,
    POINTS_TOPIC,
    FEATURES_TOPIC,
    EMBEDDING_TOPIC,
)

# Image encodings of the published images (REP 118 depth in metres; colour map for people).
DEPTH_ENCODING: Final = '32FC1'
DEPTH_COLORED_ENCODING: Final = 'bgr8'

LITTLE_FLOAT32: Final = np.dtype('<f4')
LITTLE_UINT16: Final = np.dtype('<u2')
FLOAT32_BYTES: Final = 4
RGB_CHANNELS: Final = 3

Allocator = Callable[[int], np.ndarray]
"""Returns a zeroed, writable uint8 buffer of the given size (lets rclpy own the payload)."""


def _zeros(size: int) -> np.ndarray:
    return np.zeros(size, dtype=np.uint8)


def field_dtype(datatype: int, *, big_endian: bool = False) -> np.dtype:
    """The numpy dtype of one value of a PointField datatype.

    Raises:
        ValueError: the datatype is not one of sensor_msgs/PointField's eight.
    """
    code = type_code(datatype)
    if code is None:
        raise ValueError(
            f'PointField datatype {datatype!r} is not one of {sorted(DATATYPE_CODES)} '
            '(sensor_msgs/PointField INT8..FLOAT64)'
        )
    return np.dtype(('>' if big_endian else '<') + code)


def type_code(datatype: object) -> str | None:
    """The numpy type code ('f4', ...) of a PointField datatype, or None when it is not one."""
    if isinstance(datatype, bool) or not isinstance(datatype, int):
        return None
    return DATATYPE_CODES.get(datatype)


@dataclass(frozen=True)
class CloudField:
    """One sensor_msgs/PointField: `count` values of `datatype` at byte `offset` of a point."""

    name: str
    offset: int
    datatype: int
    count: int = 1


@dataclass(frozen=True)
class EncodedCloud:
    """A PointCloud2's layout and payload, independent of the message library.

    Attributes:
        height: rows (1 for a dense cloud).
        width: points per row.
        fields: the point layout.
        point_step: bytes per point.
        is_dense: True when every point's x, y and z are finite.
        data: (height * width * point_step,) uint8 little-endian payload.
    """

    height: int
    width: int
    fields: tuple[CloudField, ...]
    point_step: int
    is_dense: bool
    data: np.ndarray
    is_bigendian: bool = False

    @property
    def row_step(self) -> int:
        """Bytes per row."""
        return self.point_step * self.width


@dataclass(frozen=True)
class EncodedImage:
    """A sensor_msgs/Image's geometry and payload (little-endian), independent of the library."""

    height: int
    width: int
    encoding: str
    step: int
    data: np.ndarray
    is_bigendian: bool = False


def _float_fields(names: tuple[str, ...]) -> tuple[CloudField, ...]:
    return tuple(
        CloudField(name, index * FLOAT32_BYTES, FLOAT32) for index, name in enumerate(names)
    )


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) float32 holding 0x00RRGGBB bits (the PCL `rgb` field).

    Little-endian bytes of 0x00RRGGBB are B, G, R, 0: OpenCV's BGRA order with alpha cleared,
    which one cv2 pass produces.
    """
    shape = rgb.shape[:-1]
    if rgb.size == 0:
        return np.empty(shape, dtype=np.float32)
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(1, -1, RGB_CHANNELS)
    bgra = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = 0
    return bgra.view(np.float32)[..., 0].reshape(shape)


def xyz_finite(xyz: np.ndarray) -> bool:
    """The PointCloud2 `is_dense` rule: every point's x, y and z are finite."""
    return bool(np.isfinite(xyz).all())


def encode_points(
    xyz: np.ndarray,
    *,
    rgb: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    allocate: Allocator = _zeros,
) -> EncodedCloud:
    """A cloud of x y z (+ rgb packed as float32, PCL style) (+ confidence), all FLOAT32.

    Args:
        xyz: (H, W, 3) float32 metres, NaN for no point (organized, or H = 1 when dense).
        rgb: (H, W, 3) uint8 colours of the same points, or None.
        confidence: (H, W) float32, or None.
        allocate: buffer factory for the payload.
    """
    names = list(XYZ)
    channels = [np.ascontiguousarray(xyz, dtype=np.float32)]
    if rgb is not None:
        names.append(RGB)
        channels.append(pack_rgb(rgb))
    if confidence is not None:
        names.append(CONFIDENCE)
        channels.append(np.ascontiguousarray(confidence, dtype=np.float32))
    height, width = xyz.shape[:2]
    point_step = len(names) * FLOAT32_BYTES
    data = allocate(height * width * point_step)
    if data.size:
        body = data.view(LITTLE_FLOAT32).reshape(height, width, len(names))
        # cv2.merge interleaves the channels straight into the payload in one vectorised pass
        # (numpy strided writes are ~5x slower at 640x480).
        merged = cv2.merge(channels, body) if len(channels) > 1 else channels[0]
        if merged is not body:
            body[...] = merged
    return EncodedCloud(
        height=int(height),
        width=int(width),
        fields=_float_fields(tuple(names)),
        point_step=point_step,
        is_dense=xyz_finite(xyz),
        data=data,
    )


def encode_features(
    xyz: np.ndarray, features: np.ndarray, *, allocate: Allocator = _zeros
) -> EncodedCloud:
    """Organized h x w cloud: x y z FLOAT32, then `feature` FLOAT32 (or `feature_f16` UINT16).

    Args:
        xyz: (h, w, 3) float32 patch centres, metres, NaN without depth.
        features: (h, w, C) patch features; float16 values are published as IEEE half bits in
            a UINT16 `feature_f16` field, anything else as FLOAT32 `feature`.
        allocate: buffer factory for the payload.
    """
    height, width, channels = features.shape
    offset = len(XYZ) * FLOAT32_BYTES
    if features.dtype == np.float16:
        values = features.astype('<f2', copy=False).view(LITTLE_UINT16)
        field = CloudField(FEATURE_F16, offset, UINT16, channels)
    else:
        values = features.astype(LITTLE_FLOAT32, copy=False)
        field = CloudField(FEATURE, offset, FLOAT32, channels)
    point_step = offset + values.dtype.itemsize * channels
    data = allocate(height * width * point_step)
    body = data.reshape(height, width, point_step)
    body[..., :offset] = np.ascontiguousarray(xyz, dtype=LITTLE_FLOAT32).view(np.uint8)
    body[..., offset:] = np.ascontiguousarray(values).view(np.uint8)
    return EncodedCloud(
        height=int(height),
        width=int(width),
        fields=(*_float_fields(XYZ), field),
        point_step=point_step,
        is_dense=xyz_finite(xyz),
        data=data,
    )


def encode_embedding(embedding: np.ndarray, *, allocate: Allocator = _zeros) -> EncodedCloud:
    """1 x 1 cloud with one FLOAT32 field `embedding` of count C."""
    values = np.ascontiguousarray(embedding, dtype=LITTLE_FLOAT32).reshape(-1)
    data = allocate(values.nbytes)
    data[...] = values.view(np.uint8)
    return EncodedCloud(
        height=1,
        width=1,
        fields=(CloudField(EMBEDDING, 0, FLOAT32, int(values.size)),),
        point_step=int(values.nbytes),
        is_dense=True,
        data=data,
    )


def encode_depth(depth: np.ndarray) -> EncodedImage:
    """32FC1 image of a (H, W) depth map in metres (NaN where invalid)."""
    values = np.ascontiguousarray(depth, dtype=LITTLE_FLOAT32)
    height, width = values.shape
    return EncodedImage(
        height=int(height),
        width=int(width),
        encoding=DEPTH_ENCODING,
        step=int(width) * FLOAT32_BYTES,
        data=values.reshape(-1).view(np.uint8),
    )


def encode_bgr8(bgr: np.ndarray) -> EncodedImage:
    """bgr8 image of a (H, W, 3) uint8 array."""
    values = np.ascontiguousarray(bgr, dtype=np.uint8)
    height, width = values.shape[:2]
    return EncodedImage(
        height=int(height),
        width=int(width),
        encoding=DEPTH_COLORED_ENCODING,
        step=int(width) * RGB_CHANNELS,
        data=values.reshape(-1),
    )
