"""Where predicted depth comes from: the node's Engine running an artifact, or a depth topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from pixio_ros.data.decode import decode_depth_image
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.plan import PREDICTION
from pixio_ros.runtime.engine import Engine, Prediction
from pixio_ros.runtime.products import ProductOptions, colormap_max_depth


@dataclass
class FramePrediction:
    """Depth at the ground truth's resolution plus everything else the model gave (output bag).

    Attributes:
        depth: (H, W) float32 metres, NaN where there is none.
        outputs: every output of the model at the same resolution (the products' input), or
            just the depth for recorded predictions.
        inference_ms: model time for this frame (None for recorded predictions).
    """

    depth: np.ndarray
    outputs: Prediction
    inference_ms: float | None = None


class Predictor(Protocol):
    """Produces the prediction of one frame."""

    @property
    def product_options(self) -> ProductOptions:
        """How the output bag builds the node's products from this predictor's outputs."""

    def predict(
        self, rgb: np.ndarray, messages: dict[str, Any], size: tuple[int, int]
    ) -> FramePrediction:
        """Predict depth for `rgb` at `size` (H, W)."""


class EnginePredictor:
    """Runs the artifact with the node's Engine (same preprocessing, same device handling).

    Args:
        engine: a loaded `pixio_ros.runtime.engine.Engine`.
        extras: fetch every output (for the output bag), not only the depth.
    """

    def __init__(self, engine: Engine, *, extras: bool) -> None:
        if not {'depth', 'points'} & set(engine.outputs):
            raise EvaluationError(
                f'artifact {engine.path} has no depth output (outputs: '
                f'{", ".join(sorted(engine.outputs))}); export one with --head-kind depth or '
                'points.'
            )
        self.engine = engine
        self.outputs: list[str] | None = None if extras else ['depth']
        # The node's defaults: its colour map spans the artifact's depth range.
        self.product_options = ProductOptions(
            colored_max_depth=colormap_max_depth(0.0, engine.metadata.max_depth)
        )

    def predict(
        self, rgb: np.ndarray, messages: dict[str, Any], size: tuple[int, int]
    ) -> FramePrediction:
        """Run the model on `rgb`; depth/points come back resized to `size`."""
        result = self.engine.infer(rgb, outputs=self.outputs, output_size=size)
        if result.depth is None:
            raise EvaluationError(f'artifact {self.engine.path} returned no depth.')
        return FramePrediction(result.depth, result, result.inference_ms)


class TopicPredictor:
    """Reads the prediction recorded in the bag (e.g. the live node's `depth` output)."""

    def __init__(self) -> None:
        self.product_options = ProductOptions()

    def predict(
        self, rgb: np.ndarray, messages: dict[str, Any], size: tuple[int, int]
    ) -> FramePrediction:
        """Decode the frame's prediction message, resized (nearest) to `size` if needed."""
        depth = decode_depth_image(messages[PREDICTION])
        if depth.shape != size:
            depth = cv2.resize(depth, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return FramePrediction(depth, Prediction(depth=depth))
