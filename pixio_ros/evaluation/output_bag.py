"""Eval's optional output bag: /pixio/depth, depth/camera_info, points and features.

Written with rosbags (mcap) in the node's layouts, so Foxglove or RViz show the prediction next to
the recording; stamps and frame ids are the input image's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from pixio_ros.data.messages import (
    camera_info_message,
    image_message,
    point_cloud_message,
    serialize,
    typestore,
)
from pixio_ros.runtime.camera import PinholeCamera, backproject, patch_points

DEPTH_TOPIC: Final = '/pixio/depth'
DEPTH_INFO_TOPIC: Final = '/pixio/depth/camera_info'
POINTS_TOPIC: Final = '/pixio/points'
FEATURES_TOPIC: Final = '/pixio/features'


class PixioBagWriter:
    """An mcap rosbag2 of predictions; use as a context manager around the evaluation loop."""

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._writer = Writer(path, version=Writer.VERSION_LATEST,
                              storage_plugin=StoragePlugin.MCAP)
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> PixioBagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def _write(self, topic: str, msg: Any, log_time: int) -> None:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msg.__msgtype__, typestore=typestore()
            )
        self._writer.write(self._connections[topic], log_time, serialize(msg))

    def write_frame(self, stamp: int, frame_id: str, *, depth: np.ndarray, rgb: np.ndarray,
                    camera: PinholeCamera | None, points: np.ndarray | None,
                    features: np.ndarray | None) -> None:
        """Write one frame's messages.

        Args:
            stamp: the input image's header stamp, nanoseconds (also the log time).
            frame_id: the input image's frame.
            depth: (H, W) float32 metres, NaN invalid.
            rgb: (H, W, 3) uint8 colours for the cloud (resized to the depth if needed).
            camera: intrinsics matched to the depth; None = points from the point-map head only.
            points: (H, W, 3) point-map output, used when there is no camera.
            features: (h, w, C) patch features, or None.
        """
        self._write(DEPTH_TOPIC, image_message(depth.astype(np.float32), '32FC1', stamp,
                                               frame_id), stamp)
        if camera is not None:
            self._write(DEPTH_INFO_TOPIC, camera_info_message(
                camera.k, camera.height, camera.width, stamp, frame_id), stamp)
            points = backproject(depth.astype(np.float32), camera.rays())
        if points is not None:
            if rgb.shape[:2] != depth.shape:
                import cv2

                rgb = cv2.resize(rgb, (depth.shape[1], depth.shape[0]),
                                 interpolation=cv2.INTER_AREA)
            self._write(POINTS_TOPIC, point_cloud_message(points, stamp, frame_id, rgb=rgb),
                        stamp)
        if features is not None:
            grid_h, grid_w = features.shape[:2]
            xyz = (patch_points(depth, camera, grid_h, grid_w) if camera is not None
                   else np.full((grid_h, grid_w, 3), np.nan, np.float32))
            self._write(FEATURES_TOPIC, point_cloud_message(
                xyz, stamp, frame_id, extra={'feature': features.astype(np.float32)}), stamp)
