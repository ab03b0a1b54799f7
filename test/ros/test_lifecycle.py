"""The lifecycle node in its own process, driven through the lifecycle_msgs services."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import WAIT_S, Client, camera_info_msg, image_msg, random_image, wait_until
from sensor_msgs.msg import CameraInfo, Image

from pixio_ros.ros.node_process import NodeProcess

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CAMERA_PERIOD_S = 1.0 / 15.0
# How long to listen for outputs that must not come.
QUIET_S = 1.5
LIFECYCLE_MODULE = 'pixio_ros.ros.lifecycle'


@pytest.fixture
def lifecycle_client(ros_context):
    client = Client(ros_context, name='pixio_lifecycle_test_client')
    try:
        yield client
    finally:
        client.close()


class Manager:
    """ChangeState / GetState calls on one lifecycle node, as a lifecycle manager makes them."""

    def __init__(self, client: Client, node: NodeProcess, name: str) -> None:
        self.node = node
        self._change = client.node.create_client(ChangeState, f'{name}/change_state')
        self._get = client.node.create_client(GetState, f'{name}/get_state')
        for service in (self._change, self._get):
            wait_until(
                lambda s=service: node.running and s.service_is_ready(),
                timeout=3 * WAIT_S,
                what=f'{service.srv_name}',
            )

    def _call(self, service, request):
        future = service.call_async(request)
        wait_until(
            lambda: future.done() or not self.node.running,
            timeout=3 * WAIT_S,
            what=f'{service.srv_name} response',
        )
        assert self.node.running, self.node.tail()
        return future.result()

    def change(self, transition: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition
        return bool(self._call(self._change, request).success)

    def state(self) -> int:
        return int(self._call(self._get, GetState.Request()).current_state.id)


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid`, from /proc."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
    raise AssertionError(f'no VmRSS for {pid}')


class Camera:
    """Publishes an image and CameraInfo every CAMERA_PERIOD_S from a thread."""

    def __init__(self, client: Client) -> None:
        self.image_pub = client.node.create_publisher(Image, '/lc/image', RELIABLE)
        self.info_pub = client.node.create_publisher(CameraInfo, '/lc/camera_info', RELIABLE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        info = camera_info_msg()
        frame = image_msg(random_image(40))
        stamp = 1
        while not self._stop.wait(CAMERA_PERIOD_S):
            stamp += 1
            frame.header.stamp.sec = stamp
            self.info_pub.publish(info)
            self.image_pub.publish(frame)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_outputs_only_while_active_and_memory_freed_on_cleanup(
    tmp_path, points_artifact, lifecycle_client
):
    client = lifecycle_client
    client.subscribe(Image, '/lc/depth')
    node = NodeProcess(
        tmp_path / 'node.log',
        parameters={'model_path': str(points_artifact), 'device': 'cpu', 'warmup_runs': 1},
        remappings={'__ns': '/lc'},
        module=LIFECYCLE_MODULE,
    )
    with node:
        manager = Manager(client, node, '/lc/pixio')
        camera = Camera(client)
        try:
            assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
            assert manager.change(Transition.TRANSITION_CONFIGURE)
            assert manager.state() == State.PRIMARY_STATE_INACTIVE
            # Configured: the depth publisher exists, yet nothing flows before activate.
            wait_until(
                lambda: client.node.count_publishers('/lc/depth') > 0, what='depth publisher'
            )
            time.sleep(QUIET_S)
            assert client.messages('/lc/depth') == []
            assert camera.image_pub.get_subscription_count() == 0

            assert manager.change(Transition.TRANSITION_ACTIVATE)
            assert manager.state() == State.PRIMARY_STATE_ACTIVE
            wait_until(lambda: len(client.messages('/lc/depth')) >= 3, what='depth after activate')

            assert manager.change(Transition.TRANSITION_DEACTIVATE)
            assert manager.state() == State.PRIMARY_STATE_INACTIVE
            client.clear()
            time.sleep(QUIET_S)
            assert client.messages('/lc/depth') == []
            assert camera.image_pub.get_subscription_count() == 0

            assert node.pid is not None
            loaded = rss_bytes(node.pid)
            assert manager.change(Transition.TRANSITION_CLEANUP)
            assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
            freed = loaded - rss_bytes(node.pid)
            # At least the weights (the artifact file is mostly weights) left the process.
            assert freed >= points_artifact.stat().st_size, (loaded, freed)

            # Configure again after cleanup, then shut down from inactive.
            assert manager.change(Transition.TRANSITION_CONFIGURE)
            assert manager.change(Transition.TRANSITION_INACTIVE_SHUTDOWN)
            assert manager.state() == State.PRIMARY_STATE_FINALIZED
            assert node.running
        finally:
            camera.stop()
    assert node.stop() == 0


def test_configure_with_a_bad_artifact_fails_and_leaves_the_node_unconfigured(
    tmp_path, lifecycle_client
):
    bad = tmp_path / 'broken.ts'
    bad.write_bytes(b'not an artifact at all')
    node = NodeProcess(
        tmp_path / 'node.log',
        parameters={'model_path': str(bad), 'device': 'cpu'},
        remappings={'__ns': '/lc_bad'},
        module=LIFECYCLE_MODULE,
    )
    with node:
        manager = Manager(lifecycle_client, node, '/lc_bad/pixio')
        assert not manager.change(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert node.running
        errors = [line for line in node.log.read_text().splitlines() if 'configure failed' in line]
        assert len(errors) == 1 and 'broken.ts' in errors[0], node.tail()
        # Still serving: a second try gets the same answer, and shutdown works from here.
        assert not manager.change(Transition.TRANSITION_CONFIGURE)
        assert manager.change(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert manager.state() == State.PRIMARY_STATE_FINALIZED
    assert node.stop() == 0
