"""The report panels: tiles and files written (colour maps: test/runtime/test_products.py)."""

from __future__ import annotations

import cv2
import numpy as np

from pixio_ros.evaluation.plots import plot_panel
from pixio_ros.evaluation.replay import FrameView


def test_panel_is_four_tiles_wide(tmp_path):
    gt = np.linspace(1, 5, 12 * 16).reshape(12, 16).astype(np.float32)
    view = FrameView(np.zeros((12, 16, 3), np.uint8), gt, gt * 1.1)
    plot_panel(view, 'best frame', 10.0, tmp_path / 'panel.png')
    image = cv2.imread(str(tmp_path / 'panel.png'))
    assert image.shape[1] == 4 * 320  # each tile upscaled to the minimum panel width
