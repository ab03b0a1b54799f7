"""The rclpy adapter: sensor_msgs in (decoded to numpy), frame products out as messages.

The arrays come from `pixio_ros.runtime.products` and their byte layouts from `pixio_ros.wire`;
this module only copies them into rclpy message objects (once, through array.array payloads).
The rosbags twin of this adapter is `pixio_ros.data.messages`.
"""

from __future__ import annotations

import array
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan, PointCloud2, PointField
from std_msgs.msg import Header, String

from pixio_ros.runtime.alignment import AlignmentState
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.image_codec import DEFAULT_MAX_PIXELS, decode_compressed_rgb, decode_rgb
from pixio_ros.runtime.navigation import ScanArrays
from pixio_ros.runtime.products import FrameProducts
from pixio_ros.wire import (
    EncodedCloud,
    EncodedImage,
    encode_bgr8,
    encode_depth,
    encode_embedding,
    encode_features,
    encode_points,
)

__all__ = [
    'ALIGNMENT_KEYS',
    'FrameMessages',
    'alignment_msg',
    'laser_scan_msg',
    'camera_info_msg',
    'cloud_msg',
    'compressed_to_rgb',
    'frame_messages',
    'image_msg',
    'image_to_rgb',
    'model_info_msg',
]


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


def _payload(values: np.ndarray) -> array.array:
    """One copy of a numpy buffer into the array.array('B') rclpy stores uint8[] fields in."""
    payload = array.array('B')
    contiguous = np.ascontiguousarray(values)
    if contiguous.size:
        payload.frombytes(contiguous.reshape(-1).view(np.uint8).data)
    return payload


class _PayloadAllocator:
    """Hands `pixio_ros.wire` a numpy view of a zeroed array.array, kept for the message."""

    def __init__(self) -> None:
        self.payload = array.array('B')

    def __call__(self, size: int) -> np.ndarray:
        self.payload = array.array('B', bytes(size))
        return np.frombuffer(self.payload, dtype=np.uint8)


def _encoded_cloud(encode: Callable[[_PayloadAllocator], EncodedCloud], header: Header) -> Any:
    allocator = _PayloadAllocator()
    return cloud_msg(encode(allocator), header, payload=allocator.payload)


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs/Image (view where the encoding allows)."""
    return decode_rgb(
        msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
    )


def compressed_to_rgb(msg: CompressedImage, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a JPEG / PNG sensor_msgs/CompressedImage (size checked first)."""
    return decode_compressed_rgb(msg.format, msg.data, max_pixels=max_pixels)


def image_msg(encoded: EncodedImage, header: Header) -> Image:
    """sensor_msgs/Image of an encoded image, with `header`."""
    msg = _message(Image)
    msg.header = header
    msg.height = encoded.height
    msg.width = encoded.width
    msg.encoding = encoded.encoding
    msg.is_bigendian = int(encoded.is_bigendian)
    msg.step = encoded.step
    msg.data = _payload(encoded.data)
    return msg


def cloud_msg(
    encoded: EncodedCloud, header: Header, *, payload: array.array | None = None
) -> PointCloud2:
    """sensor_msgs/PointCloud2 of an encoded cloud; `payload` is its data when already owned."""
    msg = _message(PointCloud2)
    msg.header = header
    msg.height = encoded.height
    msg.width = encoded.width
    msg.fields = [
        PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in encoded.fields
    ]
    msg.is_bigendian = encoded.is_bigendian
    msg.point_step = encoded.point_step
    msg.row_step = encoded.row_step
    msg.is_dense = encoded.is_dense
    msg.data = payload if payload is not None else _payload(encoded.data)
    return msg


def camera_info_msg(camera: PinholeCamera, header: Header) -> CameraInfo:
    """sensor_msgs/CameraInfo of a camera model (binning and ROI: none, the full image)."""
    msg = CameraInfo()
    msg.header = header
    msg.width = int(camera.width)
    msg.height = int(camera.height)
    msg.distortion_model = camera.distortion_model
    msg.d = [float(value) for value in camera.d]
    msg.k = camera.k.reshape(-1).tolist()
    msg.r = camera.r.reshape(-1).tolist()
    msg.p = camera.p.reshape(-1).tolist()
    return msg


@dataclass
class FrameMessages:
    """The messages of one frame (None = not built)."""

    depth: Image | None = None
    depth_info: CameraInfo | None = None
    colored: Image | None = None
    points: PointCloud2 | None = None
    features: PointCloud2 | None = None
    embedding: PointCloud2 | None = None
    scan: LaserScan | None = None
    obstacles: PointCloud2 | None = None


def frame_messages(products: FrameProducts, header: Header) -> FrameMessages:
    """The rclpy messages of one frame's products, each with the input image's `header`."""
    out = FrameMessages()
    if products.depth is not None:
        out.depth = image_msg(encode_depth(products.depth), header)
        if products.depth_camera is not None:
            out.depth_info = camera_info_msg(products.depth_camera, header)
    if products.colored is not None:
        out.colored = image_msg(encode_bgr8(products.colored), header)
    points = products.points
    if points is not None:
        out.points = _encoded_cloud(
            lambda allocate: encode_points(
                points.points, rgb=points.rgb, confidence=points.confidence, allocate=allocate
            ),
            header,
        )
    features = products.features
    if features is not None:
        out.features = _encoded_cloud(
            lambda allocate: encode_features(features.xyz, features.values, allocate=allocate),
            header,
        )
    if products.embedding is not None:
        out.embedding = cloud_msg(encode_embedding(products.embedding), header)
    obstacles = products.obstacles
    if obstacles is not None:
        out.obstacles = _encoded_cloud(
            lambda allocate: encode_points(obstacles, allocate=allocate), header
        )
    return out


def laser_scan_msg(scan: ScanArrays, header: Header, frame_id: str) -> LaserScan:
    """sensor_msgs/LaserScan of the scan arrays; the input's stamp, the scan's own frame."""
    msg = LaserScan()
    msg.header.stamp = header.stamp
    msg.header.frame_id = frame_id
    msg.angle_min = scan.angle_min
    msg.angle_max = scan.angle_max
    msg.angle_increment = scan.angle_increment
    msg.range_min = scan.range_min
    msg.range_max = scan.range_max
    ranges = array.array('f')
    ranges.frombytes(np.ascontiguousarray(scan.ranges, dtype=np.float32).tobytes())
    msg.ranges = ranges
    return msg


# The keys of a depth/alignment status, in order (values are decimal strings).
ALIGNMENT_KEYS = ('scale', 'shift', 'pairs', 'residual', 'fitted', 'kept last scale')


def alignment_msg(state: AlignmentState, header: Header, name: str) -> DiagnosticArray:
    """depth/alignment: one status stamped like the frame, with ALIGNMENT_KEYS.

    WARN when the frame kept the last good scale (the message says why).
    """
    values = (
        f'{state.scale:.6g}',
        f'{state.shift:.6g}',
        str(state.pairs),
        f'{state.residual:.6g}',
        str(state.fitted).lower(),
        str(state.problem is not None).lower(),
    )
    status = DiagnosticStatus(
        level=DiagnosticStatus.WARN if state.problem else DiagnosticStatus.OK,
        name=name,
        message=state.problem or 'aligned',
        values=[KeyValue(key=k, value=v) for k, v in zip(ALIGNMENT_KEYS, values, strict=True)],
    )
    return DiagnosticArray(header=header, status=[status])


def model_info_msg(metadata: Mapping[str, Any]) -> String:
    """std_msgs/String with the artifact metadata (including sha256) as sorted JSON."""
    return String(data=json.dumps(dict(metadata), sort_keys=True))
