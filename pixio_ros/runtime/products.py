"""A frame's products as arrays: depth, depth camera model, colour map, points, features, embedding.

The one place that turns the engine's prediction (plus the image and its camera model) into what
the node publishes. The node wraps the result in rclpy messages (`pixio_ros.ros.convert`) and
the eval bag in rosbags messages (`pixio_ros.data.messages`); both go through the same wire
layouts (`pixio_ros.wire`), so the two transports carry the same bytes for the same frame.
"""

from __future__ import annotations

import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import cv2
import numpy as np

from pixio_ros.runtime.camera import PinholeCamera, backproject, patch_points
from pixio_ros.runtime.cloud import CloudOptions, SelectedPoints, gate_mask, select_points
from pixio_ros.runtime.navigation import (
    NavigationOptions,
    ScanArrays,
    laser_scan,
    obstacle_points,
)

if TYPE_CHECKING:  # the engine pulls in torch; products are numpy only
    from pixio_ros.runtime.engine import Prediction

__all__ = [
    'DEFAULT_COLORMAP_MAX_DEPTH_M',
    'FrameProducts',
    'PatchFeatures',
    'PointsSource',
    'ProductOptions',
    'Wanted',
    'build_products',
    'colorize',
    'colormap_max_depth',
    'depth_colormap',
    'engine_outputs',
]

PointsSource = Literal['camera_info', 'head']
# Colour-map range when neither the settings nor the artifact say how deep the model sees.
DEFAULT_COLORMAP_MAX_DEPTH_M: Final = 10.0
UINT8_LEVELS: Final = 255
MIN_COLORMAP_SPAN: Final = 1e-9
NO_GEOMETRY: Final = (
    'points skipped: no CameraInfo received on camera_info and the artifact has no point-map '
    'head; publish CameraInfo or export with --head-kind points'
)

NO_SCAN_CAMERA: Final = (
    'scan skipped: no CameraInfo received on camera_info, so the bearings are unknown; '
    'publish CameraInfo'
)


@dataclass(frozen=True)
class Wanted:
    """Products to build for a frame (outputs that are enabled and have a consumer)."""

    depth: bool = False
    colored: bool = False
    points: bool = False
    features: bool = False
    embedding: bool = False
    scan: bool = False
    obstacles: bool = False

    @property
    def anything(self) -> bool:
        """Whether the frame needs the model at all."""
        return (
            self.depth
            or self.colored
            or self.points
            or self.features
            or self.embedding
            or self.scan
            or self.obstacles
        )

    @property
    def geometry(self) -> bool:
        """Whether the frame needs 3D points (the cloud, feature xyz, obstacles)."""
        return self.points or self.features or self.obstacles

    @classmethod
    def everything(cls) -> Wanted:
        """Every product (the eval bag writes them all)."""
        return cls(depth=True, colored=True, points=True, features=True, embedding=True)


@dataclass(frozen=True)
class ProductOptions:
    """How to build the products; the node fills it from its settings, eval uses the defaults.

    Attributes:
        cloud: stride, range limits, voxel averaging and density of `points`.
        rgb: add the packed colour of each point.
        confidence: add the point-map head's confidence to each point when there is one.
        colored_max_depth: depth in metres at the end of the colour map (> 0).
        features_half: features as IEEE half (the `feature_f16` layout).
        navigation: camera mounting and bands of `scan` and `points/obstacles`.
    """

    cloud: CloudOptions = field(default_factory=CloudOptions)
    rgb: bool = True
    confidence: bool = True
    colored_max_depth: float = DEFAULT_COLORMAP_MAX_DEPTH_M
    features_half: bool = False
    navigation: NavigationOptions = field(default_factory=NavigationOptions)


@dataclass(frozen=True)
class PatchFeatures:
    """The patch grid: centres in 3D and one feature vector per patch.

    Attributes:
        xyz: (h, w, 3) float32 patch centres, camera frame metres; NaN without geometry.
        values: (h, w, C) normed patch tokens, float32 (or float16 when published as half).
    """

    xyz: np.ndarray
    values: np.ndarray


@dataclass
class FrameProducts:
    """Everything one frame publishes, as arrays (None = not wanted or not possible).

    Attributes:
        depth: (H, W) float32 metres.
        depth_camera: the camera model at the depth resolution (for depth/camera_info).
        colored: (H, W, 3) uint8 BGR colour map of the depth.
        points: the selected points (organized or dense) with colours and confidence.
        points_source: where the 3D geometry came from ('camera_info' back-projection or the
            point-map 'head'), None without geometry.
        features: the patch grid.
        embedding: (C,) float32 global embedding.
        scan: the laser scan of the rows at the horizon.
        obstacles: (1, N, 3) float32 optical-frame points in the obstacle height band.
        warnings: why a wanted product could not be built.
    """

    depth: np.ndarray | None = None
    depth_camera: PinholeCamera | None = None
    colored: np.ndarray | None = None
    points: SelectedPoints | None = None
    points_source: PointsSource | None = None
    features: PatchFeatures | None = None
    embedding: np.ndarray | None = None
    scan: ScanArrays | None = None
    obstacles: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def colorize(
    values: np.ndarray, low: float, high: float, colormap: int = cv2.COLORMAP_TURBO
) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 BGR through an OpenCV colour map; non-finite is black.

    `low` maps to the first colour and `high` to the last, rounded to the nearest of 256 levels.
    """
    values = np.asarray(values, dtype=np.float32)
    span = max(float(high) - float(low), MIN_COLORMAP_SPAN)
    finite = np.isfinite(values)
    scaled = np.clip((np.where(finite, values, low) - low) / span, 0.0, 1.0)
    levels = np.rint(scaled * UINT8_LEVELS).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, colormap)
    bgr[~finite] = 0
    return bgr


def colormap_max_depth(setting: float, artifact_max_depth: float | None) -> float:
    """Depth at the end of the colour map: the setting, else the artifact's range, else 10 m."""
    if setting > 0:
        return float(setting)
    if artifact_max_depth is not None and artifact_max_depth > 0:
        return float(artifact_max_depth)
    return DEFAULT_COLORMAP_MAX_DEPTH_M


def depth_colormap(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """The node's `depth/colored`: turbo over 0..max_depth metres (BGR), invalid pixels black."""
    return colorize(depth, 0.0, max_depth)


def engine_outputs(
    wanted: Wanted, provided: Collection[str], *, has_camera: bool, confidence: bool
) -> set[str]:
    """Engine outputs a frame needs: depth feeds depth, colour map, back-projection, feature xyz.

    Without a camera model, points (and feature xyz) come from a point-map head when there is one.
    """
    names: set[str] = set()
    if wanted.depth or wanted.colored or wanted.geometry or wanted.scan:
        names.add('depth')
    if not has_camera and wanted.geometry and 'points' in provided:
        names.add('points')
    if (wanted.points or wanted.obstacles) and confidence and 'confidence' in provided:
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


def _point_map(
    prediction: Prediction, camera: PinholeCamera | None
) -> tuple[np.ndarray | None, PointsSource | None]:
    """(H, W, 3) points at the depth resolution and their source: back-projected depth first."""
    if camera is not None and prediction.depth is not None:
        return backproject(prediction.depth, camera.rays()), 'camera_info'
    if prediction.points is not None:
        return prediction.points, 'head'
    return None, None


def _patch_xyz(
    prediction: Prediction,
    camera: PinholeCamera | None,
    point_map: np.ndarray | None,
    grid: tuple[int, int],
) -> np.ndarray:
    """(h, w, 3) patch centres: back-projected mean patch depth, else the head's map, else NaN."""
    grid_h, grid_w = grid
    if camera is not None and prediction.depth is not None:
        return patch_points(prediction.depth, camera, grid_h, grid_w)
    if point_map is not None:
        return cv2.resize(point_map, (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    return np.full((grid_h, grid_w, 3), np.nan, dtype=np.float32)


def _gated(prediction: Prediction, point_map: np.ndarray, options: CloudOptions) -> np.ndarray:
    """The point map without the pixels the confidence gate and the edge filter drop."""
    depth = prediction.depth if prediction.depth is not None else point_map[..., 2]
    drop = gate_mask(depth, prediction.confidence, options)
    if drop is None or not drop.any():
        return point_map
    gated = point_map.copy()
    gated[drop] = np.nan
    return gated


def _gated_depth(prediction: Prediction, options: CloudOptions) -> np.ndarray:
    """The depth without the pixels the gate drops (the scan sees no flying pixels either)."""
    depth = typing.cast(np.ndarray, prediction.depth)
    drop = gate_mask(depth, prediction.confidence, options)
    if drop is None or not drop.any():
        return depth
    return np.where(drop, np.float32(np.nan), depth)


def build_products(
    prediction: Prediction,
    rgb: np.ndarray,
    camera: PinholeCamera | None,
    wanted: Wanted,
    options: ProductOptions,
) -> FrameProducts:
    """The products of one frame.

    Args:
        prediction: engine outputs, dense ones at the depth resolution.
        rgb: (H, W, 3) uint8 input image (any resolution; colours are resized to the depth).
        camera: the camera model at the depth resolution, or None without CameraInfo.
        wanted: products to build.
        options: how to build them.
    """
    out = FrameProducts()
    depth = prediction.depth
    if depth is not None and wanted.depth:
        out.depth = depth
        out.depth_camera = camera
    if depth is not None and wanted.colored:
        out.colored = depth_colormap(depth, options.colored_max_depth)
    point_map: np.ndarray | None = None
    if wanted.geometry:
        point_map, out.points_source = _point_map(prediction, camera)
    gated = _gated(prediction, point_map, options.cloud) if point_map is not None else None
    if wanted.points:
        if gated is None:
            out.warnings.append(NO_GEOMETRY)
        else:
            colours = _colours(rgb, *gated.shape[:2]) if options.rgb else None
            confidence = prediction.confidence if options.confidence else None
            out.points = select_points(gated, options.cloud, rgb=colours, confidence=confidence)
    if wanted.obstacles:
        if gated is None:
            if NO_GEOMETRY not in out.warnings:
                out.warnings.append(NO_GEOMETRY)
        else:
            out.obstacles = obstacle_points(gated, options.navigation)
    if wanted.scan and depth is not None:
        if camera is None:
            out.warnings.append(NO_SCAN_CAMERA)
        else:
            gated_depth = _gated_depth(prediction, options.cloud)
            out.scan = laser_scan(gated_depth, camera, options.navigation)
    if wanted.features and prediction.features is not None:
        grid = (int(prediction.features.shape[0]), int(prediction.features.shape[1]))
        xyz = _patch_xyz(prediction, camera, point_map, grid)
        values = prediction.features
        if options.features_half:
            values = values.astype(np.float16)
        out.features = PatchFeatures(xyz=xyz, values=values)
    if wanted.embedding and prediction.embedding is not None:
        out.embedding = prediction.embedding
    return out
