"""A deterministic synthetic RGB-D scene rendered by numpy ray casting, with exact metric depth.

A room (textured floor, three walls) with boxes and spheres placed from a seed, seen by a camera
(`PinholeCamera`, optionally with lens distortion) that moves and turns along a smooth path.
Depth is the analytic ray/surface intersection, so ground truth is exact up to float64 rounding;
it stands in for a recording when none is at hand.

Frames follow REP 103's optical convention everywhere: x right, y down, z forward. The world frame
shares those axes (y down, so the floor is the plane y = +camera height).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np

from pixio_ros.runtime.camera import PinholeCamera

CAMERA_HEIGHT_M: Final = 1.2
WALL_HEIGHT_M: Final = 3.0
ROOM_HALF_WIDTH_M: Final = 3.0
BACK_WALL_Z_M: Final = 7.0
# RealSense D435 colour stream at 640x480: fx = fy ~ 615 px, principal point slightly off centre.
REFERENCE_WIDTH_PX: Final = 640
REFERENCE_FOCAL_PX: Final = 615.0
REFERENCE_PRINCIPAL_OFFSET_PX: Final = (1.3, -1.1)
LIGHT_DIRECTION: Final = np.array([-0.4, -1.0, 0.5]) / np.linalg.norm([-0.4, -1.0, 0.5])
AMBIENT: Final = 0.35
MIN_HIT_DISTANCE_M: Final = 1e-6


def realistic_intrinsics(height: int, width: int) -> np.ndarray:
    """A RealSense-like (3, 3) K for a `height` x `width` image (scaled from 640 wide)."""
    scale = width / REFERENCE_WIDTH_PX
    focal = REFERENCE_FOCAL_PX * scale
    cx = (width - 1) / 2 + REFERENCE_PRINCIPAL_OFFSET_PX[0] * scale
    cy = (height - 1) / 2 + REFERENCE_PRINCIPAL_OFFSET_PX[1] * scale
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def realistic_camera(
    height: int, width: int, *, distortion: tuple[float, ...] = ()
) -> PinholeCamera:
    """The camera a RealSense-like driver describes: `realistic_intrinsics`, plumb_bob, R = I.

    Args:
        height: image rows.
        width: image columns.
        distortion: plumb_bob coefficients (k1 k2 p1 p2 k3); () = a rectified lens (zeros, as
            the RealSense colour stream publishes).

    Raises:
        CameraError: distortion coefficients plumb_bob cannot take.
    """
    k = realistic_intrinsics(height, width)
    projection = np.zeros((3, 4))
    projection[:, :3] = k
    return PinholeCamera.from_k(
        width,
        height,
        k,
        d=distortion or (0.0,) * 5,
        distortion_model='plumb_bob',
        r=np.eye(3),
        p=projection,
    )


@dataclass(frozen=True)
class Pose:
    """Camera-to-world transform: p_world = rotation @ p_camera + position (metres)."""

    rotation: np.ndarray
    position: np.ndarray


def look_pose(position: np.ndarray, yaw: float, pitch: float) -> Pose:
    """Camera at `position` looking along yaw (about world y) and pitch (+ = down), radians."""
    forward = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    down_hint = np.array([0.0, 1.0, 0.0])
    right = np.cross(down_hint, forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return Pose(np.stack([right, down, forward], axis=1), np.asarray(position, dtype=np.float64))


@functools.lru_cache(maxsize=4)
def _camera_rays(camera: PinholeCamera) -> np.ndarray:
    """(3, H*W) camera-frame rays (x/z, y/z, 1) of every pixel, undistorted, float64, cached."""
    cols, rows = np.meshgrid(
        np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64)
    )
    normalised = camera.rays_at(cols, rows).reshape(-1, 2)
    rays = np.concatenate([normalised.T, np.ones((1, normalised.shape[0]))])
    rays.flags.writeable = False
    return rays


def _checker(points: np.ndarray, size: float, axes_weight: np.ndarray) -> np.ndarray:
    """1 on 'white' cells of a checkerboard of `size` metre cells over the weighted axes, else 0.

    Args:
        points: (3, N) world points.
        size: cell edge in metres.
        axes_weight: (3,) 1 for the axes spanning the board, 0 for the normal axis.
    """
    cells = sum(
        np.floor(points[axis] / size).astype(np.int64) for axis in range(3) if axes_weight[axis]
    )
    return (cells % 2).astype(np.float64)


def _dot(vector: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(N,) dot products of a (3,) vector with (3, N) columns, without a slow short-axis reduce."""
    return vector[0] * columns[0] + vector[1] * columns[1] + vector[2] * columns[2]


@dataclass(frozen=True)
class Plane:
    """The plane normal . p = offset (axis-aligned unit normal), limited to [lower, upper]."""

    normal: np.ndarray
    offset: float
    lower: np.ndarray
    upper: np.ndarray
    color: np.ndarray
    checker_m: float

    def hit_distance(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """(N,) ray parameter of the hit of (3, N) `rays` from `origin`, inf where they miss."""
        axis_of_normal = int(np.argmax(np.abs(self.normal)))
        sign = self.normal[axis_of_normal]  # the normal is a unit axis: one component is +-1
        with np.errstate(divide='ignore', invalid='ignore'):
            t = (self.offset - self.normal @ origin) / (sign * rays[axis_of_normal])
            ok = t > MIN_HIT_DISTANCE_M
            for axis in range(3):
                if axis != axis_of_normal and (
                    np.isfinite(self.lower[axis]) or np.isfinite(self.upper[axis])
                ):
                    coord = origin[axis] + t * rays[axis]
                    ok &= (coord >= self.lower[axis]) & (coord <= self.upper[axis])
        return np.where(ok, t, np.inf)

    def surface(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, N) normals and albedo (0..1) at (3, N) hit points: a checkerboard in the plane."""
        cells = _checker(points, self.checker_m, 1.0 - np.abs(self.normal))
        normal = np.broadcast_to(self.normal[:, None], points.shape)
        return normal, self.color[:, None] * (0.55 + 0.45 * cells)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance of (3, N) world points to this finite plane (inf outside its extent)."""
        margin = 1e-3
        inside = np.all(
            (points >= self.lower[:, None] - margin) & (points <= self.upper[:, None] + margin),
            axis=0,
        )
        return np.where(inside, np.abs(_dot(self.normal, points) - self.offset), np.inf)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box [lower, upper] in world metres, finely checkered."""

    lower: np.ndarray
    upper: np.ndarray
    color: np.ndarray
    checker_m: float = 0.1

    def hit_distance(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """(N,) ray parameter of the entry hit (slab method), inf where the ray misses."""
        t_near = np.full(rays.shape[1], -np.inf)
        t_far = np.full(rays.shape[1], np.inf)
        with np.errstate(divide='ignore', invalid='ignore'):
            for axis in range(3):
                inv = 1.0 / rays[axis]
                t1 = (self.lower[axis] - origin[axis]) * inv
                t2 = (self.upper[axis] - origin[axis]) * inv
                np.fmax(t_near, np.minimum(t1, t2), out=t_near)
                np.fmin(t_far, np.maximum(t1, t2), out=t_far)
        return np.where((t_near <= t_far) & (t_near > MIN_HIT_DISTANCE_M), t_near, np.inf)

    def surface(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, N) face normals (the face nearest each point) and checkered albedo."""
        gaps = np.concatenate(
            [np.abs(points - self.lower[:, None]), np.abs(points - self.upper[:, None])]
        )
        face = np.argmin(gaps, axis=0)
        normal = np.zeros_like(points)
        normal[face % 3, np.arange(points.shape[1])] = np.where(face < 3, -1.0, 1.0)
        cells = sum(
            np.floor(points[axis] / self.checker_m).astype(np.int64) * (face % 3 != axis)
            for axis in range(3)
        )
        return normal, self.color[:, None] * (0.8 + 0.2 * (cells % 2))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance of (3, N) world points to the box's surface."""
        lower, upper = self.lower[:, None], self.upper[:, None]
        outside = np.maximum(np.maximum(lower - points, points - upper), 0.0)
        inner = np.minimum(points - lower, upper - points).min(axis=0)
        return np.where(inner > 0, inner, np.linalg.norm(outside, axis=0))


@dataclass(frozen=True)
class Sphere:
    """A sphere in world metres, plain coloured."""

    center: np.ndarray
    radius: float
    color: np.ndarray

    def hit_distance(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """(N,) ray parameter of the first hit, inf where the ray misses."""
        rel = origin - self.center
        a = _dot(np.ones(3), rays * rays)
        b = 2.0 * _dot(rel, rays)
        c = rel @ rel - self.radius**2
        disc = b * b - 4 * a * c
        with np.errstate(invalid='ignore'):
            t = (-b - np.sqrt(disc)) / (2 * a)
        return np.where((disc >= 0) & (t > MIN_HIT_DISTANCE_M), t, np.inf)

    def surface(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, N) outward normals and the flat albedo."""
        normal = (points - self.center[:, None]) / self.radius
        return normal, np.broadcast_to(self.color[:, None], points.shape)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance of (3, N) world points to the sphere's surface."""
        return np.abs(np.linalg.norm(points - self.center[:, None], axis=0) - self.radius)


Primitive = Plane | Box | Sphere


@dataclass(frozen=True)
class Scene:
    """The room and its objects; `render` ray-casts one camera view."""

    primitives: tuple[Primitive, ...]

    def render(self, pose: Pose, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
        """Ray-cast one view through every pixel centre of `camera` (its distortion included).

        Args:
            pose: camera-to-world pose.
            camera: the camera model; its `rays_at` gives the ray of each pixel, so a distorted
                camera renders a distorted image whose depth still follows `camera.rays()`.

        Returns:
            `(rgb, depth)`: (H, W, 3) uint8 shaded colour and (H, W) float64 z-depth in metres,
            NaN where the ray hits nothing.
        """
        # With camera-frame ray z = 1, the ray parameter t of a hit is its z-depth.
        height, width = camera.height, camera.width
        rays = pose.rotation @ _camera_rays(camera)
        # Running nearest hit instead of stacking every primitive's distances: far less memory
        # traffic at 640x480. Strict `<` keeps the earlier primitive on exact ties.
        t = np.full(rays.shape[1], np.inf)
        nearest = np.zeros(rays.shape[1], dtype=np.int64)
        for index, primitive in enumerate(self.primitives):
            distance = primitive.hit_distance(pose.position, rays)
            closer = distance < t
            np.copyto(t, distance, where=closer)
            nearest[closer] = index
        rgb = np.zeros_like(rays)
        nearest[~np.isfinite(t)] = -1  # no hit: stays black
        for index, primitive in enumerate(self.primitives):
            sel = np.nonzero(nearest == index)[0]
            if sel.size == 0:
                continue
            points = pose.position[:, None] + t[sel] * rays[:, sel]
            normal, albedo = primitive.surface(points)
            facing = np.sign(-(normal * rays[:, sel]).sum(axis=0))
            lambert = np.clip(_dot(-LIGHT_DIRECTION, normal) * facing, 0.0, 1.0)
            rgb[:, sel] = albedo * (AMBIENT + (1.0 - AMBIENT) * lambert)
        rgb = np.clip(np.round(rgb.T * 255.0), 0, 255).astype(np.uint8).reshape(height, width, 3)
        depth = np.where(np.isfinite(t), t, np.nan).reshape(height, width)
        return rgb, depth

    def surface_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance from each of (N, 3) world points to the nearest surface of the scene, metres."""
        columns = np.ascontiguousarray(points.T)
        return np.min(np.stack([p.distance(columns) for p in self.primitives]), axis=0)


def build_scene(seed: int = 0, *, box_count: int = 3, sphere_count: int = 2) -> Scene:
    """The room plus `box_count` boxes and `sphere_count` spheres, placed and coloured by `seed`."""
    rng = np.random.default_rng(seed)
    inf = np.inf
    floor_y = CAMERA_HEIGHT_M
    top_y = CAMERA_HEIGHT_M - WALL_HEIGHT_M
    w = ROOM_HALF_WIDTH_M
    planes = (
        Plane(
            np.array([0.0, 1.0, 0.0]),
            floor_y,
            np.array([-w, -inf, -inf]),
            np.array([w, inf, BACK_WALL_Z_M]),
            np.array([0.85, 0.8, 0.7]),
            checker_m=0.5,
        ),
        Plane(
            np.array([0.0, 0.0, 1.0]),
            BACK_WALL_Z_M,
            np.array([-w, top_y, -inf]),
            np.array([w, floor_y, inf]),
            np.array([0.6, 0.7, 0.85]),
            checker_m=0.75,
        ),
        Plane(
            np.array([1.0, 0.0, 0.0]),
            -w,
            np.array([-inf, top_y, -inf]),
            np.array([inf, floor_y, BACK_WALL_Z_M]),
            np.array([0.8, 0.6, 0.55]),
            checker_m=1.0,
        ),
        Plane(
            np.array([1.0, 0.0, 0.0]),
            w,
            np.array([-inf, top_y, -inf]),
            np.array([inf, floor_y, BACK_WALL_Z_M]),
            np.array([0.55, 0.75, 0.6]),
            checker_m=1.0,
        ),
    )
    boxes = []
    for _ in range(box_count):
        size = rng.uniform([0.3, 0.3, 0.3], [0.9, 1.2, 0.9])
        x = rng.uniform(-w + 0.2, w - 0.2 - size[0])
        z = rng.uniform(2.5, BACK_WALL_Z_M - 0.5 - size[2])
        lower = np.array([x, floor_y - size[1], z])
        boxes.append(Box(lower, lower + size, rng.uniform(0.2, 0.95, 3)))
    spheres = []
    for _ in range(sphere_count):
        radius = float(rng.uniform(0.2, 0.45))
        center = np.array(
            [rng.uniform(-w + 0.6, w - 0.6), floor_y - radius, rng.uniform(2.0, BACK_WALL_Z_M - 1)]
        )
        spheres.append(Sphere(center, radius, rng.uniform(0.2, 0.95, 3)))
    return Scene((*planes, *boxes, *spheres))


def camera_path(frame: int, frames: int) -> Pose:
    """The pose of `frame` out of `frames`: a slow sideways sway and forward walk, 1.2 m up."""
    phase = 2.0 * np.pi * frame / max(frames, 1)
    position = np.array([0.6 * np.sin(phase), 0.0, 0.8 * frame / max(frames, 1)])
    return look_pose(position, yaw=0.25 * np.sin(phase), pitch=0.2)
