"""The one camera model (K, D, distortion model, R, P, size): validation, rescale, crop, rays.

The node, the evaluation and the training all turn a CameraInfo into a `PinholeCamera` here, so
they agree on every ray: `rays()` is what the node back-projects depth with and what a point-map
head is trained to predict.

Pixel coordinates follow OpenCV / ROS: integer (u, v) is the centre of a pixel. Resizing an image
by s maps pixel centre u to (u + 0.5) * s - 0.5, so the principal point moves the same way; that
keeps intrinsics consistent with the half-pixel resizes (cv2, torch align_corners=False) used for
the model input and the depth output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pixio_ros.errors import PixioRosError

__all__ = [
    'DISTORTION_COEFFICIENTS',
    'DISTORTION_MODELS',
    'PRINCIPAL_POINT_MARGIN',
    'CameraError',
    'PinholeCamera',
    'backproject',
    'patch_points',
    'rescale_projection',
]

# ROS distortion model names (sensor_msgs/distortion_models.hpp) that rays() can undistort,
# with the number of coefficients each takes (OpenCV's order, which is also ROS's).
PLUMB_BOB = 'plumb_bob'
RATIONAL_POLYNOMIAL = 'rational_polynomial'
EQUIDISTANT = 'equidistant'
DISTORTION_COEFFICIENTS: dict[str, int] = {PLUMB_BOB: 5, RATIONAL_POLYNOMIAL: 8, EQUIDISTANT: 4}
DISTORTION_MODELS: tuple[str, ...] = tuple(DISTORTION_COEFFICIENTS)
COEFFICIENT_NAMES = {
    PLUMB_BOB: 'k1 k2 p1 p2 k3',
    RATIONAL_POLYNOMIAL: 'k1 k2 p1 p2 k3 k4 k5 k6',
    EQUIDISTANT: 'k1 k2 k3 k4',
}
PRINCIPAL_POINT_MARGIN = 0.5
"""How far (as a fraction of the image size) the principal point may lie beyond an image edge.

Real lenses put it within a few percent of the centre; shifted or cropped sensors move it
further. Half an image beyond the edge allows those, yet refuses a K written for another
resolution (a 1280x960 K with width 320) or in other units.
"""
# Iterative undistortion: enough iterations for strong wide-angle distortion to converge.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
ROUND_TRIP_TOLERANCE_PX = 0.1
"""How far an undistorted ray, distorted again, may land from its pixel and still be its ray.

Converged rays land within 1e-4 px. Two cases land farther, hundreds of pixels off near the
corners of strongly distorted calibrations: beyond the field a plumb_bob or rational_polynomial
fit was calibrated on, the polynomial can fold back so that no ray reaches the pixel at all,
and OpenCV's fixed-point inverse can diverge where a ray exists. Either way the ray found goes
through some other pixel; those pixels get no ray (NaN) rather than a wrong one.
"""
# Pixel-grid rays are cached per camera; a node sees one or two cameras at a time.
RAY_CACHE_SIZE = 8
IDENTITY_R: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
UNSET_P: tuple[float, ...] = (0.0,) * 12
K_VALUES, R_VALUES, P_VALUES = 9, 9, 12  # row-major 3x3, 3x3, 3x4
CALIBRATE_HINT = 'calibrate the camera (e.g. with camera_calibration) and publish its CameraInfo'


class CameraError(PixioRosError):
    """Intrinsics that cannot describe the image (uncalibrated, wrong size, unknown model)."""


def rescale_projection(matrix: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K (3, 3) or P (3, 4) of the same camera after its image is resized by (sx, sy).

    Pixel-centre convention, so that pixel centres stay aligned: f' = f s and
    c' = (c + 0.5) s - 0.5; P's Tx / Ty (f times baseline) scale with f. Returns a float64 copy.
    """
    out = np.array(matrix, dtype=np.float64)
    with np.errstate(over='ignore', invalid='ignore'):  # absurd values become inf: callers check
        out[0, :] *= sx
        out[1, :] *= sy
        out[0, 2] += 0.5 * sx - 0.5
        out[1, 2] += 0.5 * sy - 0.5
    return out


def _shift_projection(matrix: np.ndarray, x: float, y: float) -> np.ndarray:
    """K or P after the image origin moves to pixel (x, y): u' = u - x, v' = v - y."""
    out = np.array(matrix, dtype=np.float64)
    with np.errstate(over='ignore', invalid='ignore'):  # absurd values become inf: callers check
        out[0, :] -= x * out[2, :]
        out[1, :] -= y * out[2, :]
    return out


def _values(name: str, values: Any, count: int) -> tuple[float, ...]:
    flat = tuple(float(value) for value in np.asarray(values, dtype=np.float64).reshape(-1))
    if len(flat) != count:
        raise CameraError(f'{name} has {len(flat)} values; expected {count} (row-major)')
    return flat


def _check_finite(name: str, values: Sequence[float]) -> None:
    for index, value in enumerate(values):
        if not math.isfinite(value):
            raise CameraError(
                f'{name}[{index}] is {value}; every number of K, D, R and P must be finite: '
                f'{CALIBRATE_HINT}'
            )


def _check_distortion(model: str, d: Sequence[float]) -> None:
    expected = DISTORTION_COEFFICIENTS.get(model)
    if expected is None:
        if any(value != 0.0 for value in d):
            raise CameraError(
                f'distortion model {model!r} with non-zero D is not supported; use one of '
                f'{", ".join(DISTORTION_MODELS)} or rectify the image (image_proc)'
            )
    elif d and len(d) != expected:
        raise CameraError(
            f'D has {len(d)} coefficients for {model}; expected {expected} '
            f'({COEFFICIENT_NAMES[model]}) or none: fix the calibration file'
        )


@dataclass(frozen=True)
class PinholeCamera:
    """A camera at one image resolution, hashable so derived rays can be cached.

    Build it with `from_camera_info` (or `from_k`), which validate; derived cameras
    (`scaled_to`, `matched_to`, `cropped`) describe the same lens and stay valid.

    Attributes:
        width: image columns the intrinsics describe.
        height: image rows the intrinsics describe.
        fx: focal length along u, pixels.
        fy: focal length along v, pixels.
        cx: principal point u, pixels.
        cy: principal point v, pixels.
        distortion_model: ROS model name; '' or any name with all-zero coefficients = none.
        d: distortion coefficients in the model's order (OpenCV's order); () = none.
        skew: K[0, 1], pixels (zero for every ROS calibration tool).
        rectification: R, row-major 3x3 (stereo rectification; identity for a mono camera).
        projection: P, row-major 3x4; all zeros means unset (many mono drivers leave it so).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = ''
    d: tuple[float, ...] = ()
    skew: float = 0.0
    rectification: tuple[float, ...] = IDENTITY_R
    projection: tuple[float, ...] = UNSET_P

    @classmethod
    def from_camera_info(cls, msg: Any) -> PinholeCamera:
        """The camera of a sensor_msgs/CameraInfo, validated, describing the published image.

        Duck-typed: an rclpy `sensor_msgs.msg.CameraInfo` and a rosbags typestore CameraInfo
        give equal cameras. The calibration is validated at its own resolution; then a set ROI
        crops it and binning (> 1) shrinks it, as the driver did to the image, so the result
        describes the image actually published (and `d`, `r` stay as calibrated).
        `roi.do_rectify` is ignored: rays always come from K and D of the raw image.

        Raises:
            CameraError: any number of K, D, R, P not finite; fx or fy not positive; a K that
                is not [fx s cx; 0 fy cy; 0 0 1]; the principal point more than
                `PRINCIPAL_POINT_MARGIN` image sizes outside the image; D of the wrong length
                for its model; non-zero D with an unknown model; an ROI outside the image.
        """
        camera = cls.from_k(
            msg.width,
            msg.height,
            msg.k,
            d=msg.d,
            distortion_model=msg.distortion_model,
            r=msg.r,
            p=msg.p,
        )
        roi = msg.roi
        if int(roi.width) and int(roi.height):
            try:
                camera = camera.cropped(roi.x_offset, roi.y_offset, roi.width, roi.height)
            except CameraError as err:
                raise CameraError(f'ROI: {err}') from err
        binning_x, binning_y = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
        if binning_x > 1 or binning_y > 1:
            if camera.width < binning_x or camera.height < binning_y:
                raise CameraError(
                    f'binning {binning_x}x{binning_y} leaves no pixel of the '
                    f'{camera.width}x{camera.height} image; publish the binning the driver '
                    'applied (0 or 1 = none)'
                )
            camera = camera._rescaled(
                1.0 / binning_x,
                1.0 / binning_y,
                camera.width // binning_x,
                camera.height // binning_y,
            )
        return camera

    @classmethod
    def from_k(
        cls,
        width: int,
        height: int,
        k: Sequence[float] | np.ndarray,
        *,
        d: Sequence[float] | np.ndarray = (),
        distortion_model: str = '',
        r: Sequence[float] | np.ndarray | None = None,
        p: Sequence[float] | np.ndarray | None = None,
    ) -> PinholeCamera:
        """Build and validate from a row-major K (as in sensor_msgs/CameraInfo.k).

        R defaults to identity and P to unset (zeros). Every rule of `from_camera_info`
        applies; this is the one place a calibration is checked.

        Raises:
            CameraError: see `from_camera_info`.
        """
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise CameraError(
                f'camera size is {width}x{height}; fill in width/height: {CALIBRATE_HINT}'
            )
        k_values = _values('K', k, K_VALUES)
        d_values = tuple(float(value) for value in np.asarray(d, dtype=np.float64).reshape(-1))
        r_values = IDENTITY_R if r is None else _values('R', r, R_VALUES)
        p_values = UNSET_P if p is None else _values('P', p, P_VALUES)
        for name, values in (('K', k_values), ('D', d_values), ('R', r_values), ('P', p_values)):
            _check_finite(name, values)
        fx, skew, cx, lower_left, fy, cy, *bottom = k_values
        if not (fx > 0 and fy > 0):
            raise CameraError(
                f'K has fx={fx}, fy={fy}; expected both > 0: the camera is uncalibrated, '
                f'{CALIBRATE_HINT}'
            )
        if lower_left != 0.0 or tuple(bottom) != (0.0, 0.0, 1.0):
            raise CameraError(
                f'K rows 2-3 are ({lower_left}, {fy}, {cy}), {tuple(bottom)}; expected '
                f'(0, fy, cy), (0, 0, 1): {CALIBRATE_HINT}'
            )
        for axis, centre, size in (('cx', cx, width), ('cy', cy, height)):
            margin = PRINCIPAL_POINT_MARGIN * size
            if not -0.5 - margin <= centre <= size - 0.5 + margin:
                raise CameraError(
                    f'K has {axis}={centre}, far outside the {width}x{height} image (allowed '
                    f'{-0.5 - margin:g} .. {size - 0.5 + margin:g}); K belongs to another '
                    'resolution or is wrong: publish the CameraInfo of this image'
                )
        model = str(distortion_model)
        _check_distortion(model, d_values)
        return cls(width, height, fx, fy, cx, cy, model, d_values, skew, r_values, p_values)

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(value != 0.0 for value in self.d)

    @property
    def k(self) -> np.ndarray:
        """(3, 3) float64 camera matrix of the raw (distorted) image."""
        return np.array(
            [[self.fx, self.skew, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]],
            dtype=np.float64,
        )

    @property
    def r(self) -> np.ndarray:
        """(3, 3) float64 rectification rotation R."""
        return np.array(self.rectification, dtype=np.float64).reshape(3, 3)

    @property
    def p(self) -> np.ndarray:
        """(3, 4) float64 projection P of the rectified image; all zeros when unset."""
        return np.array(self.projection, dtype=np.float64).reshape(3, 4)

    def _with(self, width: int, height: int, k: np.ndarray, p: np.ndarray) -> PinholeCamera:
        """This lens at another size with new K and P (an unset P stays unset).

        Raises:
            CameraError: K or P overflowed (a finite but absurd calibration, e.g. P = 1e308,
                cropped or rescaled); a derived camera is as valid as the one it came from.
        """
        projection = self.projection if not any(self.projection) else tuple(p.reshape(-1))
        for name, values in (('K', tuple(k.reshape(-1))), ('P', projection)):
            if not all(math.isfinite(value) for value in values):
                raise CameraError(
                    f'{name} overflows at {width}x{height} (from {self.width}x{self.height}); '
                    f'its numbers are far beyond any real camera: {CALIBRATE_HINT}'
                )
        return PinholeCamera(
            width=int(width),
            height=int(height),
            fx=float(k[0, 0]),
            fy=float(k[1, 1]),
            cx=float(k[0, 2]),
            cy=float(k[1, 2]),
            distortion_model=self.distortion_model,
            d=self.d,
            skew=float(k[0, 1]),
            rectification=self.rectification,
            projection=tuple(float(value) for value in projection),
        )

    def _rescaled(self, sx: float, sy: float, width: int, height: int) -> PinholeCamera:
        k = rescale_projection(self.k, sx, sy)
        return self._with(width, height, k, rescale_projection(self.p, sx, sy))

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera seen at another resolution (distortion is resolution-free)."""
        if (width, height) == (self.width, self.height):
            return self
        return self._rescaled(width / self.width, height / self.height, width, height)

    def matched_to(self, width: int, height: int) -> PinholeCamera:
        """Intrinsics for an image of `width` x `height`, allowing only clean integer rescales.

        A CameraInfo calibrated at 1280x960 describes a 640x480 image (binned or resized by 2);
        one for 1280x720 does not describe a 640x480 image, which is an error for that frame.

        Raises:
            CameraError: the sizes differ by anything but one integer factor on both axes.
        """
        if (width, height) == (self.width, self.height):
            return self
        same_aspect = width * self.height == height * self.width
        factor = max(width, self.width) / min(width, self.width)
        if not (same_aspect and factor == round(factor)):
            raise CameraError(
                f'CameraInfo is for {self.width}x{self.height} but the image is {width}x{height} '
                '(not an integer rescale); publish the CameraInfo that belongs to this image'
            )
        return self.scaled_to(width, height)

    def cropped(self, x: int, y: int, width: int, height: int) -> PinholeCamera:
        """The camera of the `width` x `height` window whose top-left pixel is (x, y).

        The principal point (of K and of a set P) moves by (-x, -y); the lens is unchanged.

        Raises:
            CameraError: an empty window or one that leaves the image.
        """
        x, y, width, height = int(x), int(y), int(width), int(height)
        if not (0 <= x and 0 <= y and 0 < width and 0 < height):
            raise CameraError(
                f'crop {width}x{height} at ({x}, {y}) is empty or starts outside the image; '
                'use a non-negative offset and a positive size'
            )
        if x + width > self.width or y + height > self.height:
            raise CameraError(
                f'crop {width}x{height} at ({x}, {y}) leaves the {self.width}x{self.height} '
                'image; keep the window inside it'
            )
        if (x, y, width, height) == (0, 0, self.width, self.height):
            return self
        k = _shift_projection(self.k, x, y)
        return self._with(width, height, k, _shift_projection(self.p, x, y))

    def rays(self) -> np.ndarray:
        """(H, W, 2) float32 normalised, undistorted ray directions (x/z, y/z) for every pixel.

        Cached per camera; treat the result as read-only.
        """
        return _pixel_rays(self)

    def share_without_ray(self) -> float:
        """The share of this camera's pixels that get no ray (see `rays_at`); 0 without D."""
        if not self.has_distortion:
            return 0.0
        return float(np.isnan(self.rays()[..., 0]).mean())

    def rays_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(..., 2) float64 undistorted normalised rays through pixel coordinates u, v.

        K^-1 (skew included) gives the distorted normalised coordinates; OpenCV then inverts
        the lens model iteratively in those coordinates. A pixel whose ray does not land back on
        it (the polynomial folds back there, or the inverse diverged; see
        ROUND_TRIP_TOLERANCE_PX) gets NaN: no ray, so no point, rather than another pixel's ray.
        """
        pixels = np.stack(np.broadcast_arrays(u, v), axis=-1).astype(np.float64)
        shape = pixels.shape
        flat = pixels.reshape(-1, 1, 2)
        y = (flat[..., 1] - self.cy) / self.fy
        x = (flat[..., 0] - self.cx - self.skew * y) / self.fx
        distorted = np.stack((x, y), axis=-1)
        if not self.has_distortion:
            return distorted.reshape(shape)
        identity = np.eye(3)
        coefficients = np.array(self.d, dtype=np.float64)
        if self.distortion_model == EQUIDISTANT:
            undistorted = cv2.fisheye.undistortPoints(
                distorted, identity, coefficients, criteria=UNDISTORT_CRITERIA
            )
        else:  # R = P = identity: normalised coordinates of the unrectified camera
            undistorted = cv2.undistortPointsIter(
                distorted, identity, coefficients, identity, identity, UNDISTORT_CRITERIA
            )
        rays = np.asarray(undistorted, dtype=np.float64).reshape(-1, 2)
        rays[~self._lands_back(rays, distorted.reshape(-1, 2))] = np.nan
        return rays.reshape(shape)

    def project_rays(self, rays: np.ndarray) -> np.ndarray:
        """(N, 2) float64 pixel coordinates (u, v) of (N, 2) undistorted normalised rays.

        The forward lens model (the inverse of `rays_at`) then K, so a 3D point lands on the
        raw-image pixel that saw it.
        """
        rays = np.asarray(rays, dtype=np.float64).reshape(-1, 2)
        if not self.has_distortion:
            distorted = rays
        elif self.distortion_model == EQUIDISTANT:
            again = cv2.fisheye.distortPoints(
                rays.reshape(-1, 1, 2), np.eye(3), np.array(self.d, dtype=np.float64)
            )
            distorted = np.asarray(again, dtype=np.float64).reshape(-1, 2)
        else:
            distorted = _distort_polynomial(rays, np.array(self.d, dtype=np.float64))
        u = self.fx * distorted[:, 0] + self.skew * distorted[:, 1] + self.cx
        v = self.fy * distorted[:, 1] + self.cy
        return np.stack((u, v), axis=1)

    def _lands_back(self, rays: np.ndarray, distorted: np.ndarray) -> np.ndarray:
        """(N,) bool: each ray, distorted again, lands within ROUND_TRIP_TOLERANCE_PX of its pixel.

        Args:
            rays: (N, 2) undistorted normalised rays.
            distorted: (N, 2) the distorted normalised coordinates they came from.
        """
        coefficients = np.array(self.d, dtype=np.float64)
        if self.distortion_model == EQUIDISTANT:
            again = cv2.fisheye.distortPoints(rays.reshape(-1, 1, 2), np.eye(3), coefficients)
            again = np.asarray(again, dtype=np.float64).reshape(-1, 2)
        else:
            again = _distort_polynomial(rays, coefficients)
        error = (again - distorted) * (self.fx, self.fy)
        with np.errstate(invalid='ignore'):
            return np.hypot(error[:, 0], error[:, 1]) <= ROUND_TRIP_TOLERANCE_PX

    def patch_centres(self, grid_height: int, grid_width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v), each (grid_height, grid_width), of a patch grid's centres.

        The model sees the whole image resized to its input, so patch (i, j) covers the image
        rows [i, i + 1) * H / grid_height and the columns likewise.
        """
        u = (np.arange(grid_width) + 0.5) * (self.width / grid_width) - 0.5
        v = (np.arange(grid_height) + 0.5) * (self.height / grid_height) - 0.5
        uu, vv = np.meshgrid(u, v)
        return uu, vv


def _distort_polynomial(rays: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(N, 2) distorted normalised coordinates of (N, 2) rays, plumb_bob / rational_polynomial.

    The forward model OpenCV's projectPoints applies (k1 k2 p1 p2 k3 k4 k5 k6; equal to 1e-15),
    without the Jacobians it always computes: six times faster on a full pixel grid.
    """
    k1, k2, p1, p2, k3, k4, k5, k6 = np.pad(d, (0, 8 - len(d)))
    x, y = rays[:, 0], rays[:, 1]
    r2 = x * x + y * y
    with np.errstate(over='ignore', invalid='ignore'):
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xy = x * y
        return np.stack(
            (
                x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x),
                y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy,
            ),
            axis=-1,
        )


@functools.lru_cache(maxsize=RAY_CACHE_SIZE)
def _pixel_rays(camera: PinholeCamera) -> np.ndarray:
    u = np.arange(camera.width, dtype=np.float64)
    v = np.arange(camera.height, dtype=np.float64)
    uu, vv = np.meshgrid(u, v)
    rays = camera.rays_at(uu, vv).astype(np.float32)
    rays.flags.writeable = False
    return rays


def backproject(depth: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Camera-frame points from z-depth.

    Args:
        depth: (H, W) float32 z-depth in metres; NaN stays NaN.
        rays: (H, W, 2) normalised rays (x/z, y/z), e.g. `PinholeCamera.rays()`; NaN where a
            pixel has no ray.

    Returns:
        (H, W, 3) float32 points (x right, y down, z forward; REP 103 optical frame), metres;
        all three NaN where the depth or the ray is.
    """
    if depth.shape != rays.shape[:2]:
        raise CameraError(
            f'depth is {depth.shape[1]}x{depth.shape[0]} but the rays are '
            f'{rays.shape[1]}x{rays.shape[0]}; match the camera to the depth resolution first'
        )
    points = np.empty((*depth.shape, 3), dtype=np.float32)
    np.multiply(rays[..., 0], depth, out=points[..., 0])
    np.multiply(rays[..., 1], depth, out=points[..., 1])
    points[..., 2] = depth
    no_ray = np.isnan(points[..., 0])
    if no_ray.any():  # a pixel without a ray (or depth) has no point, not a point with only z
        points[no_ray] = np.nan
    return points


def patch_points(
    depth: np.ndarray, camera: PinholeCamera, grid_height: int, grid_width: int
) -> np.ndarray:
    """(grid_height, grid_width, 3) float32 patch centres back-projected with the patch depth.

    The patch depth is the mean depth over the patch's pixels (NaN if any is invalid), and the
    ray goes through the patch centre (undistorted).

    Args:
        depth: (H, W) float32 metres at the camera's resolution.
        camera: intrinsics matched to the depth image.
        grid_height: patch rows (input height / patch size).
        grid_width: patch columns.
    """
    patch_depth = cv2.resize(
        np.ascontiguousarray(depth, dtype=np.float32),
        (grid_width, grid_height),
        interpolation=cv2.INTER_AREA,
    )
    u, v = camera.patch_centres(grid_height, grid_width)
    rays = camera.rays_at(u, v).astype(np.float32)
    return backproject(patch_depth, rays)
