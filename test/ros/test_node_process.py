"""`pixio_node --ros-args --params-file ...` as a separate process, talked to over Fast DDS."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
import yaml
from cloud_reader import cloud_array
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import (
    CX,
    FX,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    WAIT_S,
    Client,
    camera_info_msg,
    image_msg,
    random_image,
    send_until_received,
    set_header,
    stamp_key,
    wait_until,
)
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

STOP_TIMEOUT_S = 10.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def process_client(module_context):
    client = Client(module_context, name='pixio_process_test_client')
    try:
        yield client
    finally:
        client.close()


def node_command() -> str:
    command = shutil.which('pixio_node')
    if command is None:
        pytest.fail('pixio_node is not on PATH; run `make setup` and source .venv/pixio_env.sh')
    return command


class NodeProcess:
    """A running pixio_node; stopped with SIGINT (then killed) by `stop`."""

    def __init__(self, tmp_path, parameters: dict, ros_args: list[str]):
        params_file = tmp_path / 'params.yaml'
        params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': parameters}}))
        self.log = (tmp_path / 'node.log').open('w+')
        self.process = subprocess.Popen(
            [node_command(), '--ros-args', '--params-file', str(params_file), *ros_args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        if self.log.closed:
            return self.final_output
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def check_alive(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f'pixio_node exited with {self.process.returncode}:\n{self.output()}')
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.final_output = self.output()
            self.log.close()


@pytest.fixture(scope='module')
def robot_node(tmp_path_factory, points_artifact):
    """The node in namespace /robot with its inputs remapped under /cam.

    That is what the launch file's `namespace` and `camera` arguments do.
    """
    node = NodeProcess(
        tmp_path_factory.mktemp('robot_node'),
        {'model_path': str(points_artifact), 'device': 'cpu', 'warmup_runs': 0},
        ['-r', '__ns:=/robot', '-r', 'image:=/cam/image_raw', '-r', 'camera_info:=/cam/info'],
    )
    try:
        yield node
    finally:
        node.stop()


def wait_for_node(client: Client, node: NodeProcess, publishers: list) -> None:
    for publisher in publishers:
        wait_until(
            lambda p=publisher: node.check_alive() and p.get_subscription_count() > 0,
            timeout=3 * WAIT_S,
            what=f'pixio_node subscribing {publisher.topic_name}',
        )


def test_outputs_across_processes_decode_independently(robot_node, process_client):
    client = process_client
    topics = {
        '/robot/depth': Image,
        '/robot/depth/camera_info': CameraInfo,
        '/robot/features': PointCloud2,
        '/robot/embedding': PointCloud2,
    }
    for topic, msg_type in topics.items():
        client.subscribe(msg_type, topic)
    client.subscribe(PointCloud2, '/robot/points', raw=True)
    image_pub = client.node.create_publisher(Image, '/cam/image_raw', RELIABLE)
    info_pub = client.node.create_publisher(CameraInfo, '/cam/info', RELIABLE)
    wait_for_node(client, robot_node, [image_pub, info_pub])
    info = camera_info_msg()
    prime = image_msg(random_image(20), stamp_ns=1)

    def publish_prime():
        info_pub.publish(info)
        image_pub.publish(prime)

    send_until_received(client, publish_prime, prime.header, ['/robot/depth/camera_info'])
    rgb = random_image(21)
    frame = image_msg(rgb, stamp_ns=2_000_000_042)
    got = send_until_received(client, lambda: image_pub.publish(frame), frame.header, list(topics))
    depth = np.frombuffer(bytes(got['/robot/depth'].data), '<f4').reshape(IMAGE_HEIGHT, IMAGE_WIDTH)
    typestore = get_typestore(Stores.ROS2_JAZZY)

    def points_with_stamp():
        for raw in client.messages('/robot/points'):
            cloud = typestore.deserialize_cdr(raw, 'sensor_msgs/msg/PointCloud2')
            if stamp_key(cloud.header) == stamp_key(frame.header):
                return cloud
        return None

    wait_until(lambda: points_with_stamp() is not None, what='points of the frame')
    cloud = cloud_array(points_with_stamp())
    u = np.arange(IMAGE_WIDTH)[np.newaxis]
    np.testing.assert_array_equal(cloud['z'], depth)
    np.testing.assert_allclose(cloud['x'], (u - CX) * depth / FX, rtol=1e-5, atol=1e-6)
    features = cloud_array(got['/robot/features'])
    assert features.shape == (4, 6) and features['feature'].shape[-1] == 64
    assert np.isfinite(features['z']).all()


def set_parameter_request(name: str, value) -> SetParameters.Request:
    if isinstance(value, int):
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    else:
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    return SetParameters.Request(parameters=[ParameterMsg(name=name, value=parameter_value)])


def call(client: Client, service_client, request):
    future = service_client.call_async(request)
    wait_until(future.done, what=f'{service_client.srv_name} response')
    return future.result()


def test_parameters_over_the_service(robot_node, process_client):
    client = process_client
    service = client.node.create_client(SetParameters, '/robot/pixio/set_parameters')
    wait_until(
        lambda: robot_node.check_alive() and service.service_is_ready(),
        timeout=3 * WAIT_S,
        what='set_parameters service',
    )
    [stride] = call(client, service, set_parameter_request('points.stride', 4)).results
    assert stride.successful
    [model] = call(client, service, set_parameter_request('model_path', 'x.ts')).results
    assert not model.successful and 'read-only' in model.reason
    client.subscribe(PointCloud2, '/robot/points')
    image_pub = client.node.create_publisher(Image, '/cam/image_raw', RELIABLE)
    wait_for_node(client, robot_node, [image_pub])
    frame = image_msg(random_image(22), stamp_ns=3_000_000_000)
    got = send_until_received(
        client, lambda: image_pub.publish(frame), frame.header, ['/robot/points']
    )
    assert (got['/robot/points'].height, got['/robot/points'].width) == (
        IMAGE_HEIGHT // 4,
        IMAGE_WIDTH // 4,
    )


def test_compressed_input_lazy_points_and_diagnostics(tmp_path, points_artifact, process_client):
    from diagnostic_msgs.msg import DiagnosticArray

    client = process_client
    node = NodeProcess(
        tmp_path,
        {
            'model_path': str(points_artifact),
            'device': 'cpu',
            'warmup_runs': 0,
            'compressed_input': True,
            'diagnostics_period': 0.2,
        },
        [],
    )
    try:
        client.subscribe(Image, 'depth')
        client.subscribe(DiagnosticArray, '/diagnostics')
        image_pub = client.node.create_publisher(CompressedImage, 'image/compressed', RELIABLE)
        wait_for_node(client, node, [image_pub])
        ok, jpeg = cv2.imencode('.jpg', random_image(23))
        assert ok
        frame = CompressedImage(format='jpeg', data=jpeg.tobytes())
        for stamp in (1, 2):
            set_header(frame, 'camera_optical', stamp)
            send_until_received(client, lambda: image_pub.publish(frame), frame.header, ['depth'])

        def latest_values():
            for array in reversed(client.messages('/diagnostics')):
                if array.status[0].name != '/pixio: pixio inference':
                    continue  # the /robot node of the other tests reports too
                values = {kv.key: kv.value for kv in array.status[0].values}
                if int(values['frames processed']) >= 2:
                    return values
            return None

        wait_until(lambda: latest_values() is not None, what='diagnostics after two frames')
        values = latest_values()
        assert values['point clouds built'] == '0'
        assert values['feature clouds built'] == '0'
    finally:
        node.stop()
    assert node.process.returncode == 0


def test_missing_artifact_exits_with_one_clear_line(tmp_path):
    node = NodeProcess(tmp_path, {'model_path': str(tmp_path / 'absent.ts')}, [])
    try:
        node.process.wait(3 * WAIT_S)
    finally:
        node.stop()
    assert node.process.returncode == 1
    errors = [line for line in node.output().splitlines() if 'error' in line]
    assert len(errors) == 1
    assert 'absent.ts' in errors[0] and 'pixio-ros export' in errors[0]


def test_repeated_sigint_ends_the_node_cleanly(tmp_path, points_artifact):
    """Ctrl-C under ros2 launch: the terminal's SIGINT, then launch's, while the node tears down."""
    node = NodeProcess(
        tmp_path, {'model_path': str(points_artifact), 'device': 'cpu', 'warmup_runs': 0}, []
    )
    try:
        wait_until(
            lambda: node.check_alive() and 'listening on' in node.output(),
            timeout=3 * WAIT_S,
            what='pixio_node to start',
        )
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while node.process.poll() is None and time.monotonic() < deadline:
            node.process.send_signal(signal.SIGINT)
            time.sleep(0.01)
        assert node.process.wait(STOP_TIMEOUT_S) == 0, node.output()
        assert 'Traceback' not in node.output()
    finally:
        node.stop()
