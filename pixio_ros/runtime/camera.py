"""Pinhole intrinsics with lens distortion: rescaling, cached per-pixel rays, back-projection.

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

import cv2
import numpy as np

from pixio_ros.errors import PixioRosError

__all__ = [
    'DISTORTION_MODELS',
    'CameraError',
    'PinholeCamera',
    'backproject',
    'patch_points',
    'rescale_projection',
]

# ROS distortion model names (sensor_msgs/distortion_models.hpp) that rays() can undistort.
PLUMB_BOB = 'plumb_bob'
RATIONAL_POLYNOMIAL = 'rational_polynomial'
EQUIDISTANT = 'equidistant'
DISTORTION_MODELS: tuple[str, ...] = (PLUMB_BOB, RATIONAL_POLYNOMIAL, EQUIDISTANT)
EQUIDISTANT_COEFFICIENTS = 4
# Iterative undistortion: enough iterations for strong wide-angle distortion to converge.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
# Pixel-grid rays are cached per camera; a node sees one or two cameras at a time.
RAY_CACHE_SIZE = 8
K_VALUES = 9  # row-major 3x3


class CameraError(PixioRosError):
    """Intrinsics that cannot describe the image (uncalibrated, wrong size, unknown model)."""


def rescale_projection(matrix: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K (3, 3) or P (3, 4) of the same camera after its image is resized by (sx, sy).

    Pixel-centre convention, so that pixel centres stay aligned: f' = f s and
    c' = (c + 0.5) s - 0.5; P's Tx / Ty (f times baseline) scale with f. Returns a float64 copy.
    """
    out = np.array(matrix, dtype=np.float64)
    out[0, :] *= sx
    out[1, :] *= sy
    out[0, 2] += 0.5 * sx - 0.5
    out[1, 2] += 0.5 * sy - 0.5
    return out


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of one image resolution, hashable so derived rays can be cached.

    Attributes:
        width: image columns the intrinsics describe.
        height: image rows the intrinsics describe.
        fx: focal length along u, pixels.
        fy: focal length along v, pixels.
        cx: principal point u, pixels.
        cy: principal point v, pixels.
        distortion_model: ROS model name; '' or any name with all-zero coefficients = none.
        d: distortion coefficients in the model's order (OpenCV's order).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = ''
    d: tuple[float, ...] = ()

    @classmethod
    def from_k(
        cls,
        width: int,
        height: int,
        k: Sequence[float],
        *,
        d: Sequence[float] = (),
        distortion_model: str = '',
    ) -> PinholeCamera:
        """Build from a row-major 3x3 K (as in sensor_msgs/CameraInfo.k).

        Raises:
            CameraError: zero size or a K without positive focal lengths (uncalibrated camera).
        """
        k = [float(value) for value in np.asarray(k, dtype=np.float64).reshape(-1)]
        if len(k) != K_VALUES:
            raise CameraError(f'K has {len(k)} values; expected the 9 of a row-major 3x3 matrix')
        camera = cls(
            width=int(width),
            height=int(height),
            fx=k[0],
            fy=k[4],
            cx=k[2],
            cy=k[5],
            distortion_model=str(distortion_model),
            d=tuple(float(value) for value in d),
        )
        camera.validate()
        return camera

    def validate(self) -> None:
        """Raise CameraError unless the intrinsics can back-project pixels."""
        if self.width <= 0 or self.height <= 0:
            raise CameraError(
                f'CameraInfo size is {self.width}x{self.height}; calibrate the camera or fill in '
                'width/height'
            )
        if not (self.fx > 0 and self.fy > 0 and math.isfinite(self.cx + self.cy)):
            raise CameraError(
                f'CameraInfo K has fx={self.fx}, fy={self.fy}; the camera is uncalibrated '
                '(calibrate it, e.g. with camera_calibration)'
            )
        if self.has_distortion and self.distortion_model not in DISTORTION_MODELS:
            raise CameraError(
                f'distortion model {self.distortion_model!r} with non-zero D is not supported; '
                f'use one of {", ".join(DISTORTION_MODELS)} or rectify the image (image_proc)'
            )

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(value != 0.0 for value in self.d)

    @property
    def k(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera seen at another resolution (distortion is resolution-free)."""
        if (width, height) == (self.width, self.height):
            return self
        k = rescale_projection(self.k, width / self.width, height / self.height)
        return PinholeCamera(
            width=int(width),
            height=int(height),
            fx=float(k[0, 0]),
            fy=float(k[1, 1]),
            cx=float(k[0, 2]),
            cy=float(k[1, 2]),
            distortion_model=self.distortion_model,
            d=self.d,
        )

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

    def rays(self) -> np.ndarray:
        """(H, W, 2) float32 normalised, undistorted ray directions (x/z, y/z) for every pixel.

        Cached per camera; treat the result as read-only.
        """
        return _pixel_rays(self)

    def rays_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(..., 2) float64 undistorted normalised rays through pixel coordinates u, v."""
        pixels = np.stack(np.broadcast_arrays(u, v), axis=-1).astype(np.float64)
        shape = pixels.shape
        flat = pixels.reshape(-1, 1, 2)
        if not self.has_distortion:
            normalised = (flat - [self.cx, self.cy]) / [self.fx, self.fy]
        elif self.distortion_model == EQUIDISTANT:
            coefficients = np.array(self.d[:EQUIDISTANT_COEFFICIENTS], dtype=np.float64)
            normalised = cv2.fisheye.undistortPoints(
                flat, self.k, coefficients, criteria=UNDISTORT_CRITERIA
            )
        else:
            normalised = cv2.undistortPointsIter(
                flat,
                self.k,
                np.array(self.d, dtype=np.float64),
                None,
                None,
                UNDISTORT_CRITERIA,
            )
        return normalised.reshape(shape)

    def patch_centres(self, grid_height: int, grid_width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v), each (grid_height, grid_width), of a patch grid's centres.

        The model sees the whole image resized to its input, so patch (i, j) covers the image
        rows [i, i + 1) * H / grid_height and the columns likewise.
        """
        u = (np.arange(grid_width) + 0.5) * (self.width / grid_width) - 0.5
        v = (np.arange(grid_height) + 0.5) * (self.height / grid_height) - 0.5
        uu, vv = np.meshgrid(u, v)
        return uu, vv


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
        rays: (H, W, 2) normalised rays (x/z, y/z), e.g. `PinholeCamera.rays()`.

    Returns:
        (H, W, 3) float32 points (x right, y down, z forward; REP 103 optical frame), metres.
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
