"""Several cameras in one node (own process): own namespaces and geometry, one batch, no stall."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from cloud_reader import cloud_array
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import WAIT_S, Client, output_types, stamp_key, wait_until
from sensor_msgs.msg import CameraInfo, Image

from pixio_ros.ros.node_process import NodeProcess

NAMESPACE = '/robot'
CAMERA_RATE_HZ = 15.0
BATCH_WINDOW_MS = 40.0
OUTPUTS = ['depth', 'depth/camera_info', 'depth/colored', 'points', 'features', 'embedding']
OUTPUT_TYPES = output_types()
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Frames a live camera must still get through after another went silent.
FRAMES_AFTER_SILENCE = 5
# Projection of the back-projected points onto their own pixels (pixels).
REPROJECTION_ATOL = 2e-3


@dataclass(frozen=True)
class Camera:
    """A test camera: size, intrinsics and plumb_bob distortion."""

    name: str
    height: int
    width: int
    fx: float
    fy: float
    cx: float
    cy: float
    d: tuple[float, ...] = (0.0,) * 5

    @property
    def frame_id(self) -> str:
        return f'{self.name}_optical'

    def info(self) -> CameraInfo:
        info = CameraInfo(
            width=self.width, height=self.height, distortion_model='plumb_bob', d=list(self.d)
        )
        info.k = [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]
        info.p = [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.header.frame_id = self.frame_id
        return info

    def image(self, stamp_ns: int, seed: int) -> Image:
        rgb = np.random.default_rng(seed).integers(0, 256, (self.height, self.width, 3), np.uint8)
        msg = Image(height=self.height, width=self.width, encoding='rgb8', step=self.width * 3)
        msg.data = rgb.tobytes()
        msg.header.frame_id = self.frame_id
        msg.header.stamp.sec = stamp_ns // 1_000_000_000
        msg.header.stamp.nanosec = stamp_ns % 1_000_000_000
        return msg


CAMERAS = (
    Camera('front', 96, 144, 120.0, 118.0, 71.5, 47.5),
    Camera('left', 64, 80, 70.0, 72.0, 40.5, 30.0),
    Camera('right', 120, 160, 150.0, 149.0, 80.0, 61.0, d=(-0.25, 0.07, 0.001, -0.001, -0.01)),
)


class CameraRig:
    """Publishes every camera's image and CameraInfo at CAMERA_RATE_HZ from a thread."""

    def __init__(self, client: Client) -> None:
        self.silent: set[str] = set()
        self.last_stamp_ns: dict[str, int] = {camera.name: 0 for camera in CAMERAS}
        self._publishers = {
            camera.name: (
                client.node.create_publisher(Image, f'{NAMESPACE}/{camera.name}/image', RELIABLE),
                client.node.create_publisher(
                    CameraInfo, f'{NAMESPACE}/{camera.name}/camera_info', RELIABLE
                ),
            )
            for camera in CAMERAS
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def wait_matched(self, node: NodeProcess) -> None:
        for image_pub, info_pub in self._publishers.values():
            for publisher in (image_pub, info_pub):
                wait_until(
                    lambda p=publisher: node.running and p.get_subscription_count() > 0,
                    timeout=3 * WAIT_S,
                    what=f'the node subscribing {publisher.topic_name}',
                )

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / CAMERA_RATE_HZ
        tick = 0
        while not self._stop.wait(period):
            tick += 1
            for index, camera in enumerate(CAMERAS):
                if camera.name in self.silent:
                    continue
                image_pub, info_pub = self._publishers[camera.name]
                stamp_ns = tick * 1_000_000 + index
                info_pub.publish(camera.info())
                image_pub.publish(camera.image(stamp_ns, seed=tick))
                self.last_stamp_ns[camera.name] = stamp_ns

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope='module')
def cameras_run(tmp_path_factory, points_artifact, module_client):
    """The node (own process) with three cameras, fed at 15 Hz, its outputs subscribed."""
    client = module_client
    for camera in CAMERAS:
        for output in OUTPUTS:
            client.subscribe(OUTPUT_TYPES[output], f'{NAMESPACE}/{camera.name}/{output}')
    client.subscribe(DiagnosticArray, '/diagnostics')
    node = NodeProcess(
        tmp_path_factory.mktemp('cameras') / 'node.log',
        parameters={
            'model_path': str(points_artifact),
            'device': 'cpu',
            'warmup_runs': 0,
            'cameras': [camera.name for camera in CAMERAS],
            'batch_window_ms': BATCH_WINDOW_MS,
            'diagnostics_period': 0.2,
            'input_qos.reliability': 'reliable',
        },
        remappings={'__ns': NAMESPACE},
    )
    rig = CameraRig(client)
    with node:
        try:
            rig.wait_matched(node)
            rig.start()
            yield client, node, rig
        finally:
            rig.stop()
            if not node.running:
                pytest.fail(f'the node exited:\n{node.tail()}')


@pytest.fixture(scope='module')
def module_client(module_context):
    client = Client(module_context, name='pixio_cameras_test_client')
    try:
        yield client
    finally:
        client.close()


def topic(camera: Camera, output: str) -> str:
    return f'{NAMESPACE}/{camera.name}/{output}'


def same_frame(client: Client, camera: Camera, outputs: list[str]) -> dict[str, object] | None:
    """Messages of one input frame on every output of `camera`, or None yet."""
    by_topic = {
        output: {stamp_key(m.header): m for m in client.messages(topic(camera, output))}
        for output in outputs
    }
    common = set.intersection(*(set(found) for found in by_topic.values()))
    if not common:
        return None
    key = max(common)
    return {output: by_topic[output][key] for output in outputs}


def model_values(client: Client) -> dict[str, str] | None:
    """The newest model status of the node (`... pixio model`)."""
    for array in reversed(client.messages('/diagnostics')):
        for status in array.status:
            if status.name == f'{NAMESPACE}/pixio: pixio model':
                return {kv.key: kv.value for kv in status.values}
    return None


def test_every_camera_gets_its_outputs_with_its_header_and_geometry(cameras_run):
    client, _, _ = cameras_run
    for camera in CAMERAS:
        wait_until(
            lambda c=camera: same_frame(client, c, OUTPUTS) is not None,
            timeout=3 * WAIT_S,
            what=f'every output of {camera.name}',
        )
        got = same_frame(client, camera, OUTPUTS)
        assert got is not None
        for output, msg in got.items():
            assert msg.header.frame_id == camera.frame_id, (camera.name, output)
        depth_msg = got['depth']
        assert (depth_msg.height, depth_msg.width) == (camera.height, camera.width)
        depth = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(camera.height, camera.width)
        info = got['depth/camera_info']
        np.testing.assert_allclose(info.k, camera.info().k)
        cloud = cloud_array(got['points'])
        assert cloud.shape == (camera.height, camera.width)
        np.testing.assert_array_equal(cloud['z'], depth)
        xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1).reshape(-1, 3)
        k = np.array(camera.info().k).reshape(3, 3)
        projected, _ = cv2.projectPoints(
            xyz.astype(np.float64), np.zeros(3), np.zeros(3), k, np.array(camera.d)
        )
        v, u = np.mgrid[0 : camera.height, 0 : camera.width]
        np.testing.assert_allclose(
            projected.reshape(camera.height, camera.width, 2),
            np.stack([u, v], axis=-1),
            atol=REPROJECTION_ATOL,
        )
        features = cloud_array(got['features'])
        assert np.isfinite(features['z']).all()


def test_frames_taken_together_run_as_one_batch(cameras_run):
    client, _, _ = cameras_run
    wait_until(
        lambda: int((model_values(client) or {}).get('batches of 3', 0)) > 0,
        timeout=3 * WAIT_S,
        what='a batch of three frames in the model diagnostics',
    )
    values = model_values(client)
    assert values is not None
    assert values['cameras'] == 'front, left, right'
    batches = sum(int(v) for k, v in values.items() if k.startswith('batches of '))
    assert batches == int(values['batches'])


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_a_silent_camera_does_not_stall_the_others(cameras_run):
    client, _, rig = cameras_run
    silent = CAMERAS[2]
    rig.silent.add(silent.name)
    time.sleep(1.0 / CAMERA_RATE_HZ)  # a frame being published when it was silenced
    silenced_at = max(rig.last_stamp_ns.values())
    for camera in CAMERAS[:2]:
        # Frames taken after the silence went through without the silent camera's.
        wait_until(
            lambda c=camera: (
                sum(stamp_ns(m) > silenced_at for m in client.messages(topic(c, 'depth')))
                >= FRAMES_AFTER_SILENCE
            ),
            what=f'{camera.name} going on while {silent.name} is silent',
        )
    last_sent = rig.last_stamp_ns[silent.name]
    assert all(stamp_ns(m) <= last_sent for m in client.messages(topic(silent, 'depth')))
    wait_until(
        lambda: int((model_values(client) or {}).get('batches of 2', 0)) > 0,
        what='batches of the two live cameras',
    )
    rig.silent.discard(silent.name)
