"""One frame's work between decoding and publishing: what to compute and the messages to send.

Kept apart from the node so the choice of engine outputs and the message assembly read as one
function each; the node only owns ROS plumbing (topics, threads, parameters, diagnostics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from pixio_ros.ros.convert import (
    colored_depth_msg,
    depth_image_msg,
    embedding_cloud_msg,
    feature_cloud_msg,
    point_cloud_msg,
    scaled_camera_info,
)
from pixio_ros.runtime.camera import PinholeCamera, backproject, patch_points
from pixio_ros.runtime.cloud import CloudOptions, select_points
from pixio_ros.runtime.engine import Engine, Prediction

__all__ = ['FrameOutputs', 'InferredFrame', 'Wanted', 'build_outputs', 'engine_outputs']


@dataclass(frozen=True)
class Wanted:
    """Outputs that have a subscriber and are enabled by parameters."""

    depth: bool = False
    colored: bool = False
    points: bool = False
    features: bool = False
    embedding: bool = False

    @property
    def anything(self) -> bool:
        """Whether the frame needs the model at all."""
        return self.depth or self.colored or self.points or self.features or self.embedding


@dataclass
class InferredFrame:
    """What the inference stage hands to the publishing stage for one frame.

    Attributes:
        msg: the input message (its header goes on every output; `rgb` may view its data).
        rgb: (H, W, 3) uint8 decoded image.
        prediction: engine outputs at the depth resolution.
        wanted: outputs to build.
        settings: parameter values when the frame was taken.
        camera: intrinsics matched to the depth resolution, or None.
        camera_info: the CameraInfo `camera` came from, or None.
    """

    msg: Any
    rgb: np.ndarray
    prediction: Prediction
    wanted: Wanted
    settings: Mapping[str, Any]
    camera: PinholeCamera | None
    camera_info: CameraInfo | None


@dataclass
class FrameOutputs:
    """Messages to publish for one frame (None = not wanted or not possible)."""

    depth: Any = None
    depth_info: Any = None
    colored: Any = None
    points: Any = None
    features: Any = None
    embedding: Any = None
    warnings: list[str] = field(default_factory=list)


def engine_outputs(
    wanted: Wanted, provided: tuple[str, ...], *, has_camera: bool, confidence: bool
) -> set[str]:
    """Engine outputs a frame needs: depth feeds depth, colour map, back-projection, feature xyz.

    Without CameraInfo, points (and feature xyz) come from a point-map head when there is one.
    """
    names: set[str] = set()
    if wanted.depth or wanted.colored or wanted.points or wanted.features:
        names.add('depth')
    if not has_camera and (wanted.points or wanted.features) and 'points' in provided:
        names.add('points')
    if wanted.points and confidence and 'confidence' in provided:
        names.add('confidence')
    if wanted.features:
        names.add('features')
    if wanted.embedding:
        names.add('embedding')
    return names & set(provided)


def _colours(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 colours of the image at the depth resolution."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=cv2.INTER_AREA)


def _point_map(prediction: Prediction, camera: PinholeCamera | None) -> np.ndarray | None:
    """(H, W, 3) points at the depth resolution: back-projected depth, else the head's map."""
    if camera is not None and prediction.depth is not None:
        return backproject(prediction.depth, camera.rays())
    return prediction.points


def build_outputs(
    *,
    engine: Engine,
    prediction: Prediction,
    rgb: np.ndarray,
    header: Header,
    wanted: Wanted,
    settings: Mapping[str, Any],
    camera: PinholeCamera | None,
    camera_info: CameraInfo | None,
    on_cloud_built: Callable[[bool], None],
) -> FrameOutputs:
    """Messages for one frame.

    Args:
        engine: the engine that made `prediction` (metadata, patch size).
        prediction: outputs at the depth resolution.
        rgb: (H, W, 3) uint8 input image.
        header: the input image's header, copied to every output.
        wanted: outputs to build.
        settings: current parameter values.
        camera: intrinsics matched to the depth resolution, or None without CameraInfo.
        camera_info: the CameraInfo message `camera` came from (for depth/camera_info).
        on_cloud_built: callable(features: bool) counting built clouds.
    """
    out = FrameOutputs()
    depth = prediction.depth
    if depth is not None and wanted.depth:
        out.depth = depth_image_msg(depth, header)
        if camera_info is not None:
            out.depth_info = scaled_camera_info(camera_info, depth.shape[1], depth.shape[0], header)
    if depth is not None and wanted.colored:
        max_depth = settings['colored_max_depth'] or float(engine.metadata.get('max_depth') or 0)
        out.colored = colored_depth_msg(depth, header, max_depth)
    point_map = _point_map(prediction, camera) if (wanted.points or wanted.features) else None
    if wanted.points:
        if point_map is None:
            out.warnings.append(
                'points skipped: no CameraInfo received on camera_info and the artifact has no '
                'point-map head; publish CameraInfo or export with --head-kind points'
            )
        else:
            options = CloudOptions(
                stride=settings['points.stride'],
                min_range=settings['points.min_range'],
                max_range=settings['points.max_range'],
                voxel_size=settings['points.voxel_size'],
                dense=settings['points.dense'],
            )
            colours = (
                _colours(rgb, *point_map.shape[:2]) if settings['points.rgb'] else None
            )
            confidence = prediction.confidence if settings['points.confidence'] else None
            selected = select_points(point_map, options, rgb=colours, confidence=confidence)
            out.points = point_cloud_msg(selected, header)
            on_cloud_built(False)
    if wanted.features and prediction.features is not None:
        grid_h, grid_w = prediction.features.shape[:2]
        if camera is not None and depth is not None:
            xyz = patch_points(depth, camera, grid_h, grid_w)
        elif point_map is not None:
            xyz = cv2.resize(point_map, (grid_w, grid_h), interpolation=cv2.INTER_AREA)
        else:
            xyz = np.full((grid_h, grid_w, 3), np.nan, dtype=np.float32)
        half = settings['features.dtype'] == 'float16'
        out.features = feature_cloud_msg(xyz, prediction.features, header, half=half)
        on_cloud_built(True)
    if wanted.embedding and prediction.embedding is not None:
        out.embedding = embedding_cloud_msg(prediction.embedding, header)
    return out
