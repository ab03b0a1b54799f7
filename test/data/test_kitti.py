"""KITTI reader on files written in the real layout, scales and calibration format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_files import (
    KITTI_CALIB_VALUES,
    KITTI_SIZE,
    kitti_frame_paths,
    write_colour,
    write_kitti_calib,
    write_png16,
)

from pixio_ros.data import DataError
from pixio_ros.data.kitti import load_kitti

DAY = '2011_09_26'
HEIGHT, WIDTH = KITTI_SIZE


def planted(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour varying with row / column and sparse LiDAR-like depth (most pixels 0 = none)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([rows % 256, cols % 256, np.full_like(rows, frame)], -1).astype(np.uint8)
    depth = np.zeros((HEIGHT, WIDTH), np.float32)
    depth[200::7, ::5] = 5.0 + rows[200::7, ::5] / 10.0 + frame  # 1/256 m steps below
    depth[300, 600] = 79.99609375  # 20479 / 256
    return rgb, np.round(depth * 256) / 256


@pytest.fixture
def kitti(tmp_path) -> tuple[Path, Path, Path]:
    """(raw root, annotated root as extracted (train/, val/), BTS-style list with a 'None')."""
    raw, annotated = tmp_path / 'kitti_raw', tmp_path / 'data_depth_annotated'
    write_kitti_calib(raw / DAY / 'calib_cam_to_cam.txt')
    lines = []
    for drive, camera, frame, subset in ((2, '02', 69, 'train'), (9, '03', 16, 'val')):
        rgb_rel, depth_rel = kitti_frame_paths(DAY, drive, camera, frame)
        rgb, depth = planted(frame)
        write_colour(raw / rgb_rel, rgb)
        write_png16(annotated / subset / depth_rel, depth, 256.0)
        lines.append(f'{rgb_rel} {depth_rel} 721.5377')
    missing_rgb, _ = kitti_frame_paths(DAY, 2, '02', 70)
    write_colour(raw / missing_rgb, planted(70)[0])
    lines.append(f'{missing_rgb} None 721.5377')  # BTS's Eigen test list has such lines
    listing = tmp_path / 'eigen_test_files_with_gt.txt'
    listing.write_text('\n'.join(lines) + '\n')
    return raw, annotated, listing


def test_images_depth_in_metres_and_invalid_pixels(kitti):
    raw, annotated, listing = kitti
    samples, without_depth = load_kitti(listing, data_root=raw, depth_root=annotated)
    assert without_depth == 1
    assert len(samples) == 2
    for sample, frame in zip(samples, (69, 16), strict=True):
        rgb, depth = planted(frame)
        np.testing.assert_array_equal(sample.rgb, rgb)
        assert sample.depth.shape == (HEIGHT, WIDTH)
        valid = depth > 0
        np.testing.assert_array_equal(np.isfinite(sample.depth), valid)  # 0 -> NaN
        np.testing.assert_allclose(sample.depth[valid], depth[valid], rtol=0, atol=1e-6)
        assert sample.depth[300, 600] == pytest.approx(79.99609375)


def test_intrinsics_come_from_p_rect_of_the_named_camera(kitti):
    raw, annotated, listing = kitti
    samples, _ = load_kitti(listing, data_root=raw, depth_root=annotated)
    for sample, key in zip(samples, ('P_rect_02', 'P_rect_03'), strict=True):
        p = np.array(KITTI_CALIB_VALUES[key]).reshape(3, 4)
        camera = sample.camera
        assert (camera.width, camera.height) == (1242, 375)
        assert (camera.fx, camera.fy, camera.cx, camera.cy) == pytest.approx(
            (p[0, 0], p[1, 1], p[0, 2], p[1, 2])
        )
        np.testing.assert_allclose(camera.p, p)
        assert not camera.has_distortion  # rectified images


def test_one_root_holding_both_as_the_pixio_paper_lays_it_out(tmp_path):
    root = tmp_path / 'kitti'
    write_kitti_calib(root / 'images' / DAY / 'calib_cam_to_cam.txt')
    rgb_rel, depth_rel = kitti_frame_paths(DAY, 2, '02', 6)
    rgb, depth = planted(6)
    write_colour(root / 'images' / rgb_rel, rgb)
    write_png16(root / 'annotations' / depth_rel, depth, 256.0)
    listing = tmp_path / 'val.txt'
    listing.write_text(f'images/{rgb_rel} annotations/{depth_rel}\n')
    (sample,), _ = load_kitti(listing, data_root=root)
    np.testing.assert_array_equal(sample.rgb, rgb)


def test_missing_calibration_is_named(kitti):
    raw, annotated, listing = kitti
    calib = raw / DAY / 'calib_cam_to_cam.txt'
    calib.unlink()
    with pytest.raises(DataError, match=rf'KITTI calibration {calib} does not exist.*{DAY}_calib'):
        load_kitti(listing, data_root=raw, depth_root=annotated)


def test_a_list_naming_a_missing_file_is_one_error_naming_it(kitti):
    raw, annotated, listing = kitti
    rgb_rel, depth_rel = kitti_frame_paths(DAY, 5, '02', 1)
    listing.write_text(f'{rgb_rel} {depth_rel} 721.5377\n')
    with pytest.raises(DataError, match=rf'{listing}:1: colour image {raw / rgb_rel} does not'):
        load_kitti(listing, data_root=raw, depth_root=annotated)


def test_an_8_bit_depth_png_is_one_error_naming_the_file(kitti):
    raw, annotated, listing = kitti
    _, depth_rel = kitti_frame_paths(DAY, 2, '02', 69)
    bad = annotated / 'train' / depth_rel
    cv2.imwrite(str(bad), np.full((HEIGHT, WIDTH), 9, np.uint8))
    samples, _ = load_kitti(listing, data_root=raw, depth_root=annotated)
    with pytest.raises(DataError, match=rf'depth image {bad} is 8-bit with 1 channel\(s\); KITTI'):
        samples[0].frame()
