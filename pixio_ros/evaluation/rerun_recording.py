"""`pixio-ros eval --rerun RUN.rrd`: the run as a Rerun recording, one entry per scored frame.

What the eval already has for each frame is logged as it is scored, on the bag's timeline
(`bag_time`, the frame's header stamp) and on `frame` (its number): the RGB frame, ground truth
and prediction as depth images under the camera's pinhole, both point clouds in 3D, the relative
error image, and the per-frame values of `per_frame.csv` as time series. Nothing is recomputed:
the values are the FrameResult's and the arrays the FrameView's the report uses.

rerun-sdk is an optional dependency (setup.py's `viz` extra), imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Final

import cv2
import numpy as np

from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.replay import FrameResult, FrameView
from pixio_ros.evaluation.report import FRAME_SERIES, frame_row
from pixio_ros.runtime.camera import PinholeCamera, backproject

__all__ = [
    'APPLICATION_ID',
    'CAMERA',
    'ERROR_IMAGE',
    'FRAME_TIMELINE',
    'GT_DEPTH',
    'GT_POINTS',
    'MAX_CLOUD_POINTS',
    'METRICS',
    'PREDICTED_DEPTH',
    'PREDICTED_POINTS',
    'RGB_IMAGE',
    'TIMELINE',
    'WORLD',
    'RerunRecorder',
    'cloud_stride',
    'import_rerun',
]

APPLICATION_ID: Final = 'pixio_ros_eval'
TIMELINE: Final = 'bag_time'
FRAME_TIMELINE: Final = 'frame'
# Entity paths. `world` is the camera's optical frame (the clouds are in it); the images sit
# under the pinhole at `world/camera`, so the 3D view shows them in its frustum.
WORLD: Final = 'world'
CAMERA: Final = 'world/camera'
RGB_IMAGE: Final = f'{CAMERA}/rgb'
GT_DEPTH: Final = f'{CAMERA}/depth_ground_truth'
PREDICTED_DEPTH: Final = f'{CAMERA}/depth_predicted'
ERROR_IMAGE: Final = f'{CAMERA}/relative_error'
GT_POINTS: Final = 'world/points_ground_truth'
PREDICTED_POINTS: Final = 'world/points_predicted'
METRICS: Final = 'metrics'
"""Time series `metrics/<per_frame.csv column>`, one per numeric column."""
MAX_CLOUD_POINTS: Final = 50_000
"""Clouds are taken on a pixel grid with at most this many points (a 640x480 frame: stride 2)."""
METRES: Final = 1.0  # DepthImage meter: the depth arrays are in metres


def import_rerun() -> ModuleType:
    """rerun-sdk, or an EvaluationError naming how to install it."""
    try:
        import rerun
    except ImportError as err:
        raise EvaluationError(
            "--rerun needs rerun-sdk: pip install 'pixio_ros[viz]' (make setup installs it), "
            'or leave --rerun out.'
        ) from err
    return rerun


def cloud_stride(height: int, width: int, max_points: int = MAX_CLOUD_POINTS) -> int:
    """The smallest pixel stride that leaves at most `max_points` grid points."""
    stride = 1
    while math.ceil(height / stride) * math.ceil(width / stride) > max_points:
        stride += 1
    return stride


class RerunRecorder:
    """Writes one .rrd file; `log_frame` is called by the Replayer for every scored frame.

    Args:
        path: the .rrd file to write (the caller stages it and moves it into place).
        name: the recording's name in the viewer (the bag or dataset).
    """

    def __init__(self, path: Path, *, name: str) -> None:
        self._rr = import_rerun()
        self._stream = self._rr.RecordingStream(APPLICATION_ID)
        self._stream.save(str(path))
        self._stream.send_recording_name(name)
        # REP 103 optical frame: x right, y down, z forward.
        self._stream.log(WORLD, self._rr.ViewCoordinates.RDF, static=True)

    def __enter__(self) -> RerunRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the file."""
        self._stream.flush()
        self._stream.disconnect()

    def log_frame(self, result: FrameResult, view: FrameView, camera: PinholeCamera | None) -> None:
        """Log one scored frame at its stamp; clouds and pinhole only with a camera model."""
        rr = self._rr
        stream = self._stream
        stream.set_time(TIMELINE, timestamp=np.datetime64(result.stamp_ns, 'ns'))
        stream.set_time(FRAME_TIMELINE, sequence=result.number)
        height, width = view.gt.shape
        rgb = view.rgb
        if rgb.shape[:2] != (height, width):  # as the report's panels: RGB at the depth size
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        if camera is not None:
            stream.log(CAMERA, rr.Pinhole(image_from_camera=camera.k, resolution=[width, height]))
        stream.log(RGB_IMAGE, rr.Image(np.ascontiguousarray(rgb)))
        stream.log(GT_DEPTH, rr.DepthImage(view.gt.astype(np.float32), meter=METRES))
        stream.log(PREDICTED_DEPTH, rr.DepthImage(view.aligned.astype(np.float32), meter=METRES))
        stream.log(ERROR_IMAGE, rr.Image(view.relative_error().astype(np.float32)))
        if camera is not None:
            self._log_clouds(view, rgb, camera)
        for column, value in frame_row(result).items():
            if column in FRAME_SERIES and math.isfinite(value):
                stream.log(f'{METRICS}/{column}', rr.Scalars(float(value)))

    def _log_clouds(self, view: FrameView, rgb: np.ndarray, camera: PinholeCamera) -> None:
        stride = cloud_stride(*view.gt.shape)
        rays = camera.rays()[::stride, ::stride]
        colors = rgb[::stride, ::stride].reshape(-1, 3)
        for entity, depth in ((GT_POINTS, view.gt), (PREDICTED_POINTS, view.aligned)):
            points = backproject(depth[::stride, ::stride].astype(np.float32), rays).reshape(-1, 3)
            finite = np.isfinite(points).all(axis=1)
            self._stream.log(entity, self._rr.Points3D(points[finite], colors=colors[finite]))
