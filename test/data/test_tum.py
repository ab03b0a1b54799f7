"""TUM RGB-D reader: association of jittered stamps, 5000-per-metre depth, documented cameras."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_files import write_colour, write_png16, write_tum_list

from pixio_ros.data import DataError
from pixio_ros.data.tum import TUM_CAMERAS, load_tum

HEIGHT, WIDTH = 480, 640
START = Decimal('1305031102.175304')
PERIOD = Decimal('0.033')
# Depth is captured apart from colour: each depth stamp is off by a few milliseconds.
DEPTH_JITTER = [Decimal(ms) / 1000 for ms in ('0.012', '-6.1', '9.0', '-14.5', '3.3')]


def planted(index: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([rows // 2, cols // 3, np.full_like(rows, index)], -1).astype(np.uint8)
    depth = (0.5 + rows / 200.0 + index / 10.0).astype(np.float32)
    depth[3, 4] = 0.0
    return rgb, np.round(depth * 5000) / 5000


def write_sequence(folder: Path) -> list[tuple[str, str]]:
    """Write a sequence; returns the (rgb, depth) file pairs that should associate.

    5 colour frames at ~30 Hz with jittered depth, an extra depth frame far from any colour
    frame and a last colour frame without depth.
    """
    rgb_rows, depth_rows, expected = [], [], []
    for index, jitter in enumerate(DEPTH_JITTER):
        stamp = START + index * PERIOD
        depth_stamp = stamp + jitter
        rgb_name, depth_name = f'rgb/{stamp:.6f}.png', f'depth/{depth_stamp:.6f}.png'
        rgb, depth = planted(index)
        write_colour(folder / rgb_name, rgb)
        write_png16(folder / depth_name, depth, 5000.0)
        rgb_rows.append((f'{stamp:.6f}', rgb_name))
        depth_rows.append((f'{depth_stamp:.6f}', depth_name))
        expected.append((rgb_name, depth_name))
    lonely = START + 5 * PERIOD
    write_colour(folder / f'rgb/{lonely:.6f}.png', planted(5)[0])
    rgb_rows.append((f'{lonely:.6f}', f'rgb/{lonely:.6f}.png'))
    # depth listed in file order, not stamp order, and one depth frame 50 ms from any colour one
    stray = START - Decimal('0.050')
    write_png16(folder / f'depth/{stray:.6f}.png', planted(0)[1], 5000.0)
    stray_row = (f'{stray:.6f}', f'depth/{stray:.6f}.png')
    depth_rows = [depth_rows[1], depth_rows[0], *depth_rows[2:], stray_row]
    write_tum_list(folder / 'rgb.txt', 'rgb', rgb_rows)
    write_tum_list(folder / 'depth.txt', 'depth', depth_rows)
    return expected


@pytest.fixture
def sequence(tmp_path) -> tuple[Path, list[tuple[str, str]]]:
    folder = tmp_path / 'rgbd_dataset_freiburg1_xyz'
    return folder, write_sequence(folder)


def test_jittered_stamps_associate_one_to_one_and_depth_is_in_metres(sequence):
    folder, expected = sequence
    samples, counts = load_tum(folder)
    assert counts == {'colour_frames': 6, 'depth_frames': 6, 'associated': 5}
    assert [s.name for s in samples] == [rgb for rgb, _ in expected]
    for index, sample in enumerate(samples):
        rgb, depth = planted(index)
        np.testing.assert_array_equal(sample.rgb, rgb)
        assert np.isnan(sample.depth[3, 4])
        valid = depth > 0
        np.testing.assert_allclose(sample.depth[valid], depth[valid], atol=1e-6)
        assert sample.stamp_ns == int((START + index * PERIOD) * 10**9)  # exact nanoseconds


def test_a_narrower_window_drops_the_farther_depth_frames(sequence):
    folder, expected = sequence
    samples, counts = load_tum(folder, max_difference_s=0.007)
    assert counts['associated'] == 3  # jitters of 0.012, -6.1 and 3.3 ms
    assert [s.name for s in samples] == [expected[i][0] for i in (0, 1, 4)]


@pytest.mark.parametrize(
    ('name', 'fx', 'd0'),
    [
        ('rgbd_dataset_freiburg1_xyz', 517.3, 0.2624),
        ('rgbd_dataset_freiburg2_desk', 520.9, 0.2312),
        ('rgbd_dataset_freiburg3_long_office_household', 535.4, 0.0),
    ],
)
def test_the_documented_camera_of_each_sensor(tmp_path, name, fx, d0):
    write_sequence(tmp_path / name)
    samples, _ = load_tum(tmp_path / name)
    camera = samples[0].camera
    assert camera == TUM_CAMERAS[name.split('_')[2]]
    assert camera.fx == fx and camera.d[0] == d0 and camera.distortion_model == 'plumb_bob'
    assert (camera.width, camera.height) == (WIDTH, HEIGHT)


def test_fr1_intrinsics_and_distortion_as_documented():
    camera = TUM_CAMERAS['freiburg1']
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (517.3, 516.5, 318.6, 255.3)
    assert camera.d == (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)


def test_an_unknown_sensor_and_a_malformed_line_are_named(tmp_path, sequence):
    folder, _ = sequence
    renamed = folder.rename(tmp_path / 'my_sequence')
    with pytest.raises(DataError, match=r"cannot tell the TUM sensor from the folder name 'my_"):
        load_tum(renamed)
    back = renamed.rename(folder)
    with (back / 'depth.txt').open('a') as stream:
        stream.write('1305031103.5 depth/a.png extra\n')
    with pytest.raises(DataError, match=r'depth\.txt:10: expected "TIMESTAMP FILENAME"'):
        load_tum(back)


def test_a_list_naming_a_missing_file_and_an_8_bit_depth_png(sequence):
    folder, expected = sequence
    (folder / expected[2][1]).unlink()
    with pytest.raises(DataError, match=rf'depth\.txt names {folder / expected[2][1]}, which'):
        load_tum(folder)
    cv2.imwrite(str(folder / expected[2][1]), np.zeros((HEIGHT, WIDTH), np.uint8))
    samples, _ = load_tum(folder)
    with pytest.raises(DataError, match=rf'depth image {folder / expected[2][1]} is 8-bit'):
        samples[2].frame()
