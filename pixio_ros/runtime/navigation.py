"""Navigation products from depth: a laser scan of the rows at the horizon, an obstacle band.

Nav2's costmap layers take a sensor_msgs/LaserScan or a PointCloud2 of obstacles. The scan is
built as depthimage_to_laserscan builds it (per column the nearest range in a band of rows,
binned by the ray's bearing); the obstacle cloud keeps the points whose height above the floor,
given by a fixed camera height and pitch, lies in a band. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from pixio_ros.runtime.camera import PinholeCamera

__all__ = [
    'NavigationOptions',
    'ScanArrays',
    'heights_above_floor',
    'horizon_row',
    'laser_scan',
    'obstacle_points',
    'scan_frame_id',
]

OPTICAL_SUFFIX: Final = '_optical_frame'


@dataclass(frozen=True)
class NavigationOptions:
    """Camera mounting and bands of the navigation outputs (the node fills it from settings).

    Attributes:
        camera_height: optical centre above the floor, metres.
        camera_pitch: downward tilt of the optical axis, radians (0 = level).
        min_obstacle_height: lowest obstacle point above the floor, metres.
        max_obstacle_height: highest obstacle point above the floor, metres.
        obstacle_stride: keep every N-th row and column for the obstacle cloud.
        scan_rows: rows of the scan band, centred on the horizon row.
        range_min: nearest range kept, metres.
        range_max: farthest range kept, metres (> range_min). The node's settings hold 0
            for the head's range and resolve it before the products see it.
        scan_frame_id: frame of the scan; '' = the image frame without `_optical_frame`.
    """

    camera_height: float = 0.5
    camera_pitch: float = 0.0
    min_obstacle_height: float = 0.05
    max_obstacle_height: float = 2.0
    obstacle_stride: int = 4
    scan_rows: int = 5
    range_min: float = 0.1
    range_max: float = 10.0
    scan_frame_id: str = ''


@dataclass(frozen=True)
class ScanArrays:
    """A LaserScan's geometry and ranges (REP 117: +inf where a bearing saw nothing in range).

    Attributes:
        angle_min: bearing of the first range, radians (right of the camera is negative).
        angle_max: bearing of the last range.
        angle_increment: between consecutive ranges.
        range_min: metres.
        range_max: metres.
        ranges: (N,) float32 metres.
    """

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    ranges: np.ndarray


def horizon_row(camera: PinholeCamera, pitch: float) -> float:
    """Image row of a level ray straight ahead for a camera tilted down by `pitch` radians."""
    [[_, v]] = camera.project_rays(np.array([[0.0, -math.tan(pitch)]]))
    return float(v)


def _band(camera: PinholeCamera, options: NavigationOptions) -> slice:
    centre = horizon_row(camera, options.camera_pitch)
    first = math.floor(centre - (options.scan_rows - 1) / 2 + 0.5)  # halves round up
    first = min(max(first, 0), camera.height - 1)
    return slice(first, min(first + options.scan_rows, camera.height))


def laser_scan(depth: np.ndarray, camera: PinholeCamera, options: NavigationOptions) -> ScanArrays:
    """The nearest range per bearing over the band of rows at the horizon.

    Range is measured in the plane of the scan (hypot of the optical x and z, as
    depthimage_to_laserscan does); the bearing of a pixel is -atan(x/z) of its undistorted ray
    (REP 103: counter-clockwise, left positive). The camera's width of bins spans the band's
    bearings from angle_min to angle_max; ranges outside range_min..range_max are left out.

    Args:
        depth: (H, W) float32 z-depth in metres, NaN invalid.
        camera: the camera model at the depth resolution.
        options: band and range limits.
    """
    rows = _band(camera, options)
    rays_x = camera.rays()[rows, :, 0]
    band = depth[rows]
    bearings = -np.arctan(rays_x)
    with np.errstate(invalid='ignore'):
        ranges = band * np.sqrt(1.0 + rays_x * rays_x)
        valid = (
            np.isfinite(ranges)
            & np.isfinite(bearings)
            & (ranges >= options.range_min)
            & (ranges <= options.range_max)
        )
    finite = bearings[np.isfinite(bearings)]
    bins = camera.width
    if finite.size == 0:
        empty = np.full(1, np.inf, dtype=np.float32)
        return ScanArrays(0.0, 0.0, 0.0, options.range_min, options.range_max, empty)
    angle_min, angle_max = float(finite.min()), float(finite.max())
    increment = (angle_max - angle_min) / max(bins - 1, 1)
    out = np.full(bins, np.inf, dtype=np.float32)
    if valid.any() and increment > 0:
        index = np.rint((bearings[valid] - angle_min) / increment).astype(np.intp)
        np.minimum.at(out, np.clip(index, 0, bins - 1), ranges[valid].astype(np.float32))
    return ScanArrays(angle_min, angle_max, increment, options.range_min, options.range_max, out)


def heights_above_floor(points: np.ndarray, camera_height: float, pitch: float) -> np.ndarray:
    """(...) height above the floor of optical-frame points (...,3) of a camera tilted down.

    World down in the optical frame of a camera pitched down by `pitch` is (0, cos, sin).
    """
    down = points[..., 1] * math.cos(pitch) + points[..., 2] * math.sin(pitch)
    return camera_height - down


def obstacle_points(points: np.ndarray, options: NavigationOptions) -> np.ndarray:
    """(1, N, 3) float32 optical-frame points within the obstacle height band and range.

    Args:
        points: (H, W, 3) optical-frame point map, metres, NaN invalid.
        options: mounting, band, range and stride.
    """
    step = max(1, options.obstacle_stride)
    points = points[::step, ::step]
    with np.errstate(invalid='ignore'):
        height = heights_above_floor(points, options.camera_height, options.camera_pitch)
        distance = np.sqrt(np.einsum('...i,...i->...', points, points))
        keep = (
            (height >= options.min_obstacle_height)
            & (height <= options.max_obstacle_height)
            & (distance >= options.range_min)
            & (distance <= options.range_max)
        )
    return np.ascontiguousarray(points[keep], dtype=np.float32)[np.newaxis]


def scan_frame_id(image_frame_id: str, options: NavigationOptions) -> str:
    """The scan's frame: the setting, else the image frame without its optical suffix.

    A scan lies in the x-y plane of its frame (x forward, z up, REP 103), which an optical frame
    (z forward) is not; `camera_color_optical_frame` becomes `camera_color_frame`, the REP 105
    style body frame drivers publish beside it.
    """
    if options.scan_frame_id:
        return options.scan_frame_id
    if image_frame_id.endswith(OPTICAL_SUFFIX):
        return image_frame_id[: -len(OPTICAL_SUFFIX)] + '_frame'
    return image_frame_id
