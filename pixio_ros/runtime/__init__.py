"""Torch + numpy runtime: the artifact engine, camera geometry, image decoding, cloud selection."""

from __future__ import annotations

from typing import Any

from pixio_ros.runtime.camera import CameraError, PinholeCamera, backproject, patch_points
from pixio_ros.runtime.cloud import CloudOptions, SelectedPoints, select_points
from pixio_ros.runtime.image_codec import (
    ImageCodecError,
    decode_compressed_rgb,
    decode_depth,
    decode_rgb,
)

__all__ = [
    'CameraError',
    'CloudOptions',
    'Engine',
    'EngineError',
    'ImageCodecError',
    'PinholeCamera',
    'Prediction',
    'SelectedPoints',
    'backproject',
    'decode_compressed_rgb',
    'decode_depth',
    'decode_rgb',
    'patch_points',
    'select_points',
]


def __getattr__(name: str) -> Any:
    """Import the engine (and torch) only when it is asked for; the codec needs no torch."""
    if name in ('Engine', 'EngineError', 'Prediction'):
        from pixio_ros.runtime import engine

        return getattr(engine, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
