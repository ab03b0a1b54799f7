"""`pixio-ros eval --align-to TOPIC` on a bag whose head is exactly right up to a scale of 1.3."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from coded_depth import coded_depth, coded_depth_artifact, depth_to_coded_rgb
from rosbags.rosbag2 import Writer

from pixio_ros.cli import main
from pixio_ros.data.messages import (
    camera_model_message,
    header,
    image_message,
    msg_class,
    serialize,
    typestore,
)
from pixio_ros.data.scene import build_scene, camera_path, realistic_camera

MIS_SCALE = 1.3
HEIGHT, WIDTH = 48, 64
FRAMES = 4
PERIOD_NS = 100_000_000
CAMERA = realistic_camera(HEIGHT, WIDTH)


def sparse_depth(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A registered LiDAR-like depth image: ~600 returns, 1 % noise, 10 % outliers, 0 elsewhere."""
    sparse = np.zeros(depth.shape, dtype=np.float32)
    v = rng.integers(0, HEIGHT, 600)
    u = rng.integers(0, WIDTH, 600)
    values = depth[v, u] * (1 + rng.normal(0, 0.01, v.size))
    junk = rng.random(v.size) < 0.1
    values[junk] *= rng.uniform(0.3, 3.0, junk.sum())
    sparse[v, u] = values
    return sparse


def cloud(depth: np.ndarray, rng: np.random.Generator, stamp: int):
    """The same returns as a PointCloud2 in the optical frame (FLOAT32 x y z, written here)."""
    sparse = sparse_depth(depth, rng)
    v, u = np.nonzero(sparse)
    z = sparse[v, u]
    xyz = np.stack([(u - CAMERA.cx) * z / CAMERA.fx, (v - CAMERA.cy) * z / CAMERA.fy, z], axis=1)
    field = msg_class('sensor_msgs/msg/PointField')
    fields = [field(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate('xyz')]
    return msg_class('sensor_msgs/msg/PointCloud2')(
        header=header(stamp, 'camera'),
        height=1,
        width=len(xyz),
        fields=fields,
        is_bigendian=False,
        point_step=12,
        row_step=12 * len(xyz),
        data=np.frombuffer(xyz.astype('<f4').tobytes(), dtype=np.uint8),
        is_dense=True,
    )


@pytest.fixture(scope='module')
def room_bag(tmp_path_factory):
    """Coded images, exact 16UC1 depth, CameraInfo and both kinds of sparse reference."""
    path = tmp_path_factory.mktemp('align_to') / 'room'
    store = typestore()
    rng = np.random.default_rng(0)
    scene = build_scene(0)
    truths = []
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        add = writer.add_connection
        image = add('/image', 'sensor_msgs/msg/Image', typestore=store)
        depth_conn = add('/depth', 'sensor_msgs/msg/Image', typestore=store)
        info = add('/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=store)
        lidar_image = add('/lidar/depth', 'sensor_msgs/msg/Image', typestore=store)
        lidar_cloud = add('/lidar/points', 'sensor_msgs/msg/PointCloud2', typestore=store)
        for index in range(FRAMES):
            stamp = 1_000_000_000 + index * PERIOD_NS
            _, depth = scene.render(camera_path(index, 30), CAMERA)
            truths.append(coded_depth(depth))
            millimetres = np.rint(depth * 1000).astype(np.uint16)
            for conn, msg in (
                (image, image_message(depth_to_coded_rgb(depth), 'rgb8', stamp, 'camera')),
                (depth_conn, image_message(millimetres, '16UC1', stamp, 'camera')),
                (info, camera_model_message(CAMERA, stamp, 'camera')),
                (lidar_image, image_message(sparse_depth(depth, rng), '32FC1', stamp, 'camera')),
                (lidar_cloud, cloud(depth, rng, stamp)),
            ):
                writer.write(conn, stamp, serialize(msg))
    artifact = coded_depth_artifact(
        path.parent / 'coded.ts', factor=1 / MIS_SCALE, input_size=(HEIGHT, WIDTH)
    )
    return path, artifact


@pytest.mark.parametrize(
    ('topic', 'mode'), [('/lidar/depth', 'scale'), ('/lidar/points', 'scale_shift')]
)
def test_align_to_reports_abs_rel_before_and_after(room_bag, tmp_path, capsys, topic, mode):
    bag, artifact = room_bag
    out = tmp_path / 'out'
    code = main(
        [
            'eval',
            str(bag),
            '--model',
            str(artifact),
            '--image-topic',
            '/image',
            '--depth-topic',
            '/depth',
            '--camera-info-topic',
            '/camera_info',
            '--align-to',
            topic,
            '--align-to-mode',
            mode,
            '--device',
            'cpu',
            '--out',
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    document = json.loads((out / 'metrics.json').read_text())
    sparse = document['sparse_alignment']
    # Before: the head is off by 1/1.3 everywhere, AbsRel = 1 - 1/1.3.
    assert sparse['abs_rel_before'] == pytest.approx(1 - 1 / MIS_SCALE, abs=1e-3)
    # After: within 1 % of the head's error at the right scale (0: it is exact there).
    assert sparse['abs_rel_after'] < 0.01
    assert sparse['scale_median'] == pytest.approx(MIS_SCALE, rel=0.01)
    assert sparse['frames'] == FRAMES and sparse['frames_kept_last_scale'] == 0
    assert document['summary']['depth']['abs_rel'] == pytest.approx(sparse['abs_rel_after'])
    with (out / 'alignment.csv').open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == FRAMES
    assert all(float(row['scale']) == pytest.approx(MIS_SCALE, rel=0.01) for row in rows)
    assert (out / 'alignment_scale.png').stat().st_size > 0
    assert 'alignment_scale.png' in (out / 'report.md').read_text()
    assert f'--align-to {topic} ({mode}): AbsRel 0.23' in printed


def test_align_to_a_missing_topic_is_one_line(room_bag, tmp_path, capsys):
    bag, artifact = room_bag
    code = main(
        [
            'eval',
            str(bag),
            '--model',
            str(artifact),
            '--image-topic',
            '/image',
            '--depth-topic',
            '/depth',
            '--align-to',
            '/nothing',
            '--out',
            str(tmp_path / 'out'),
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and '--align-to /nothing is not in bag' in error[0]
    assert not (tmp_path / 'out').exists()
