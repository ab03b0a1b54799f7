"""Training frames from bags and folders, the by-time split and bad-data errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixio_ros.data.sample_bag import COLOR_TOPIC
from pixio_ros.data.scene import realistic_intrinsics
from pixio_ros.training import (
    RGBDSample,
    TrainingError,
    load_bag_samples,
    load_folder_samples,
    split_by_time,
)
from pixio_ros.training.samples import check_ground_truth


def test_bag_frames_come_with_depth_and_intrinsics(bag_samples):
    assert len(bag_samples) == 12
    first = bag_samples[0]
    assert first.rgb.shape == (96, 128, 3) and first.rgb.dtype == np.uint8
    assert first.depth.shape == (96, 128) and np.isfinite(first.depth).mean() > 0.5
    assert first.camera is not None
    np.testing.assert_allclose(first.camera.k, realistic_intrinsics(96, 128))
    assert first.camera.distortion_model == 'plumb_bob' and not first.camera.has_distortion
    assert [s.index for s in bag_samples] == list(range(12))


def test_missing_topic_is_named(sample_bag):
    with pytest.raises(TrainingError, match=r'--depth-topic /nope is not in bag'):
        load_bag_samples(sample_bag, image_topic=COLOR_TOPIC, depth_topic='/nope')


def test_no_usable_pairs(sample_bag):
    # The colour topic given as depth: every pair fails to decode as depth (rgb8).
    with pytest.raises(TrainingError, match=r'no usable colour/depth pairs .* failed to decode'):
        load_bag_samples(sample_bag, image_topic=COLOR_TOPIC, depth_topic=COLOR_TOPIC)


def frames(count: int, source: str = 'bag') -> list[RGBDSample]:
    rgb = np.zeros((4, 4, 3), np.uint8)
    depth = np.ones((4, 4), np.float32)
    return [RGBDSample(rgb, depth, None, source, i) for i in range(count)]


def test_split_keeps_the_last_frames_of_each_source_for_validation():
    train, val = split_by_time([frames(10, 'a'), frames(3, 'b'), frames(1, 'c')], 0.25)
    assert [(s.source, s.index) for s in val] == [('a', 7), ('a', 8), ('a', 9), ('b', 2)]
    assert [(s.source, s.index) for s in train][-4:] == [('a', 6), ('b', 0), ('b', 1), ('c', 0)]


def test_split_is_not_fooled_by_float_rounding():
    train, val = split_by_time([frames(30)], 0.1)  # 30 * 0.1 == 3.0000000000000004
    assert (len(train), len(val)) == (27, 3)


@pytest.mark.parametrize('fraction', [-0.1, 1.0])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(TrainingError, match=rf'--val-fraction {fraction} must be in \[0, 1\)'):
        split_by_time([frames(3)], fraction)


def test_all_invalid_ground_truth_is_refused():
    invalid = [
        RGBDSample(f.rgb, np.full((4, 4), np.nan, np.float32), None, 'x', 0) for f in frames(2)
    ]
    with pytest.raises(TrainingError, match=r'ground truth is invalid everywhere in 2 frames'):
        check_ground_truth(invalid, min_depth=1e-3, max_depth=10.0)


def write_folder(root, *, intrinsics: str | None = 'fx: 50\nfy: 50\ncx: 15.5\ncy: 11.5\n'):
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    for i in range(3):
        cv2.imwrite(str(root / 'rgb' / f'{i:04d}.png'), np.full((24, 32, 3), 40 * i, np.uint8))
        depth_mm = np.full((24, 32), 1500 + i, np.uint16)
        depth_mm[0, 0] = 0
        cv2.imwrite(str(root / 'depth' / f'{i:04d}.png'), depth_mm)
    if intrinsics is not None:
        (root / 'intrinsics.yaml').write_text(intrinsics)
    return root


def test_folder_dataset(tmp_path):
    samples = load_folder_samples(write_folder(tmp_path / 'data'))
    assert len(samples) == 3
    assert samples[2].depth[1, 1] == pytest.approx(1.502)
    assert np.isnan(samples[2].depth[0, 0])
    camera = samples[0].camera
    assert camera is not None and (camera.width, camera.height) == (32, 24)
    np.testing.assert_allclose(camera.k, [[50, 0, 15.5], [0, 50, 11.5], [0, 0, 1]])
    assert not camera.has_distortion


def test_folder_without_intrinsics(tmp_path):
    with pytest.raises(TrainingError, match=r'intrinsics\.yaml is missing'):
        load_folder_samples(write_folder(tmp_path / 'data', intrinsics=None))


def test_folder_with_bad_intrinsics(tmp_path):
    with pytest.raises(TrainingError, match=r'must hold fx, fy, cx, cy'):
        load_folder_samples(write_folder(tmp_path / 'data', intrinsics='fx: 50\n'))


def test_folder_without_pairs(tmp_path):
    root = write_folder(tmp_path / 'data')
    for depth in (root / 'depth').iterdir():
        depth.unlink()
    with pytest.raises(TrainingError, match=r'no usable pairs in .*data'):
        load_folder_samples(root)


def test_folder_intrinsics_may_carry_distortion(tmp_path):
    lens = 'fx: 50\nfy: 50\ncx: 15.5\ncy: 11.5\nD: [-0.3, 0.1, 0.001, 0.001, 0.0]\n'
    samples = load_folder_samples(write_folder(tmp_path / 'data', intrinsics=lens))
    camera = samples[0].camera
    assert camera is not None
    assert camera.distortion_model == 'plumb_bob'
    assert camera.d == (-0.3, 0.1, 0.001, 0.001, 0.0)


@pytest.mark.parametrize(
    ('intrinsics', 'match'),
    [
        ('fx: 0\nfy: 50\ncx: 15.5\ncy: 11.5\n', r'intrinsics\.yaml: K has fx=0\.0, fy=50\.0'),
        ('fx: 50\nfy: 50\ncx: 15.5\ncy: 11.5\nD: [0.1, 0.2, 0.3]\n', r'D has 3 coefficients'),
        ('fx: 50\nfy: 50\ncx: 500\ncy: 11.5\n', r'cx=500\.0, far outside the 32x24 image'),
    ],
)
def test_folder_with_invalid_camera(tmp_path, intrinsics, match):
    with pytest.raises(TrainingError, match=match):
        load_folder_samples(write_folder(tmp_path / 'data', intrinsics=intrinsics))


def test_bag_with_invalid_camera_info_is_refused(tmp_path):
    from rosbags.rosbag2 import Writer

    from pixio_ros.data.messages import camera_info_message, image_message, serialize, typestore
    from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC, DEPTH_TOPIC

    k = np.array([[50.0, 0, 15.5], [0, np.inf, 11.5], [0, 0, 1]])
    with Writer(tmp_path / 'bag', version=Writer.VERSION_LATEST) as writer:
        store = typestore()
        color = writer.add_connection(COLOR_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
        depth = writer.add_connection(DEPTH_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
        info = writer.add_connection(
            COLOR_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', typestore=store
        )
        rgb = np.zeros((24, 32, 3), np.uint8)
        writer.write(color, 1, serialize(image_message(rgb, 'rgb8', 1, 'cam')))
        mm = np.full((24, 32), 1500, np.uint16)
        writer.write(depth, 1, serialize(image_message(mm, '16UC1', 1, 'cam')))
        writer.write(info, 1, serialize(camera_info_message(k, 24, 32, 1, 'cam')))
    with pytest.raises(
        TrainingError, match=r'--camera-info-topic /camera/color/camera_info: K\[4\] is inf'
    ):
        load_bag_samples(
            tmp_path / 'bag',
            image_topic=COLOR_TOPIC,
            depth_topic=DEPTH_TOPIC,
            camera_info_topic=COLOR_INFO_TOPIC,
        )
