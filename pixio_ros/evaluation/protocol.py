"""The monocular-depth evaluation protocols of NYUv2 and KITTI, selectable by name (`--protocol`).

A protocol fixes what the scores mean so that they compare with published tables:

- the evaluated region: the Eigen crop for NYUv2 (rows 45:471, columns 41:601 of the 480x640
  ground truth, as in ZoeDepth, BTS and the Pixio paper's code), the Garg crop for KITTI (rows
  int(0.40810811 H):int(0.99189189 H), columns int(0.03594771 W):int(0.96405229 W), as in
  Monodepth / BTS);
- the depth range of valid ground truth: 1e-3..10 m (NYUv2), 1e-3..80 m (KITTI);
- the prediction resized to the ground truth's resolution (bilinear, by the Engine) and clipped
  into the range (`alignment.align_depth` clips every prediction it scores);
- every metric computed per image, then averaged over images.

Bounds are (start, stop) as Python slices: rows ``top:bottom`` and columns ``left:right``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pixio_ros.data.datasets import KITTI_DEPTH_RANGE, NYU_DEPTH_RANGE
from pixio_ros.evaluation.errors import EvaluationError

__all__ = [
    'EIGEN_CROP_480X640',
    'GARG_CROP_FRACTIONS',
    'PROTOCOLS',
    'PROTOCOL_NAMES',
    'CropBox',
    'EvalProtocol',
    'eigen_crop',
    'garg_crop',
    'get_protocol',
]

EIGEN_REFERENCE_SIZE: Final = (480, 640)
EIGEN_CROP_480X640: Final = (45, 471, 41, 601)
"""NYUv2 Eigen crop of 480x640 ground truth (top, bottom, left, right): rows 45:471, cols 41:601."""
GARG_CROP_FRACTIONS: Final = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
"""KITTI Garg crop as fractions of (height, height, width, width): top, bottom, left, right."""


@dataclass(frozen=True)
class CropBox:
    """Rows ``top:bottom`` and columns ``left:right`` of an image (Python slice bounds)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        """Rows inside the box."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """Columns inside the box."""
        return self.right - self.left

    def mask(self, height: int, width: int) -> np.ndarray:
        """(height, width) bool, True inside the box."""
        inside = np.zeros((height, width), dtype=bool)
        inside[self.top : self.bottom, self.left : self.right] = True
        return inside

    def as_list(self) -> list[int]:
        """[top, bottom, left, right] for JSON."""
        return [self.top, self.bottom, self.left, self.right]


def eigen_crop(height: int, width: int) -> CropBox:
    """The Eigen crop: exactly rows 45:471, columns 41:601 at 480x640.

    Ground truth of another size gets the same crop scaled to it (rounded), so that NYUv2 data
    stored at half resolution is scored on the same part of the view.
    """
    if (height, width) == EIGEN_REFERENCE_SIZE:
        return CropBox(*EIGEN_CROP_480X640)
    ref_h, ref_w = EIGEN_REFERENCE_SIZE
    top, bottom, left, right = EIGEN_CROP_480X640
    return CropBox(
        round(top * height / ref_h),
        round(bottom * height / ref_h),
        round(left * width / ref_w),
        round(right * width / ref_w),
    )


def garg_crop(height: int, width: int) -> CropBox:
    """The Garg crop of a ``height`` x ``width`` KITTI ground truth (int() of the fractions)."""
    top, bottom, left, right = GARG_CROP_FRACTIONS
    return CropBox(int(top * height), int(bottom * height), int(left * width), int(right * width))


@dataclass(frozen=True)
class EvalProtocol:
    """A named evaluation protocol.

    Attributes:
        name: `--protocol` name.
        crop_name: name of its crop ('eigen', 'garg').
        min_depth: valid ground truth is above this, metres.
        max_depth: valid ground truth is below this, metres.
        crop: the crop box for a ground-truth size.
        reference: where the protocol comes from, for the report.
    """

    name: str
    crop_name: str
    min_depth: float
    max_depth: float
    crop: Callable[[int, int], CropBox]
    reference: str

    def region(self, height: int, width: int) -> np.ndarray:
        """(height, width) bool: the pixels this protocol scores (before the depth range)."""
        return self.crop(height, width).mask(height, width)

    def describe(self, sizes: Iterable[tuple[int, int]] = ()) -> dict[str, Any]:
        """JSON-friendly: name, crop, range, rules, and the crop box of each ground-truth size."""
        return {
            'name': self.name,
            'crop': self.crop_name,
            'min_depth': self.min_depth,
            'max_depth': self.max_depth,
            'crop_boxes': {
                f'{height}x{width}': self.crop(height, width).as_list()
                for height, width in sorted(set(sizes))
            },
            'crop_box_order': 'top, bottom, left, right (rows top:bottom, columns left:right)',
            'prediction': 'resized to the ground truth (bilinear), clipped to the depth range',
            'averaging': 'metrics per image, then the mean over images',
            'reference': self.reference,
        }


PROTOCOLS: Final = {
    protocol.name: protocol
    for protocol in (
        EvalProtocol(
            'nyuv2',
            'eigen',
            *NYU_DEPTH_RANGE,
            eigen_crop,
            'NYUv2 test (654 images), Eigen crop, 1e-3..10 m, as in ZoeDepth / BTS and the '
            'Pixio paper',
        ),
        EvalProtocol(
            'kitti',
            'garg',
            *KITTI_DEPTH_RANGE,
            garg_crop,
            'KITTI Eigen split, Garg crop, 1e-3..80 m, as in Monodepth / BTS',
        ),
    )
}
PROTOCOL_NAMES: Final = tuple(PROTOCOLS)


def get_protocol(name: str) -> EvalProtocol:
    """The protocol called ``name``.

    Raises:
        EvaluationError: an unknown name (the known ones are listed).
    """
    try:
        return PROTOCOLS[name]
    except KeyError as err:
        raise EvaluationError(
            f'--protocol {name!r} is unknown; choose one of {", ".join(PROTOCOL_NAMES)} or none.'
        ) from err
