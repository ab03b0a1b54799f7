"""PixioPolicyNode: the example policy on the live `features` and `embedding` topics.

Subscribes to `features` and `embedding` (remap them onto a pixio_node's outputs), pairs the two
clouds of one frame by header stamp, decodes them with `pixio_ros.features`, runs the policy
head of `pixio-ros train-policy` and publishes the action on `action` (Twist by default) with the
features' header stamp. A frame older than `max_feature_age_ms` when its pair is complete is
never acted on: nothing is published and it counts as stale. A cloud that does not decode or
does not fit the policy is logged (throttled), counted and skipped; callbacks never raise.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension

from pixio_ros.features import FeatureDecodeError, decode_embedding, decode_features
from pixio_ros.policy.checkpoint import load_policy
from pixio_ros.ros.diagnostics import statuses_array
from pixio_ros.ros.node import node_label, run_node
from pixio_ros.ros.params import RELIABILITY, descriptor
from pixio_ros.ros.policy_settings import (
    POLICY_PARAMETERS,
    PolicySettings,
    twist_components,
)
from pixio_ros.ros.settings import SettingsError
from pixio_ros.ros.throttled_log import ThrottledLog
from pixio_ros.units import MS_PER_S, NS_PER_MS, stamp_ns

__all__ = ['PixioPolicyNode', 'PolicyStats', 'main']

NODE_NAME: Final = 'pixio_policy'
AGE_SAMPLES: Final = 200
# Clouds of frames whose partner has not arrived yet, per topic: the node publishes features and
# embedding of one frame back to back, so a few frames suffice.
PENDING_FRAMES: Final = 4
DIAGNOSTICS_QOS_DEPTH: Final = 10
OUTPUT_QOS_DEPTH: Final = 10
REJECTIONS: Final = ('stale', 'malformed', 'mismatch', 'unstamped', 'unpaired')


class PolicyStats:
    """What the policy node did: actions, rejected frames by reason, ages, inference time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.actions = 0
        self.rejected = dict.fromkeys(REJECTIONS, 0)
        self._reported = 0
        self._ages: collections.deque[float] = collections.deque(maxlen=AGE_SAMPLES)
        self._inference: collections.deque[float] = collections.deque(maxlen=AGE_SAMPLES)
        self.last_age_ms = float('nan')

    def acted(self, age_ms: float, inference_ms: float) -> None:
        """Count a published action and the age of the features it came from."""
        with self._lock:
            self.actions += 1
            self.last_age_ms = age_ms
            self._ages.append(age_ms)
            self._inference.append(inference_ms)

    def reject(self, reason: str) -> None:
        """Count a frame not acted on, by reason (one of REJECTIONS)."""
        with self._lock:
            self.rejected[reason] += 1

    def status(self, name: str, hardware_id: str) -> DiagnosticStatus:
        """The status of the period since the last one: WARN when frames were rejected."""
        with self._lock:
            rejected = sum(self.rejected.values())
            new = rejected - self._reported
            self._reported = rejected
            values = {
                'actions published': str(self.actions),
                **{f'frames {reason}': str(count) for reason, count in self.rejected.items()},
                'feature age ms last': f'{self.last_age_ms:.2f}',
                'feature age ms p50': _percentile(self._ages, 50),
                'feature age ms max': _percentile(self._ages, 100),
                'inference ms p50': _percentile(self._inference, 50),
            }
        if new:
            level, message = DiagnosticStatus.WARN, f'{new} frame(s) rejected since the last report'
        elif self.actions:
            level, message = DiagnosticStatus.OK, 'acting'
        else:
            level, message = DiagnosticStatus.OK, 'waiting for features'
        return DiagnosticStatus(
            level=level,
            name=name,
            message=message,
            hardware_id=hardware_id,
            values=[KeyValue(key=key, value=value) for key, value in values.items()],
        )


def _percentile(values: collections.deque[float], q: float) -> str:
    return f'{float(np.percentile(list(values), q)):.2f}' if values else 'nan'


class PixioPolicyNode(Node):
    """The policy node; see the module docstring.

    Args:
        node_name: ROS node name.
        **kwargs: passed to rclpy.node.Node (context, parameter_overrides, namespace, ...).

    Raises:
        PolicyError: a missing or invalid policy checkpoint.
        SettingsError: invalid parameters, or actions the output type cannot carry.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any):
        super().__init__(node_name, **kwargs)
        values = {
            spec.name: self.declare_parameter(spec.name, spec.default, descriptor(spec)).value
            for spec in POLICY_PARAMETERS
        }
        self.settings = PolicySettings.from_parameters(values)
        if not self.settings.policy_path:
            raise SettingsError(
                'policy_path is empty; pass -p policy_path:=RUN/best.safetensors (a run of '
                '`pixio-ros train-policy`)'
            )
        self.head = load_policy(Path(self.settings.policy_path), device=self.settings.device)
        self.spec = self.head.spec
        output = self.settings.output_type
        self._twist = twist_components(self.spec.actions) if output != 'float32_array' else ()
        self.stats = PolicyStats()
        self._log = ThrottledLog(self.get_logger())
        self._lock = threading.Lock()
        self._pending: dict[str, collections.OrderedDict[int, Any]] = {
            'features': collections.OrderedDict(),
            'embedding': collections.OrderedDict(),
        }
        message_type = {
            'twist': Twist,
            'twist_stamped': TwistStamped,
            'float32_array': Float32MultiArray,
        }[output]
        self._action_pub = self.create_publisher(message_type, 'action', OUTPUT_QOS_DEPTH)
        self._header_pub = (
            self.create_publisher(Header, 'action/header', OUTPUT_QOS_DEPTH)
            if output != 'twist_stamped'
            else None
        )
        qos = QoSProfile(
            depth=self.settings.input_depth,
            reliability=RELIABILITY[self.settings.input_reliability],
        )
        for topic in self._pending:
            self.create_subscription(PointCloud2, topic, self._cloud_callback(topic), qos)
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH
        )
        self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'policy {self.settings.policy_path} ({", ".join(self.spec.actions)}; grid '
            f'{self.spec.grid[0]}x{self.spec.grid[1]}, {self.spec.channels} channels) on '
            f'{self.settings.device}; publishing {output} on {self._action_pub.topic_name}'
        )

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters}
        read_only = [spec.name for spec in POLICY_PARAMETERS if spec.read_only]
        refused = sorted(set(changes) & set(read_only))
        if refused:
            return SetParametersResult(
                successful=False, reason=f'{", ".join(refused)} are read-only; set at start-up'
            )
        try:
            self.settings = self.settings.replaced(
                {k: v for k, v in changes.items() if k in {s.name for s in POLICY_PARAMETERS}}
            )
        except SettingsError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True, reason='')

    def _cloud_callback(self, topic: str) -> Callable[[PointCloud2], None]:
        def callback(msg: PointCloud2) -> None:
            self._on_cloud(topic, msg)

        return callback

    def _on_cloud(self, topic: str, msg: PointCloud2) -> None:
        """Keep the cloud until its partner of the same stamp arrives, then act on the pair."""
        stamp = stamp_ns(msg.header)
        if stamp == 0:
            self._reject('unstamped', f'{topic} cloud without a header stamp; skipped')
            return
        other = 'embedding' if topic == 'features' else 'features'
        with self._lock:
            partner = self._pending[other].pop(stamp, None)
            overflow = False
            if partner is None:
                pending = self._pending[topic]
                pending[stamp] = msg
                overflow = len(pending) > PENDING_FRAMES
                if overflow:
                    pending.popitem(last=False)
        if partner is None:
            if overflow:
                self._reject('unpaired', f'a {topic} cloud never got its partner; skipped')
            return
        features, embedding = (msg, partner) if topic == 'features' else (partner, msg)
        self._act(features, embedding)

    def _act(self, features_msg: PointCloud2, embedding_msg: PointCloud2) -> None:
        age_ms = (self.get_clock().now().nanoseconds - stamp_ns(features_msg.header)) / NS_PER_MS
        limit = self.settings.max_feature_age_ms
        if age_ms > limit:
            text = f'features {age_ms:.0f} ms old (max_feature_age_ms {limit:g}); not acted on'
            self._reject('stale', text)
            return
        try:
            grid = decode_features(features_msg)
            embedding = decode_embedding(embedding_msg)
        except FeatureDecodeError as err:
            self._reject('malformed', f'malformed feature cloud skipped: {err}')
            return
        height, width, channels = grid.shape
        if (
            (height, width) != self.spec.grid
            or channels != self.spec.channels
            or (embedding.shape != (self.spec.channels,))
        ):
            self._reject(
                'mismatch',
                f'features {height}x{width}x{channels} (embedding {embedding.shape[0]}) do not fit '
                f'the policy ({self.spec.grid[0]}x{self.spec.grid[1]}x{self.spec.channels}): run '
                'it on the artifact and input size it was trained with',
            )
            return
        started = time.perf_counter()
        with torch.inference_mode():
            action = self.head(
                torch.from_numpy(grid.features)[None].to(self.settings.device),
                torch.from_numpy(embedding)[None].to(self.settings.device),
            )[0].cpu()
        self._publish(features_msg.header, action.tolist())
        self.stats.acted(age_ms, (time.perf_counter() - started) * MS_PER_S)

    def _publish(self, header: Header, action: Sequence[float]) -> None:
        if self._header_pub is not None:
            self._header_pub.publish(header)
        if self.settings.output_type == 'float32_array':
            msg = Float32MultiArray(data=[float(value) for value in action])
            msg.layout.dim = [
                MultiArrayDimension(label='action', size=len(action), stride=len(action))
            ]
            self._action_pub.publish(msg)
            return
        twist = Twist()
        for (vector, axis), value in zip(self._twist, action, strict=True):
            setattr(getattr(twist, vector), axis, float(value))
        if self.settings.output_type == 'twist_stamped':
            self._action_pub.publish(TwistStamped(header=header, twist=twist))
        else:
            self._action_pub.publish(twist)

    def _reject(self, reason: str, text: str) -> None:
        self.stats.reject(reason)
        self._log.warning(reason, text)

    def _publish_diagnostics(self) -> None:
        status = self.stats.status(f'{node_label(self)}: policy', self.settings.policy_path)
        now: Time = self.get_clock().now()
        self._diagnostics_pub.publish(statuses_array(now.to_msg(), [status]))


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `pixio_policy_node`; 1 with one line for a bad policy or parameter."""
    return run_node('pixio_policy_node', PixioPolicyNode, args)


if __name__ == '__main__':
    sys.exit(main())
