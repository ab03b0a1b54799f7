"""Colour maps of the report panels: scale ends, NaN handling, files written."""

from __future__ import annotations

import cv2
import numpy as np

from pixio_ros.evaluation.plots import colorize, plot_panel
from pixio_ros.evaluation.replay import FrameView


def test_colorize_maps_the_range_ends_and_blacks_out_nan():
    values = np.array([[1.0, 3.0, np.nan, 99.0]])
    rgb = colorize(values, 1.0, 3.0)
    lut = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_TURBO)[0, :, ::-1]
    np.testing.assert_array_equal(rgb[0, 0], lut[0])
    np.testing.assert_array_equal(rgb[0, 1], lut[1])
    np.testing.assert_array_equal(rgb[0, 2], [0, 0, 0])
    np.testing.assert_array_equal(rgb[0, 3], lut[1])  # clipped at the top of the scale


def test_panel_is_four_tiles_wide(tmp_path):
    gt = np.linspace(1, 5, 12 * 16).reshape(12, 16).astype(np.float32)
    view = FrameView(np.zeros((12, 16, 3), np.uint8), gt, gt * 1.1)
    plot_panel(view, 'best frame', 10.0, tmp_path / 'panel.png')
    image = cv2.imread(str(tmp_path / 'panel.png'))
    assert image.shape[1] == 4 * 320  # each tile upscaled to the minimum panel width
