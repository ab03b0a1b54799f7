"""Build and serialise ROS messages with rosbags' typestore (no rclpy needed).

Used to write bags (the synthetic sample, eval's output bag) on machines without ROS. Layouts
follow the node's topics: depth 32FC1 metres, PointCloud2 x y z (+ rgb packed as float32).
"""

from __future__ import annotations

import functools
from typing import Any, Final

import numpy as np

from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.products import FrameProducts
from pixio_ros.units import NS_PER_S
from pixio_ros.wire import (
    COLORED_TOPIC,
    DEPTH_ENCODING,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    EMBEDDING_TOPIC,
    FEATURES_TOPIC,
    POINTS_TOPIC,
    EncodedCloud,
    EncodedImage,
    encode_bgr8,
    encode_depth,
    encode_embedding,
    encode_features,
    encode_points,
)

JPEG_FORMAT: Final = 'rgb8; jpeg compressed bgr8'  # what image_transport's compressed plugin writes
IMAGE_CHANNELS: Final = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, '16UC1': 1, DEPTH_ENCODING: 1}
IMAGE_DTYPES: Final[dict[str, np.dtype]] = {
    'rgb8': np.dtype(np.uint8),
    'bgr8': np.dtype(np.uint8),
    'mono8': np.dtype(np.uint8),
    '16UC1': np.dtype('<u2'),
    DEPTH_ENCODING: np.dtype('<f4'),
}


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


def twist_message(*, linear_x: float = 0.0, angular_z: float = 0.0) -> Any:
    """geometry_msgs/Twist of a ground robot's command: forward m/s, yaw rate rad/s (REP 103)."""
    vector = msg_class('geometry_msgs/msg/Vector3')
    return msg_class('geometry_msgs/msg/Twist')(
        linear=vector(x=float(linear_x), y=0.0, z=0.0),
        angular=vector(x=0.0, y=0.0, z=float(angular_z)),
    )


def image_message(array: np.ndarray, encoding: str, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/Image from an (H, W[, C]) array; rgb8/bgr8/mono8 uint8, 16UC1, 32FC1."""
    dtype = IMAGE_DTYPES[encoding]
    data = np.ascontiguousarray(array, dtype=dtype)
    height, width = data.shape[:2]
    step = width * IMAGE_CHANNELS[encoding] * dtype.itemsize
    return msg_class('sensor_msgs/msg/Image')(
        header=header(stamp, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=data.view(np.uint8).reshape(-1),
    )


def compressed_image_message(data: bytes, stamp: int, frame_id: str, fmt: str = JPEG_FORMAT) -> Any:
    """sensor_msgs/CompressedImage holding already encoded bytes."""
    return msg_class('sensor_msgs/msg/CompressedImage')(
        header=header(stamp, frame_id),
        format=fmt,
        data=np.frombuffer(data, dtype=np.uint8),
    )


def camera_info_message(k: np.ndarray, height: int, width: int, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/CameraInfo of a rectified pinhole camera (plumb_bob, zero distortion)."""
    projection = np.zeros((3, 4))
    projection[:, :3] = k
    roi = msg_class('sensor_msgs/msg/RegionOfInterest')(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return msg_class('sensor_msgs/msg/CameraInfo')(
        header=header(stamp, frame_id),
        height=height,
        width=width,
        distortion_model='plumb_bob',
        d=np.zeros(5),
        k=np.asarray(k, np.float64).reshape(9),
        r=np.eye(3).reshape(9),
        p=projection.reshape(12),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def encoded_image_message(encoded: EncodedImage, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/Image of an image encoded by `pixio_ros.wire`."""
    return msg_class('sensor_msgs/msg/Image')(
        header=header(stamp, frame_id),
        height=encoded.height,
        width=encoded.width,
        encoding=encoded.encoding,
        is_bigendian=int(encoded.is_bigendian),
        step=encoded.step,
        data=np.ascontiguousarray(encoded.data, dtype=np.uint8).reshape(-1),
    )


def cloud_message(encoded: EncodedCloud, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/PointCloud2 of a cloud encoded by `pixio_ros.wire`."""
    field_cls = msg_class('sensor_msgs/msg/PointField')
    fields = [
        field_cls(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in encoded.fields
    ]
    return msg_class('sensor_msgs/msg/PointCloud2')(
        header=header(stamp, frame_id),
        height=encoded.height,
        width=encoded.width,
        fields=fields,
        is_bigendian=encoded.is_bigendian,
        point_step=encoded.point_step,
        row_step=encoded.row_step,
        data=np.ascontiguousarray(encoded.data).reshape(-1),
        is_dense=encoded.is_dense,
    )


def point_cloud_message(
    xyz: np.ndarray, stamp: int, frame_id: str, *, rgb: np.ndarray | None = None
) -> Any:
    """sensor_msgs/PointCloud2 x y z (+ rgb) in the node's layout, e.g. for a recorded cloud.

    Args:
        xyz: (H, W, 3) organized (NaN = no point) or (N, 3) metres.
        stamp: header stamp, nanoseconds.
        frame_id: the camera's optical frame.
        rgb: optional colours of the same shape, uint8.
    """
    if xyz.ndim == 2:
        xyz = xyz[np.newaxis]
        rgb = rgb[np.newaxis] if rgb is not None else None
    return cloud_message(encode_points(xyz, rgb=rgb), stamp, frame_id)


def camera_model_message(camera: PinholeCamera, stamp: int, frame_id: str) -> Any:
    """sensor_msgs/CameraInfo of a camera model (binning and ROI: none, the full image)."""
    roi = msg_class('sensor_msgs/msg/RegionOfInterest')(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return msg_class('sensor_msgs/msg/CameraInfo')(
        header=header(stamp, frame_id),
        height=int(camera.height),
        width=int(camera.width),
        distortion_model=camera.distortion_model,
        d=np.array(camera.d, dtype=np.float64),
        k=camera.k.reshape(-1),
        r=camera.r.reshape(-1),
        p=camera.p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def frame_messages(products: FrameProducts, stamp: int, frame_id: str) -> dict[str, Any]:
    """The rosbags messages of one frame's products, by output topic (`pixio_ros.wire`).

    The twin of `pixio_ros.ros.convert.frame_messages`: the same arrays, the same wire layouts.
    """
    out: dict[str, Any] = {}
    if products.depth is not None:
        out[DEPTH_TOPIC] = encoded_image_message(encode_depth(products.depth), stamp, frame_id)
        if products.depth_camera is not None:
            out[DEPTH_INFO_TOPIC] = camera_model_message(products.depth_camera, stamp, frame_id)
    if products.colored is not None:
        out[COLORED_TOPIC] = encoded_image_message(encode_bgr8(products.colored), stamp, frame_id)
    if products.points is not None:
        points = products.points
        encoded = encode_points(points.points, rgb=points.rgb, confidence=points.confidence)
        out[POINTS_TOPIC] = cloud_message(encoded, stamp, frame_id)
    if products.features is not None:
        encoded = encode_features(products.features.xyz, products.features.values)
        out[FEATURES_TOPIC] = cloud_message(encoded, stamp, frame_id)
    if products.embedding is not None:
        out[EMBEDDING_TOPIC] = cloud_message(encode_embedding(products.embedding), stamp, frame_id)
    return out
