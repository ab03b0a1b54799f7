"""The dataset registry and the shared sample interface (lazy frames, crops, fingerprints)."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_files import write_colour, write_nyu_labeled, write_nyu_splits, write_png16

from pixio_ros.data import DATASET_NAMES, DataError, RGBDSample, get_dataset_info, open_dataset
from pixio_ros.data.samples import LAZY_CACHE_FRAMES
from pixio_ros.runtime.camera import PinholeCamera

K = [50.0, 0.0, 23.5, 0.0, 50.0, 15.5, 0.0, 0.0, 1.0]


def test_dataset_defaults_follow_the_paper():
    assert DATASET_NAMES == ('nyuv2', 'kitti', 'tum', 'folder')
    assert get_dataset_info('nyuv2').max_depth == 10.0
    assert get_dataset_info('kitti').max_depth == 80.0
    assert get_dataset_info('nyuv2').protocol == 'nyuv2'
    assert get_dataset_info('kitti').protocol == 'kitti'
    assert get_dataset_info('tum').protocol is None
    with pytest.raises(DataError, match=r"unknown dataset 'nyu'; expected one of nyuv2, kitti"):
        get_dataset_info('nyu')


def test_the_command_line_spells_the_same_names():
    from pixio_ros.commands.args import DATASET_CHOICES, PROTOCOL_CHOICES
    from pixio_ros.evaluation.protocol import PROTOCOL_NAMES

    assert DATASET_CHOICES == DATASET_NAMES
    assert PROTOCOL_CHOICES == (*PROTOCOL_NAMES, 'none')


def test_lazy_samples_decode_on_access_and_keep_a_few_frames():
    calls = []

    def loader(index):
        def load():
            calls.append(index)
            return np.full((32, 48, 3), index, np.uint8), np.full((32, 48), 1.0, np.float32)

        return load

    camera = PinholeCamera.from_k(48, 32, K)
    samples = [
        RGBDSample.lazy(loader(i), camera, 'src', i, name=f'f{i}')
        for i in range(LAZY_CACHE_FRAMES + 1)
    ]
    assert calls == []
    assert samples[0].rgb[0, 0, 0] == 0 and samples[0].depth.shape == (32, 48)
    assert calls == [0]  # rgb and depth from one decode
    for sample in samples[1:]:
        sample.frame()
    samples[0].frame()
    assert calls == [0, 1, 2, 3, 4, 0]  # the oldest frame was dropped, memory stays bounded
    assert samples[0].fingerprint == 'src\0' + '0\0f0'


def test_a_lazy_frame_that_disagrees_with_its_camera_is_named():
    camera = PinholeCamera.from_k(48, 32, K)
    sample = RGBDSample.lazy(
        lambda: (np.zeros((16, 24, 3), np.uint8), np.ones((16, 24), np.float32)),
        camera,
        'list.txt',
        3,
        name='a.png',
    )
    with pytest.raises(DataError, match=r'frame 3 of list\.txt \(a\.png\) is 24x16 but its camera'):
        sample.frame()


@pytest.mark.parametrize('lazy', [False, True])
def test_a_cropped_sample_cuts_image_depth_and_camera_alike(lazy):
    rgb = np.arange(32 * 48 * 3, dtype=np.int64).reshape(32, 48, 3).astype(np.uint8)
    depth = np.arange(32 * 48, dtype=np.float32).reshape(32, 48)
    camera = PinholeCamera.from_k(48, 32, K)
    if lazy:
        sample = RGBDSample.lazy(lambda: (rgb, depth), camera, 's', 0, name='n')
    else:
        sample = RGBDSample(rgb, depth, camera, 's', 0)
    cut = sample.cropped(2, 30, 5, 40)
    np.testing.assert_array_equal(cut.rgb, rgb[2:30, 5:40])
    np.testing.assert_array_equal(cut.depth, depth[2:30, 5:40])
    assert (cut.camera.width, cut.camera.height) == (35, 28)
    assert (cut.camera.cx, cut.camera.cy) == (23.5 - 5, 15.5 - 2)
    # the same ray through the same scene point before and after the crop
    np.testing.assert_allclose(cut.camera.rays()[10, 10], camera.rays()[12, 15])


def test_open_dataset_describes_what_it_read(tmp_path):
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    depth = [rng.uniform(1, 9, (480, 640)).astype(np.float32) for _ in range(3)]
    mat = write_nyu_labeled(tmp_path / 'nyu_depth_v2_labeled.mat', rgb, depth)
    write_nyu_splits(tmp_path / 'splits.mat', train=[1, 2], test=[3])
    dataset = open_dataset('nyuv2', mat)
    described = dataset.describe()
    assert described['name'] == 'nyuv2' and described['frames'] == 1
    assert described['split'] == 'test'  # evaluation's default
    assert described['camera']['fx'] == pytest.approx(518.8579, abs=1e-4)
    assert len(open_dataset('nyuv2', mat, split='train').samples) == 2


def test_options_a_dataset_does_not_take_are_refused(tmp_path):
    with pytest.raises(DataError, match=r'--split chooses the split of the labeled NYUv2 \.mat'):
        open_dataset('tum', tmp_path / 'rgbd_dataset_freiburg1_xyz', split='train')
    with pytest.raises(DataError, match=r'--data-root / --depth-root apply to file lists'):
        open_dataset('folder', tmp_path, data_root=tmp_path)


def test_the_folder_layout_is_unchanged(tmp_path):
    folder = tmp_path / 'data'
    write_colour(folder / 'rgb' / 'a.png', np.zeros((32, 48, 3), np.uint8))
    write_png16(folder / 'depth' / 'a.png', np.full((32, 48), 1.5), 1000.0)
    (folder / 'intrinsics.yaml').write_text('fx: 50\nfy: 50\ncx: 23.5\ncy: 15.5\n')
    dataset = open_dataset('folder', folder)
    (sample,) = dataset.samples
    assert float(sample.depth[0, 0]) == 1.5 and sample.camera.fx == 50.0
