"""pixio_policy_node over real rclpy and Fast DDS: actions, stamps, stale and malformed frames."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_helpers import Client, wait_until
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Float32MultiArray, Header

from pixio_ros.policy import PolicyHead, PolicySpec, save_policy
from pixio_ros.ros.convert import cloud_msg
from pixio_ros.ros.node_process import NodeProcess
from pixio_ros.ros.policy_node import PixioPolicyNode
from pixio_ros.wire import encode_embedding, encode_features

GRID = (3, 4)
CHANNELS = 16
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
FRESH_AGE_MS = 60_000.0  # in-process tests: the clock never makes a fresh frame stale


def make_policy(path, actions):
    torch.manual_seed(3)
    head = PolicyHead(PolicySpec(channels=CHANNELS, grid=GRID, actions=tuple(actions)))
    head.set_action_statistics(torch.randn(20, len(actions)) * 0.3 + 0.1)
    save_policy(head, path)
    return head.eval()


@pytest.fixture(scope='module')
def turn_policy(tmp_path_factory):
    path = tmp_path_factory.mktemp('policy') / 'best.safetensors'
    return path, make_policy(path, ['cmd_vel:angular.z'])


@pytest.fixture(scope='module')
def two_action_policy(tmp_path_factory):
    path = tmp_path_factory.mktemp('policy2') / 'best.safetensors'
    return path, make_policy(path, ['cmd_vel:linear.x', 'joint_states:effort[0]'])


def frame(seed: int):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((*GRID, CHANNELS)).astype(np.float32)
    embedding = rng.standard_normal(CHANNELS).astype(np.float32)
    xyz = np.full((*GRID, 3), np.nan, np.float32)
    return features, embedding, xyz


def header_at(stamp_ns: int) -> Header:
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def clouds(seed: int, stamp_ns: int) -> tuple[PointCloud2, PointCloud2, np.ndarray, np.ndarray]:
    features, embedding, xyz = frame(seed)
    header = header_at(stamp_ns)
    return (
        cloud_msg(encode_features(xyz, features), header),
        cloud_msg(encode_embedding(embedding), header),
        features,
        embedding,
    )


def expected_action(head: PolicyHead, features: np.ndarray, embedding: np.ndarray) -> list[float]:
    with torch.no_grad():
        return head(torch.from_numpy(features)[None], torch.from_numpy(embedding)[None])[0].tolist()


class PolicyRig:
    """The policy node in-process, a client publishing clouds and collecting its outputs."""

    def __init__(self, context, policy_path, **parameters):
        self.client = Client(context, name='policy_test_client')
        overrides = [Parameter('policy_path', value=str(policy_path))]
        overrides += [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = PixioPolicyNode(context=context, parameter_overrides=overrides)
        self.client.add_node(self.node)
        self.features = self.client.node.create_publisher(PointCloud2, 'features', RELIABLE)
        self.embedding = self.client.node.create_publisher(PointCloud2, 'embedding', RELIABLE)
        wait_until(
            lambda: (
                self.features.get_subscription_count() > 0
                and self.embedding.get_subscription_count() > 0
            ),
            what='the policy node subscribing',
        )

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def send(self, features: PointCloud2, embedding: PointCloud2) -> None:
        self.features.publish(features)
        self.embedding.publish(embedding)

    def close(self) -> None:
        self.client.executor.remove_node(self.node)
        self.node.destroy_node()
        self.client.close()


@pytest.fixture
def rig(ros_context):
    made = []

    def make(policy_path, **parameters) -> PolicyRig:
        made.append(PolicyRig(ros_context, policy_path, **parameters))
        return made[-1]

    yield make
    for one in made:
        one.close()


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def test_twist_action_with_the_features_stamp(rig, turn_policy):
    path, head = turn_policy
    policy = rig(path, max_feature_age_ms=FRESH_AGE_MS)
    policy.client.subscribe(Twist, 'action', RELIABLE)
    policy.client.subscribe(Header, 'action/header', RELIABLE)
    stamp = policy.now_ns()
    features_msg, embedding_msg, features, embedding = clouds(1, stamp)
    policy.send(features_msg, embedding_msg)
    wait_until(lambda: policy.client.messages('action'), what='an action')
    wait_until(lambda: policy.client.messages('action/header'), what='its header')
    twist = policy.client.messages('action')[0]
    (angular_z,) = expected_action(head, features, embedding)
    assert twist.angular.z == pytest.approx(angular_z, rel=1e-5, abs=1e-6)
    assert (twist.linear.x, twist.linear.y, twist.angular.x) == (0.0, 0.0, 0.0)
    header = policy.client.messages('action/header')[0]
    assert stamp_ns(header) == stamp and header.frame_id == 'camera_optical'
    assert policy.node.stats.actions == 1


def test_twist_stamped_carries_the_features_header(rig, turn_policy):
    path, head = turn_policy
    policy = rig(path, output_type='twist_stamped', max_feature_age_ms=FRESH_AGE_MS)
    policy.client.subscribe(TwistStamped, 'action', RELIABLE)
    stamp = policy.now_ns() - 5_000_000
    # The embedding first this time: the node pairs the two clouds by stamp, in either order.
    features_msg, embedding_msg, features, embedding = clouds(2, stamp)
    policy.embedding.publish(embedding_msg)
    policy.features.publish(features_msg)
    wait_until(lambda: policy.client.messages('action'), what='an action')
    message = policy.client.messages('action')[0]
    assert stamp_ns(message.header) == stamp
    (angular_z,) = expected_action(head, features, embedding)
    assert message.twist.angular.z == pytest.approx(angular_z, rel=1e-5, abs=1e-6)


def test_float32_array_carries_every_action_in_order(rig, two_action_policy):
    path, head = two_action_policy
    policy = rig(path, output_type='float32_array', max_feature_age_ms=FRESH_AGE_MS)
    policy.client.subscribe(Float32MultiArray, 'action', RELIABLE)
    features_msg, embedding_msg, features, embedding = clouds(3, policy.now_ns())
    policy.send(features_msg, embedding_msg)
    wait_until(lambda: policy.client.messages('action'), what='an action')
    message = policy.client.messages('action')[0]
    assert list(message.data) == pytest.approx(expected_action(head, features, embedding), rel=1e-5)
    assert [(d.label, d.size) for d in message.layout.dim] == [('action', 2)]


def test_twist_refuses_actions_that_are_no_twist_fields(ros_context, two_action_policy):
    path, _ = two_action_policy
    from pixio_ros.ros.settings import SettingsError

    with pytest.raises(SettingsError, match='set output_type to float32_array'):
        PixioPolicyNode(
            context=ros_context, parameter_overrides=[Parameter('policy_path', value=str(path))]
        )


def test_stale_features_are_never_acted_on_and_counted(rig, turn_policy):
    path, _ = turn_policy
    policy = rig(path, max_feature_age_ms=100.0)
    policy.client.subscribe(Twist, 'action', RELIABLE)
    policy.client.subscribe(DiagnosticArray, '/diagnostics')
    # One at a time: the subscriptions keep the last 2 messages, as a policy wants the newest.
    for seed in range(3):
        features_msg, embedding_msg, _, _ = clouds(seed, policy.now_ns() - 2_000_000_000)
        policy.send(features_msg, embedding_msg)
        wait_until(
            lambda seed=seed: policy.node.stats.rejected['stale'] == seed + 1, what='stale frame'
        )
    fresh, fresh_embedding, _, _ = clouds(9, policy.now_ns())
    policy.send(fresh, fresh_embedding)
    wait_until(lambda: policy.client.messages('action'), what='the fresh frame acted on')
    assert len(policy.client.messages('action')) == 1  # the stale ones published nothing

    def reports_stale() -> bool:
        for array in policy.client.messages('/diagnostics'):
            values = {kv.key: kv.value for status in array.status for kv in status.values}
            if values.get('frames stale') == '3' and values.get('actions published') == '1':
                return True
        return False

    wait_until(reports_stale, what='/diagnostics reporting 3 stale frames and the age')


def malformed_clouds(stamp_ns: int) -> list[PointCloud2]:
    """Feature clouds the decoder must refuse: truncated, no feature field, wrong datatype."""
    features, _, xyz = frame(5)

    def cloud() -> PointCloud2:
        return cloud_msg(encode_features(xyz, features), header_at(stamp_ns))

    truncated = cloud()
    truncated.data = bytes(truncated.data)[:-7]
    no_feature = cloud()
    no_feature.fields = [f for f in no_feature.fields if f.name in ('x', 'y', 'z')]
    wrong_type = cloud()
    wrong_type.fields = [
        PointField(name=f.name, offset=f.offset, datatype=PointField.INT8, count=f.count)
        if f.name == 'feature'
        else f
        for f in wrong_type.fields
    ]
    return [truncated, no_feature, wrong_type]


def test_malformed_clouds_are_counted_and_the_node_keeps_acting(rig, turn_policy):
    path, _ = turn_policy
    policy = rig(path, max_feature_age_ms=FRESH_AGE_MS)
    policy.client.subscribe(Twist, 'action', RELIABLE)
    for offset, bad in enumerate(malformed_clouds(policy.now_ns())):
        stamp = stamp_ns(bad.header) + offset
        bad.header = header_at(stamp)
        _, embedding_msg, _, _ = clouds(5, stamp)
        policy.send(bad, embedding_msg)
        wait_until(
            lambda count=offset + 1: policy.node.stats.rejected['malformed'] == count,
            what=f'malformed frame {offset + 1} counted',
        )
    good, good_embedding, _, _ = clouds(6, policy.now_ns())
    policy.send(good, good_embedding)
    wait_until(lambda: policy.client.messages('action'), what='an action after the bad frames')
    assert len(policy.client.messages('action')) == 1


def test_a_grid_the_policy_was_not_trained_on_is_counted(rig, turn_policy):
    path, _ = turn_policy
    policy = rig(path, max_feature_age_ms=FRESH_AGE_MS)
    header = header_at(policy.now_ns())
    rng = np.random.default_rng(0)
    wider = rng.standard_normal((GRID[0], GRID[1] + 1, CHANNELS)).astype(np.float32)
    xyz = np.zeros((*wider.shape[:2], 3), np.float32)
    policy.send(
        cloud_msg(encode_features(xyz, wider), header),
        cloud_msg(encode_embedding(rng.standard_normal(CHANNELS).astype(np.float32)), header),
    )
    wait_until(lambda: policy.node.stats.rejected['mismatch'] == 1, what='the mismatch counted')


# --- a real process: ros2 run's entry point, Fast DDS between processes ----------------------


def test_policy_node_process_acts_and_survives_malformed_clouds(
    module_context, turn_policy, tmp_path
):
    assert shutil.which('pixio_policy_node'), 'run `make setup`: pixio_policy_node not on PATH'
    path, head = turn_policy
    client = Client(module_context, name='policy_process_client')
    process = NodeProcess(
        tmp_path / 'policy.log',
        parameters={
            'policy_path': str(path),
            'output_type': 'twist_stamped',
            'max_feature_age_ms': FRESH_AGE_MS,
        },
        remappings={
            '__ns': '/robot',
            'features': '/pixio/features',
            'embedding': '/pixio/embedding',
        },
        module='pixio_ros.ros.policy_node',
    )
    try:
        client.subscribe(TwistStamped, '/robot/action', RELIABLE)
        client.subscribe(DiagnosticArray, '/diagnostics')
        features_pub = client.node.create_publisher(PointCloud2, '/pixio/features', RELIABLE)
        embedding_pub = client.node.create_publisher(PointCloud2, '/pixio/embedding', RELIABLE)
        with process:
            wait_until(
                lambda: (
                    process.running
                    and features_pub.get_subscription_count() > 0
                    and embedding_pub.get_subscription_count() > 0
                ),
                timeout=60.0,
                what=f'pixio_policy_node subscribing:\n{process.tail()}',
            )
            now = client.node.get_clock().now().nanoseconds
            bad_frames = []
            for offset, bad in enumerate(malformed_clouds(now)):
                bad.header = header_at(now + offset)
                bad_frames.append((bad, clouds(5, now + offset)[1]))

            def malformed_reported() -> bool:
                for array in client.messages('/diagnostics'):
                    for status in array.status:
                        values = {kv.key: kv.value for kv in status.values}
                        if int(values.get('frames malformed', '0')) >= len(bad_frames):
                            return True
                for bad, embedding_msg in bad_frames:  # again: best-effort input may drop one
                    features_pub.publish(bad)
                    embedding_pub.publish(embedding_msg)
                return False

            wait_until(
                malformed_reported,
                timeout=30.0,
                what=f'/diagnostics counting the malformed clouds:\n{process.tail()}',
            )
            stamp = now + 100
            features_msg, embedding_msg, features, embedding = clouds(7, stamp)

            def acted() -> bool:
                if not client.messages('/robot/action'):
                    features_pub.publish(features_msg)
                    embedding_pub.publish(embedding_msg)
                return any(stamp_ns(m.header) == stamp for m in client.messages('/robot/action'))

            wait_until(acted, timeout=30.0, what=f'an action from the process:\n{process.tail()}')
            assert process.running
        message = next(m for m in client.messages('/robot/action') if stamp_ns(m.header) == stamp)
        (angular_z,) = expected_action(head, features, embedding)
        assert message.twist.angular.z == pytest.approx(angular_z, rel=1e-5, abs=1e-6)
        log = process.log.read_text()
        assert 'Traceback' not in log
        assert 'malformed feature cloud skipped' in log
    finally:
        client.close()


def test_a_missing_policy_is_one_line_and_exit_code_1(tmp_path):
    result = subprocess.run(
        [
            shutil.which('pixio_policy_node') or 'pixio_policy_node',
            '--ros-args',
            '-p',
            f'policy_path:={tmp_path / "missing.safetensors"}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'does not exist; train one with `pixio-ros train-policy' in lines[0]
    assert 'Traceback' not in result.stderr
