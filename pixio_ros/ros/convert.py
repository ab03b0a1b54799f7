"""numpy <-> sensor_msgs: Image, CompressedImage, CameraInfo, PointCloud2 and feature clouds.

Message payloads are filled from numpy buffers with one copy (array.array.frombytes on a
memoryview); decoding goes through `pixio_ros.runtime.image_codec` as zero-copy views.
"""

from __future__ import annotations

import array
import json
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header, String

from pixio_ros.runtime.camera import PinholeCamera, rescale_projection
from pixio_ros.runtime.cloud import SelectedPoints, pack_rgb
from pixio_ros.runtime.image_codec import decode_compressed_rgb, decode_rgb

__all__ = [
    'EMBEDDING_FIELD',
    'FEATURE_F16_FIELD',
    'FEATURE_FIELD',
    'camera_from_info',
    'colored_depth_msg',
    'compressed_to_rgb',
    'depth_image_msg',
    'embedding_cloud_msg',
    'feature_cloud_msg',
    'image_to_rgb',
    'model_info_msg',
    'point_cloud_msg',
    'scaled_camera_info',
]

FEATURE_FIELD = 'feature'
FEATURE_F16_FIELD = 'feature_f16'
EMBEDDING_FIELD = 'embedding'
FLOAT32_BYTES = 4
LITTLE_ENDIAN_FLOAT32 = np.dtype('<f4')
UINT16_BYTES = 2
XYZ = ('x', 'y', 'z')
# Colour-map range when the artifact does not say how deep it sees.
DEFAULT_COLORMAP_MAX_DEPTH_M = 10.0
UINT8_MAX = 255


def _message(msg_type: Any) -> Any:
    """A new message whose uint8[] setters keep an array.array('B') as is.

    Jazzy's generated setters copy array.array payloads element by element unless the message
    checks its fields (then they take the array as is); Humble's always take it as is and do
    not know the `check_fields` argument.
    """
    try:
        return msg_type(check_fields=True)
    except (AssertionError, TypeError):
        return msg_type()


def _zeroed_payload(size: int) -> tuple[array.array, np.ndarray]:
    """A zeroed array.array('B') of `size` bytes and a writable uint8 numpy view of it."""
    payload = array.array('B', bytes(size))
    return payload, np.frombuffer(payload, dtype=np.uint8)


def _payload(array_like: np.ndarray) -> array.array:
    """One copy of a numpy buffer into the array.array('B') rclpy stores uint8[] fields in."""
    payload = array.array('B')
    contiguous = np.ascontiguousarray(array_like)
    if contiguous.size:
        payload.frombytes(memoryview(contiguous.reshape(-1)).cast('B'))
    return payload


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs/Image (view where the encoding allows)."""
    return decode_rgb(
        msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
    )


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a JPEG / PNG sensor_msgs/CompressedImage."""
    return decode_compressed_rgb(msg.format, msg.data)


def camera_from_info(msg: CameraInfo) -> PinholeCamera:
    """Intrinsics of a CameraInfo (K, D, distortion model, width x height).

    Raises:
        CameraError: uncalibrated (zero K), zero size or an unsupported distortion model.
    """
    return PinholeCamera.from_k(
        msg.width, msg.height, msg.k, d=msg.d, distortion_model=msg.distortion_model
    )


def scaled_camera_info(msg: CameraInfo, width: int, height: int, header: Header) -> CameraInfo:
    """A copy of `msg` for the same camera at `width` x `height` (K and P rescaled).

    Uses the pixel-centre convention of `PinholeCamera.scaled_to`: f' = f s, c' = (c + .5) s - .5;
    P's Tx / Ty (f times baseline) scale with f. An all-zero (unset) P is copied as is.
    """
    sx = width / msg.width
    sy = height / msg.height
    out = CameraInfo()
    out.header = header
    out.width = int(width)
    out.height = int(height)
    out.distortion_model = msg.distortion_model
    out.d = list(msg.d)
    out.r = msg.r
    k = rescale_projection(np.reshape(msg.k, (3, 3)), sx, sy)
    p = np.array(msg.p, dtype=np.float64).reshape(3, 4)
    # An all-zero P means "not set" (monocular drivers often leave it so): it stays unset.
    if p.any():
        p = rescale_projection(p, sx, sy)
    out.k = k.reshape(-1).tolist()
    out.p = p.reshape(-1).tolist()
    out.binning_x = 0
    out.binning_y = 0
    return out


def depth_image_msg(depth: np.ndarray, header: Header) -> Image:
    """32FC1 Image (metres, NaN invalid) of a (H, W) float32 depth map, with `header`.

    The model's depth is always finite and positive: the heads map it into
    [min_depth, max_depth] (a sigmoid scaled by the artifact metadata `max_depth`, floored at a
    small minimum). A pixel at `max_depth` therefore means "at or beyond the head's range", not a
    measured distance; the model never marks a pixel invalid (NaN).
    """
    depth = np.ascontiguousarray(depth, dtype=LITTLE_ENDIAN_FLOAT32)
    msg = _message(Image)
    msg.header = header
    msg.height, msg.width = (int(n) for n in depth.shape)
    msg.encoding = '32FC1'
    msg.is_bigendian = 0  # the payload is always little-endian (LITTLE_ENDIAN_FLOAT32)
    msg.step = msg.width * FLOAT32_BYTES
    msg.data = _payload(depth)
    return msg


def colored_depth_msg(depth: np.ndarray, header: Header, max_depth: float) -> Image:
    """bgr8 Image for people: depth 0..max_depth metres through the turbo colour map.

    Invalid (NaN) pixels are black.
    """
    scale = UINT8_MAX / (max_depth if max_depth > 0 else DEFAULT_COLORMAP_MAX_DEPTH_M)
    valid = np.isfinite(depth)
    levels = np.clip(np.nan_to_num(depth, nan=0.0) * scale, 0, UINT8_MAX).astype(np.uint8)
    colored = cv2.applyColorMap(levels, cv2.COLORMAP_TURBO)
    colored[~valid] = 0
    msg = _message(Image)
    msg.header = header
    msg.height, msg.width = (int(n) for n in depth.shape)
    msg.encoding = 'bgr8'
    msg.step = msg.width * 3
    msg.data = _payload(colored)
    return msg


def _float_fields(names: tuple[str, ...]) -> list[PointField]:
    return [
        PointField(name=name, offset=index * FLOAT32_BYTES, datatype=PointField.FLOAT32, count=1)
        for index, name in enumerate(names)
    ]


def _cloud(
    header: Header,
    fields: list[PointField],
    body: np.ndarray | array.array,
    point_step: int,
    *,
    shape: tuple[int, int],
    dense: bool,
) -> PointCloud2:
    """PointCloud2 of height x width = `shape` points, `point_step` bytes each, from `body`.

    `body` is a numpy array (copied once) or an array.array('B') payload (used as is).
    """
    msg = _message(PointCloud2)
    msg.header = header
    msg.height, msg.width = (int(n) for n in shape)
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * msg.width
    msg.is_dense = dense
    msg.data = body if isinstance(body, array.array) else _payload(body)
    return msg


def point_cloud_msg(selected: SelectedPoints, header: Header) -> PointCloud2:
    """PointCloud2 with x y z (+ rgb packed as float32, PCL style) (+ confidence), float32.

    Organized (height x width of the image grid, NaN for invalid points) unless `selected` is
    dense (height 1, no invalid points).
    """
    names = list(XYZ)
    if selected.rgb is not None:
        names.append('rgb')
    if selected.confidence is not None:
        names.append('confidence')
    height, width = selected.points.shape[:2]
    payload, raw = _zeroed_payload(height * width * len(names) * FLOAT32_BYTES)
    channels = [np.ascontiguousarray(selected.points, dtype=np.float32)]
    if selected.rgb is not None:
        channels.append(pack_rgb(selected.rgb))
    if selected.confidence is not None:
        channels.append(np.ascontiguousarray(selected.confidence, dtype=np.float32))
    if raw.size:
        body = raw.view(np.float32).reshape(height, width, len(names))
        # cv2.merge interleaves the channels straight into the message payload in one
        # vectorised pass (numpy strided writes are ~5x slower at 640x480).
        merged = cv2.merge(channels, body) if len(channels) > 1 else channels[0]
        if merged is not body:
            body[...] = merged
    return _cloud(
        header,
        _float_fields(tuple(names)),
        payload,
        len(names) * FLOAT32_BYTES,
        shape=(height, width),
        dense=selected.dense,
    )


def feature_cloud_msg(
    xyz: np.ndarray, features: np.ndarray, header: Header, *, half: bool = False
) -> PointCloud2:
    """Organized h x w PointCloud2 of patch features (the layout in DESIGN.md).

    Args:
        xyz: (h, w, 3) float32 patch centres in metres, NaN without depth.
        features: (h, w, C) float32 patch features.
        header: the input image's header.
        half: publish `feature_f16` (UINT16 holding IEEE half bits) instead of FLOAT32 `feature`.
    """
    height, width, channels = features.shape
    offset = len(XYZ) * FLOAT32_BYTES
    if half:
        values = features.astype(np.float16).view(np.uint16)
        field = PointField(
            name=FEATURE_F16_FIELD, offset=offset, datatype=PointField.UINT16, count=channels
        )
        value_bytes = channels * UINT16_BYTES
    else:
        values = features.astype(np.float32, copy=False)
        field = PointField(
            name=FEATURE_FIELD, offset=offset, datatype=PointField.FLOAT32, count=channels
        )
        value_bytes = channels * FLOAT32_BYTES
    point_step = offset + value_bytes
    body = np.empty((height, width, point_step), dtype=np.uint8)
    body[..., :offset] = np.ascontiguousarray(xyz, dtype=np.float32).view(np.uint8)
    body[..., offset:] = np.ascontiguousarray(values).view(np.uint8)
    dense = bool(np.isfinite(xyz).all())
    return _cloud(
        header, [*_float_fields(XYZ), field], body, point_step, shape=(height, width), dense=dense
    )


def embedding_cloud_msg(embedding: np.ndarray, header: Header) -> PointCloud2:
    """1 x 1 PointCloud2 with one FLOAT32 field `embedding` of count C."""
    values = np.ascontiguousarray(embedding, dtype=np.float32).reshape(1, 1, -1)
    field = PointField(
        name=EMBEDDING_FIELD, offset=0, datatype=PointField.FLOAT32, count=values.shape[-1]
    )
    return _cloud(
        header, [field], values, values.shape[-1] * FLOAT32_BYTES, shape=(1, 1), dense=True
    )


def model_info_msg(metadata: Mapping[str, Any]) -> String:
    """std_msgs/String with the artifact metadata (including sha256) as sorted JSON."""
    return String(data=json.dumps(dict(metadata), sort_keys=True))
