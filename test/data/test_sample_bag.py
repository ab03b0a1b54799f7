"""The sample bag: RealSense topics, exact depth, determinism, both storages, rclpy-decodable."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.data.sample_bag import (
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    COMPRESSED_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    STRONG_DISTORTION,
    SampleBagSpec,
    render_frame,
    write_sample_bag,
)
from pixio_ros.files import OutputExistsError
from pixio_ros.runtime.camera import PinholeCamera

SPEC = SampleBagSpec(frames=3, height=24, width=32, seed=5)
EXPECTED_TOPICS = {
    COLOR_TOPIC: 'sensor_msgs/msg/Image',
    COMPRESSED_TOPIC: 'sensor_msgs/msg/CompressedImage',
    COLOR_INFO_TOPIC: 'sensor_msgs/msg/CameraInfo',
    DEPTH_TOPIC: 'sensor_msgs/msg/Image',
    DEPTH_INFO_TOPIC: 'sensor_msgs/msg/CameraInfo',
}


def _files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope='module', params=['mcap', 'sqlite3'])
def sample(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / 'sample'
    return write_sample_bag(path, SPEC, storage=request.param), request.param


def test_topics_types_and_counts(sample):
    path, _ = sample
    with BagReader(path) as bag:
        assert bag.topics == dict(sorted(EXPECTED_TOPICS.items()))
        assert all(bag.message_count(t) == SPEC.frames for t in EXPECTED_TOPICS)


def test_depth_is_millimetres_of_the_rendered_depth(sample):
    path, _ = sample
    with BagReader(path) as bag:
        depth_msgs = bag.messages(DEPTH_TOPIC)
        color_msgs = bag.messages(COLOR_TOPIC)
        info = bag.messages(DEPTH_INFO_TOPIC)[0].msg
    for index, (color, depth) in enumerate(zip(color_msgs, depth_msgs, strict=True)):
        rgb, depth_m, camera = render_frame(SPEC, index)
        assert color.stamp_ns == depth.stamp_ns  # RealSense aligned depth shares the stamp
        assert (depth.msg.encoding, color.msg.encoding) == ('16UC1', 'rgb8')
        assert depth.msg.header.frame_id == 'camera_color_optical_frame'
        millimetres = np.frombuffer(depth.msg.data.tobytes(), '<u2').reshape(24, 32)
        np.testing.assert_array_equal(millimetres, np.round(depth_m * 1000).astype(np.uint16))
        np.testing.assert_array_equal(color.msg.data.reshape(24, 32, 3), rgb)
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), camera.k)
    assert (info.height, info.width, info.distortion_model) == (24, 32, 'plumb_bob')
    stamps = [m.stamp_ns for m in color_msgs]
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] == 33_333_333


def test_images_deserialise_with_rclpy(sample):
    import cv2
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    path, _ = sample
    classes = {
        'sensor_msgs/msg/Image': Image,
        'sensor_msgs/msg/CompressedImage': CompressedImage,
        'sensor_msgs/msg/CameraInfo': CameraInfo,
    }
    seen = set()
    with BagReader(path) as bag:
        for raw in bag.raw(EXPECTED_TOPICS):
            msg = deserialize_message(raw.data, classes[raw.msgtype])
            seen.add(raw.topic)
            if raw.topic == COLOR_TOPIC:
                rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
            elif raw.topic == COMPRESSED_TOPIC:
                jpeg = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
                assert jpeg.shape == (24, 32, 3)
                # JPEG is lossy; it must still look like the raw frame of the same stamp
                assert np.abs(jpeg[:, :, ::-1].astype(int) - rgb).mean() < 20
            elif raw.topic == DEPTH_TOPIC:
                assert (msg.encoding, msg.step) == ('16UC1', 64)
    assert seen == set(EXPECTED_TOPICS)


def test_same_seed_same_bytes_other_seed_other_bytes(sample, tmp_path):
    path, storage = sample
    again = write_sample_bag(tmp_path / 'sample', SPEC, storage=storage)
    assert _files(again) == _files(path)
    other_spec = SampleBagSpec(frames=3, height=24, width=32, seed=6)
    other = write_sample_bag(tmp_path / 'other' / 'sample', other_spec, storage=storage)
    assert _files(other) != _files(path)


def test_noise_perturbs_depth_and_drops_pixels():
    clean = render_frame(SPEC, 0)[1]
    noisy = render_frame(SampleBagSpec(frames=3, height=24, width=32, seed=5, noise=True), 0)[1]
    valid = np.isfinite(noisy)
    assert 0 < (~valid).sum() < 0.1 * noisy.size
    error = np.abs(noisy[valid] - clean[valid])
    assert 0 < np.median(error) < 0.05


def test_existing_output_is_refused_then_replaced_with_force(tmp_path):
    target = tmp_path / 'bag'
    target.mkdir()
    (target / 'keep.txt').write_text('mine')
    with pytest.raises(OutputExistsError, match='exists already, not overwriting; pass --force'):
        write_sample_bag(target, SampleBagSpec(frames=1, height=8, width=8))
    assert (target / 'keep.txt').read_text() == 'mine'
    write_sample_bag(target, SampleBagSpec(frames=1, height=8, width=8), force=True)
    assert not (target / 'keep.txt').exists()
    assert [p.name for p in tmp_path.iterdir()] == ['bag']  # no staging left behind


@pytest.mark.parametrize(
    ('spec', 'storage', 'match'),
    [
        (SampleBagSpec(frames=0), 'mcap', '--frames 0 must be at least 1'),
        (SampleBagSpec(height=4, width=640), 'mcap', '--size 4x640 is too small'),
        (SampleBagSpec(frames=1), 'rosbag1', "--storage 'rosbag1' is unknown"),
        (SampleBagSpec(distortion=(0.1, 0.0, 0.0)), 'mcap', 'has 3 coefficients; give the 5'),
        (SampleBagSpec(distortion=(np.nan,) * 5), 'mcap', r'distortion \(nan, .*D\[0\] is nan'),
    ],
)
def test_bad_arguments_are_refused(tmp_path, spec, storage, match):
    with pytest.raises(DataError, match=match):
        write_sample_bag(tmp_path / 'bag', spec, storage=storage)
    assert not (tmp_path / 'bag').exists()


def test_distorted_bag_carries_its_lens_in_both_camera_infos(tmp_path):
    spec = SampleBagSpec(frames=1, height=24, width=32, distortion=STRONG_DISTORTION)
    path = write_sample_bag(tmp_path / 'bag', spec)
    rgb, _, camera = render_frame(spec, 0)
    assert camera.d == STRONG_DISTORTION and camera.has_distortion
    with BagReader(path) as bag:
        for topic in (COLOR_INFO_TOPIC, DEPTH_INFO_TOPIC):
            assert PinholeCamera.from_camera_info(bag.messages(topic)[0].msg) == camera
        color = bag.messages(COLOR_TOPIC)[0].msg
    np.testing.assert_array_equal(color.data.reshape(24, 32, 3), rgb)
    assert not np.array_equal(rgb, render_frame(SampleBagSpec(frames=1, height=24, width=32), 0)[0])
