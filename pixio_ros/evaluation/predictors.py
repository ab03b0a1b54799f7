"""Where predicted depth comes from: the node's Engine running an artifact, or a depth topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from pixio_ros.data.decode import decode_depth_image
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.plan import PREDICTION


@dataclass
class FramePrediction:
    """Depth at the ground truth's resolution plus what the output bag can show.

    Attributes:
        depth: (H, W) float32 metres, NaN where there is none.
        points: (H, W, 3) float32 camera-frame metres from a point-map head, or None.
        features: (h, w, C) float32 patch features, or None.
        inference_ms: model time for this frame (None for recorded predictions).
    """

    depth: np.ndarray
    points: np.ndarray | None = None
    features: np.ndarray | None = None
    inference_ms: float | None = None


class Predictor(Protocol):
    """Produces the prediction of one frame."""

    def predict(self, rgb: np.ndarray, messages: dict[str, Any],
                size: tuple[int, int]) -> FramePrediction:
        """Predict depth for `rgb` at `size` (H, W)."""


class EnginePredictor:
    """Runs the artifact with the node's Engine (same preprocessing, same device handling).

    Args:
        engine: a loaded `pixio_ros.runtime.engine.Engine`.
        extras: also fetch points / features (for the output bag) when the artifact has them.
    """

    def __init__(self, engine: Any, *, extras: bool) -> None:
        if not {'depth', 'points'} & set(engine.outputs):
            raise EvaluationError(
                f'artifact {engine.path} has no depth output (outputs: '
                f'{", ".join(sorted(engine.outputs))}); export one with --head-kind depth or '
                'points.'
            )
        self.engine = engine
        self.outputs = ['depth']
        if extras:
            self.outputs += [name for name in ('points', 'features') if name in engine.outputs]

    def predict(self, rgb: np.ndarray, messages: dict[str, Any],
                size: tuple[int, int]) -> FramePrediction:
        """Run the model on `rgb`; depth/points come back resized to `size`."""
        result = self.engine.infer(rgb, outputs=self.outputs, output_size=size)
        return FramePrediction(result.depth.astype(np.float32, copy=False), result.points,
                               result.features, result.inference_ms)


class TopicPredictor:
    """Reads the prediction recorded in the bag (e.g. the live node's `depth` output)."""

    def predict(self, rgb: np.ndarray, messages: dict[str, Any],
                size: tuple[int, int]) -> FramePrediction:
        """Decode the frame's prediction message, resized (nearest) to `size` if needed."""
        depth = decode_depth_image(messages[PREDICTION])
        if depth.shape != size:
            depth = cv2.resize(depth, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return FramePrediction(depth)
