"""An artifact whose depth is known exactly: the image carries it, the model mis-scales it.

A random head's depth means nothing, so scale alignment cannot be checked against it. This
artifact keeps the contract (uint8 NHWC in, a dict of outputs, embedded metadata) but its
`depth` is the millimetres coded in the image's red (high byte) and green (low byte) channels,
times a known factor: a head that is exactly right up to a known scale. Images and input size
must match, so no resize blends the coded bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MM_PER_M = 1000.0
BYTE = 256


def depth_to_coded_rgb(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8: millimetres as R (high byte), G (low byte), B = 0."""
    mm = np.clip(np.rint(np.nan_to_num(depth_m) * MM_PER_M), 0, BYTE * BYTE - 1).astype(np.uint16)
    rgb = np.zeros((*depth_m.shape, 3), dtype=np.uint8)
    rgb[..., 0] = mm >> 8
    rgb[..., 1] = mm & (BYTE - 1)
    return rgb


def coded_depth(depth_m: np.ndarray) -> np.ndarray:
    """The depth the coded image carries (metres, millimetre steps), as float64."""
    return np.rint(np.nan_to_num(depth_m) * MM_PER_M) / MM_PER_M


def coded_depth_artifact(path: Path, *, factor: float, input_size: tuple[int, int]) -> Path:
    """A TorchScript artifact at `path` whose depth is the coded depth times `factor`."""
    import torch

    from pixio_ros.model import METADATA_FILE, build_network
    from pixio_ros.model.artifact import build_metadata

    class CodedDepth(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, factor: float) -> None:
            super().__init__()
            self.net = net
            self.factor = factor

        def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
            outputs = self.net(image)
            pixels = image.float()
            millimetres = pixels[..., 0] * 256.0 + pixels[..., 1]
            outputs['depth'] = (millimetres / 1000.0 * self.factor).unsqueeze(1)
            return outputs

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_network('tiny', 'depth').eval()
    metadata = build_metadata(
        net,
        input_size=input_size,
        fmt='torchscript',
        dtype='fp32',
        sources=None,
        encoder_pretrained=False,
        head_trained=True,
    )
    scripted = torch.jit.script(CodedDepth(net, factor))
    torch.jit.save(scripted, str(path), _extra_files={METADATA_FILE: metadata.to_json()})
    return path


# The synthetic room as a bag: coded images, exact depth, CameraInfo, LiDAR-like references.
ROOM_SIZE = (48, 64)
ROOM_PERIOD_NS = 100_000_000
ROOM_START_NS = 1_000_000_000
ROOM_TOPICS = {
    '/lidar/depth': 'sensor_msgs/msg/Image',
    '/lidar/points': 'sensor_msgs/msg/PointCloud2',
    '/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/depth': 'sensor_msgs/msg/Image',
    '/image': 'sensor_msgs/msg/Image',
}
"""Written in this order per frame (one log time), so a player sends the references first."""


def room_camera(size: tuple[int, int] = ROOM_SIZE):
    """The room bag's camera (RealSense-like intrinsics, no distortion)."""
    from pixio_ros.data.scene import realistic_camera

    return realistic_camera(*size)


def sparse_returns(
    depth: np.ndarray, rng: np.random.Generator, count: int = 600
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LiDAR-like returns (v, u, z): 1 % noise, 10 % outliers (z times 0.3..3)."""
    height, width = depth.shape
    v = rng.integers(0, height, count)
    u = rng.integers(0, width, count)
    z = depth[v, u] * (1 + rng.normal(0, 0.01, count))
    junk = rng.random(count) < 0.1
    z[junk] *= rng.uniform(0.3, 3.0, junk.sum())
    return v, u, z


def _cloud_message(xyz: np.ndarray, stamp: int, frame_id: str):
    from pixio_ros.data.messages import header, msg_class

    field = msg_class('sensor_msgs/msg/PointField')
    fields = [field(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate('xyz')]
    return msg_class('sensor_msgs/msg/PointCloud2')(
        header=header(stamp, frame_id),
        height=1,
        width=len(xyz),
        fields=fields,
        is_bigendian=False,
        point_step=12,
        row_step=12 * len(xyz),
        data=np.frombuffer(xyz.astype('<f4').tobytes(), dtype=np.uint8),
        is_dense=True,
    )


def write_room_bag(
    path: Path, *, frames: int, size: tuple[int, int] = ROOM_SIZE, frame_id: str = 'camera'
) -> Path:
    """The room bag, per frame the ROOM_TOPICS in order.

    A sparse depth image and a cloud in the optical frame (each its own LiDAR-like returns),
    CameraInfo, the exact depth as 16UC1 millimetres and the coded image.
    """
    from rosbags.rosbag2 import Writer

    from pixio_ros.data.messages import camera_model_message, image_message, serialize, typestore
    from pixio_ros.data.scene import build_scene, camera_path

    camera = room_camera(size)
    store = typestore()
    rng = np.random.default_rng(0)
    scene = build_scene(0)
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in ROOM_TOPICS.items()
        }
        for index in range(frames):
            stamp = ROOM_START_NS + index * ROOM_PERIOD_NS
            _, depth = scene.render(camera_path(index, 30), camera)
            v, u, z = sparse_returns(depth, rng)
            sparse = np.zeros(depth.shape, dtype=np.float32)
            sparse[v, u] = z
            v, u, z = sparse_returns(depth, rng)
            xyz = np.stack([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z], 1)
            messages = {
                '/lidar/depth': image_message(sparse, '32FC1', stamp, frame_id),
                '/lidar/points': _cloud_message(xyz, stamp, frame_id),
                '/camera_info': camera_model_message(camera, stamp, frame_id),
                '/depth': image_message(
                    np.rint(depth * MM_PER_M).astype(np.uint16), '16UC1', stamp, frame_id
                ),
                '/image': image_message(depth_to_coded_rgb(depth), 'rgb8', stamp, frame_id),
            }
            for topic, msg in messages.items():
                writer.write(connections[topic], stamp, serialize(msg))
    return path


def room_truth(index: int, frames: int, size: tuple[int, int] = ROOM_SIZE) -> np.ndarray:
    """The coded (millimetre) depth of frame `index` of a room bag of `frames` frames."""
    from pixio_ros.data.scene import build_scene, camera_path

    _, depth = build_scene(0).render(camera_path(index, 30), room_camera(size))
    return coded_depth(depth)
