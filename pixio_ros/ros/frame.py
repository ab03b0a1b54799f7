"""One frame inside the node: what the inference stage hands on, and the settings it was run with.

The products themselves are built by `pixio_ros.runtime.products` and wrapped in messages by
`pixio_ros.ros.convert`; this module only maps the node's typed settings onto them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from pixio_ros.ros.settings import NodeSettings
from pixio_ros.runtime.alignment import AlignOptions
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.runtime.cloud import CloudOptions
from pixio_ros.runtime.engine import Prediction
from pixio_ros.runtime.navigation import NavigationOptions
from pixio_ros.runtime.products import ProductOptions, Wanted, colormap_max_depth

__all__ = ['InferredFrame', 'PreparedFrame', 'product_options']


@dataclass(frozen=True)
class InferredFrame:
    """What the inference stage hands to the publishing stage for one frame.

    Attributes:
        msg: the input message (its header goes on every output; `rgb` may view its data).
        rgb: (H, W, 3) uint8 decoded image.
        prediction: engine outputs at the depth resolution.
        wanted: products to build.
        options: how to build them (from the settings in force when the frame was taken).
        camera: the camera model at the depth resolution, or None without CameraInfo.
        align: the alignment options in force when the frame was taken.
    """

    msg: Image | CompressedImage
    rgb: np.ndarray
    prediction: Prediction
    wanted: Wanted
    options: ProductOptions
    camera: PinholeCamera | None
    align: AlignOptions = AlignOptions()


def product_options(settings: NodeSettings, artifact_max_depth: float | None) -> ProductOptions:
    """The products' options for the node's current settings."""
    points = settings.points
    return ProductOptions(
        cloud=CloudOptions(
            stride=points.stride,
            min_range=points.min_range,
            max_range=points.max_range,
            voxel_size=points.voxel_size,
            dense=points.dense,
            min_confidence=points.min_confidence,
            max_depth_gradient=points.max_depth_gradient,
        ),
        rgb=points.rgb,
        confidence=points.confidence,
        colored_max_depth=colormap_max_depth(settings.colored_max_depth, artifact_max_depth),
        features_half=settings.features.dtype == 'float16',
        navigation=navigation_options(settings, artifact_max_depth),
    )


def navigation_options(
    settings: NodeSettings, artifact_max_depth: float | None
) -> NavigationOptions:
    """Mounting and bands of scan and points/obstacles; range_max 0 = the head's range."""
    nav = settings.navigation
    return dataclasses.replace(
        nav, range_max=nav.range_max or colormap_max_depth(0.0, artifact_max_depth)
    )


@dataclass(frozen=True)
class PreparedFrame:
    """A decoded frame waiting for the model: what the inference stage needs to batch it.

    Attributes:
        msg: the input message.
        rgb: (H, W, 3) uint8 decoded image.
        outputs: engine outputs this frame needs.
        output_size: (H, W) of its depth, points and confidence.
        wanted: products to build.
        options: how to build them.
        camera: the camera model at `output_size`, or None without CameraInfo.
        align: the alignment options in force.
    """

    msg: Image | CompressedImage
    rgb: np.ndarray
    outputs: frozenset[str]
    output_size: tuple[int, int]
    wanted: Wanted
    options: ProductOptions
    camera: PinholeCamera | None
    align: AlignOptions = AlignOptions()

    def inferred(self, prediction: Prediction) -> InferredFrame:
        """This frame with the engine's `prediction`, ready for publishing."""
        return InferredFrame(
            msg=self.msg,
            rgb=self.rgb,
            prediction=prediction,
            wanted=self.wanted,
            options=self.options,
            camera=self.camera,
            align=self.align,
        )
