"""Decode the node's `features` and `embedding` clouds back into arrays / tensors for policies.

Works on rclpy messages and on rosbags' message dataclasses alike (it only reads the
PointCloud2 fields), and needs neither rclpy nor torch unless `as_torch` is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixio_ros.errors import PixioRosError
from pixio_ros.wire import EMBEDDING as EMBEDDING_FIELD
from pixio_ros.wire import FEATURE as FEATURE_FIELD
from pixio_ros.wire import FEATURE_F16 as FEATURE_F16_FIELD
from pixio_ros.wire import FLOAT32, UINT16, XYZ, field_dtype

__all__ = [
    'FeatureDecodeError',
    'FeatureGrid',
    'decode_embedding',
    'decode_features',
]


class FeatureDecodeError(PixioRosError):
    """A PointCloud2 that is not a pixio feature or embedding cloud."""


@dataclass
class FeatureGrid:
    """Patch features of one frame.

    Attributes:
        features: (h, w, C) float32 normed patch tokens on the patch grid (row-major).
        xyz: (h, w, 3) float32 patch centres in the camera frame, metres (NaN without depth).
        header: the message header (stamp and frame_id of the camera image).
    """

    features: np.ndarray
    xyz: np.ndarray
    header: Any

    @property
    def shape(self) -> tuple[int, int, int]:
        """(h, w, C)."""
        height, width, channels = self.features.shape
        return int(height), int(width), int(channels)

    def as_torch(self, device: str = 'cpu') -> Any:
        """(1, C, h, w) float32 torch tensor, the layout convolutional policy heads expect."""
        import torch

        chw = np.ascontiguousarray(self.features.transpose(2, 0, 1))
        return torch.from_numpy(chw).unsqueeze(0).to(device)


def _fields(msg: Any) -> dict[str, Any]:
    return {field.name: field for field in msg.fields}


def _payload(msg: Any) -> np.ndarray:
    data = msg.data
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _field_view(rows: np.ndarray, field: Any, datatype: int, big_endian: bool) -> np.ndarray:
    """(h, w, count) array of one field from the (h, w, point_step) bytes.

    Raises:
        FeatureDecodeError: the field has another datatype, no values, or does not fit a point.
    """
    if field.datatype != datatype:
        raise FeatureDecodeError(
            f'field {field.name!r} has datatype {field.datatype}, expected {datatype}; the '
            'message is not a pixio feature cloud'
        )
    dtype = field_dtype(datatype, big_endian=big_endian)
    width = dtype.itemsize * field.count
    if field.count < 1 or field.offset < 0 or field.offset + width > rows.shape[-1]:
        raise FeatureDecodeError(
            f'field {field.name!r} (offset {field.offset}, {field.count} x {dtype}) does not fit '
            f'in point_step {rows.shape[-1]}; the message is not a pixio feature cloud'
        )
    raw = np.ascontiguousarray(rows[..., field.offset : field.offset + width])
    return raw.view(dtype).reshape(*rows.shape[:2], field.count)


def _rows(msg: Any) -> np.ndarray:
    """The payload as (height, width, point_step) bytes, checked against the geometry."""
    if msg.height < 1 or msg.width < 1 or msg.point_step < 1:
        raise FeatureDecodeError(
            f'cloud is {msg.width}x{msg.height} with point_step {msg.point_step}; a pixio '
            'feature or embedding cloud has at least one point'
        )
    payload = _payload(msg)
    needed = msg.height * msg.width * msg.point_step
    if msg.row_step != msg.width * msg.point_step or payload.size < needed:
        raise FeatureDecodeError(
            f'cloud {msg.width}x{msg.height} (point_step {msg.point_step}, row_step '
            f'{msg.row_step}) has {payload.size} bytes, expected {needed}; message is truncated'
        )
    return payload[:needed].reshape(msg.height, msg.width, msg.point_step)


def decode_features(msg: Any) -> FeatureGrid:
    """Decode a `features` PointCloud2 (float32 `feature` or float16 `feature_f16` layout).

    Raises:
        FeatureDecodeError: the cloud lacks x/y/z or a feature field, or is truncated.
    """
    fields = _fields(msg)
    missing = [name for name in XYZ if name not in fields]
    if missing or not ({FEATURE_FIELD, FEATURE_F16_FIELD} & fields.keys()):
        raise FeatureDecodeError(
            f'cloud fields {sorted(fields)} lack {missing or FEATURE_FIELD!r}; subscribe to the '
            "node's `features` topic"
        )
    rows = _rows(msg)
    big_endian = bool(msg.is_bigendian)
    xyz = np.concatenate(
        [_field_view(rows, fields[name], FLOAT32, big_endian) for name in XYZ], axis=-1
    ).astype(np.float32)
    if xyz.shape[-1] != len(XYZ):
        raise FeatureDecodeError('fields x, y, z must hold one FLOAT32 value each')
    if FEATURE_FIELD in fields:
        features = _field_view(rows, fields[FEATURE_FIELD], FLOAT32, big_endian)
        features = features.astype(np.float32)
    else:
        bits = _field_view(rows, fields[FEATURE_F16_FIELD], UINT16, big_endian)
        features = bits.astype(np.uint16).view(np.float16).astype(np.float32)
    return FeatureGrid(features=features, xyz=xyz, header=msg.header)


def decode_embedding(msg: Any) -> np.ndarray:
    """(C,) float32 global embedding of an `embedding` PointCloud2 (1 x 1, field embedding).

    Raises:
        FeatureDecodeError: the cloud has no FLOAT32 `embedding` field or is truncated.
    """
    field = _fields(msg).get(EMBEDDING_FIELD)
    if field is None or field.datatype != FLOAT32:
        raise FeatureDecodeError(
            f'cloud fields {[f.name for f in msg.fields]} have no FLOAT32 {EMBEDDING_FIELD!r}; '
            "subscribe to the node's `embedding` topic"
        )
    rows = _rows(msg)
    values = _field_view(rows, field, FLOAT32, bool(msg.is_bigendian))
    return values.reshape(-1, field.count)[0].astype(np.float32)
