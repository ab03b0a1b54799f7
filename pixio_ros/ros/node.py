"""PixioNode: camera image (+ CameraInfo) in; depth, points, features, embedding, diagnostics out.

Frame flow: the image callback only puts the newest message into a one-slot mailbox (a replaced
frame counts as dropped). The inference thread takes the newest frame, decodes it and runs the
engine for the outputs that have subscribers; its result goes through a second one-slot mailbox
to the publishing thread, which builds the messages and publishes them with the input's header.
The two stages overlap (the next frame's inference runs while the last one is published), so
throughput is set by the slower stage, not their sum, and latency stays bounded. A bad frame is
logged (throttled per reason), counted and skipped.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String

from pixio_ros.errors import PixioRosError
from pixio_ros.model.artifact_format import ArtifactError
from pixio_ros.ros.convert import (
    FrameMessages,
    compressed_to_rgb,
    frame_messages,
    image_to_rgb,
    model_info_msg,
)
from pixio_ros.ros.diagnostics import NodeStats, diagnostic_array
from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.frame import InferredFrame, product_options
from pixio_ros.ros.mailbox import Mailbox
from pixio_ros.ros.params import (
    apply_changes,
    declare_parameters,
    init_rclpy,
    qos_profile,
    unknown_parameter_warnings,
)
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.runtime.engine import EXPORT_HINT, Engine, EngineError, RandomInitWarning
from pixio_ros.runtime.image_codec import ImageCodecError
from pixio_ros.runtime.products import Wanted, build_products, engine_outputs
from pixio_ros.wire import (
    COLORED_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    EMBEDDING_TOPIC,
    FEATURES_TOPIC,
    POINTS_TOPIC,
)

__all__ = ['PixioNode', 'main']

NODE_NAME = 'pixio'
WORKER_POLL_S = 0.1
LOG_THROTTLE_S = 5.0
NS_PER_MS = 1e6
NS_PER_S = 1e9
DIAGNOSTICS_QOS_DEPTH = 10
# Short reasons a frame can fail for (diagnostics keys `errors <reason>`).
ERROR_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (ImageCodecError, 'decode'),
    (CameraError, 'camera_info'),
    (EngineError, 'inference'),
)


class PixioNode(Node):
    """The pixio_ros node; see the module docstring for the frame flow.

    Args:
        node_name: ROS node name (remappable with --ros-args -r __node:=...).
        **kwargs: passed to rclpy.node.Node (context, parameter_overrides, namespace, ...).

    Raises:
        PixioRosError: a missing/invalid artifact or invalid start-up parameters.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self._settings: NodeSettings = declare_parameters(self)
        settings = self._settings
        for line in unknown_parameter_warnings(self):
            self.get_logger().warning(line)
        if not settings.model_path:
            raise NodeError(
                'parameter model_path is empty; point it at an artifact (launch: '
                '`ros2 launch pixio_ros pixio.launch.py model:=/path/to/model.ts`; without '
                f'launch: --ros-args -p model_path:=/path/to/model.ts); {EXPORT_HINT}'
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', RandomInitWarning)
            try:
                self.engine = Engine(
                    settings.model_path,
                    device=settings.device,
                    precision=settings.precision,
                    warmup_runs=settings.warmup_runs,
                )
            except ArtifactError as err:  # name where the path came from
                raise ArtifactError(f'model_path (launch argument model:=): {err}') from err
        for warning in caught:
            if issubclass(warning.category, RandomInitWarning):
                self.get_logger().warning(str(warning.message))
        if 'depth' not in self.engine.outputs:
            self.get_logger().warning(
                f'{settings.model_path} has no depth head (head_kind '
                f'{self.engine.metadata.head_kind!r}): depth, depth/colored and points are '
                'not published and feature xyz is NaN; export with --head-kind depth or points '
                'for 3D outputs'
            )
        self.stats = NodeStats()
        self._failed_reported = 0
        self._last_log: dict[str, float] = {}
        self._camera: PinholeCamera | None = None
        self._camera_problem: str | None = None
        self._points_source = 'none'
        self._mailbox: Mailbox[Image | CompressedImage] = Mailbox()
        self._create_publishers(settings)
        self._create_subscriptions(settings)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period, self._publish_diagnostics
        )
        self._results: Mailbox[InferredFrame] = Mailbox()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._infer_loop, name='pixio_inference', daemon=True),
            threading.Thread(target=self._publish_loop, name='pixio_publishing', daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.get_logger().info(
            f'{self.engine.path.name} on {self.engine.device} ({settings.precision}), input '
            f'{self.engine.input_size[0]}x{self.engine.input_size[1]} (HxW), outputs '
            f'{", ".join(self.engine.outputs)}; listening on '
            f'{self._image_subscription.topic_name}'
        )

    @property
    def has_camera_info(self) -> bool:
        """Whether a valid CameraInfo has arrived (points then come from back-projection)."""
        return self._camera is not None

    # --- set-up ---------------------------------------------------------------------------

    def _create_publishers(self, settings: NodeSettings) -> None:
        qos = qos_profile(settings.output_qos)
        self._depth_pub = self.create_publisher(Image, DEPTH_TOPIC, qos)
        self._depth_info_pub = self.create_publisher(CameraInfo, DEPTH_INFO_TOPIC, qos)
        self._colored_pub = self.create_publisher(Image, COLORED_TOPIC, qos)
        self._points_pub = self.create_publisher(PointCloud2, POINTS_TOPIC, qos)
        self._features_pub = self.create_publisher(PointCloud2, FEATURES_TOPIC, qos)
        self._embedding_pub = self.create_publisher(PointCloud2, EMBEDDING_TOPIC, qos)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._model_info_pub = self.create_publisher(String, 'model_info', latched)
        self._model_info_pub.publish(model_info_msg(self.engine.model_info()))
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH
        )

    def _create_subscriptions(self, settings: NodeSettings) -> None:
        qos = qos_profile(settings.input_qos)
        if settings.compressed_input:
            self._image_subscription = self.create_subscription(
                CompressedImage, 'image/compressed', self._on_image, qos
            )
        else:
            self._image_subscription = self.create_subscription(Image, 'image', self._on_image, qos)
        self._info_subscription = self.create_subscription(
            CameraInfo, 'camera_info', self._on_camera_info, qos
        )

    # --- callbacks (never raise) ----------------------------------------------------------

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.frame_received(replaced=self._mailbox.put(msg))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._camera = PinholeCamera.from_camera_info(msg)
        except CameraError as err:
            self.stats.input_rejected('camera_info')
            kept = self._camera
            if kept is not None and (kept.width, kept.height) != (msg.width, msg.height):
                kept = self._camera = None  # another resolution: the old one does not apply
            fallback = (
                'keeping the last valid one'
                if kept is not None
                else 'no valid CameraInfo, 3D '
                'outputs come from the point-map head if the artifact has one'
            )
            self._camera_problem = f'invalid CameraInfo ({fallback}): {err}'
            self._log_throttled('camera_info_invalid', self._camera_problem)
            return
        self._camera_problem = None

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        result, self._settings = apply_changes(self._settings, parameters)
        return result

    def _publish_diagnostics(self) -> None:
        snapshot = self.stats.snapshot()
        failed_since_last = snapshot.failed - self._failed_reported
        self._failed_reported = snapshot.failed
        self._diagnostics_pub.publish(
            diagnostic_array(
                self.get_clock().now().to_msg(),
                f'{self.get_namespace().rstrip("/")}/{self.get_name()}: pixio inference',
                str(self.engine.device),
                snapshot,
                failed_since_last=failed_since_last,
                device_memory_bytes=self.engine.device_memory_bytes(),
                problems=(self._camera_problem,) if self._camera_problem else (),
                extra={
                    'device': str(self.engine.device),
                    'precision': self.engine.precision,
                    'model': self.engine.path.name,
                    'model sha256': self.engine.sha256,
                    'points source': self._points_source,
                },
            )
        )

    # --- inference and publishing threads ---------------------------------------------------

    def _wait_for_rate(self, last_start: float | None) -> bool:
        """Wait until max_rate_hz allows the next frame; False when the node is stopping.

        Waits in WORKER_POLL_S slices that re-read the rate, so raising (or clearing) a very low
        max_rate_hz takes effect at once instead of after the old period.
        """
        while last_start is not None:
            rate = self._settings.max_rate_hz
            if rate <= 0:
                break
            delay = last_start + 1.0 / rate - time.monotonic()
            if delay <= 0:
                break
            if self._stop.wait(min(delay, WORKER_POLL_S)):
                return False
        return not self._stop.is_set()

    def _infer_loop(self) -> None:
        last_start: float | None = None
        while self._wait_for_rate(last_start):
            msg = self._mailbox.take(WORKER_POLL_S)
            if msg is None:
                continue
            last_start = time.monotonic()
            try:
                inferred = self._infer(msg)
            except Exception as err:  # a frame must never stop the thread
                self._frame_failed(err)
                continue
            if inferred is not None and self._results.put(inferred):
                self.stats.frame_dropped()

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            inferred = self._results.take(WORKER_POLL_S)
            if inferred is None:
                continue
            try:
                self._build_and_publish(inferred)
            except Exception as err:  # a frame must never stop the thread
                self._frame_failed(err)

    def _frame_failed(self, err: Exception) -> None:
        reason = next((name for kind, name in ERROR_REASONS if isinstance(err, kind)), 'internal')
        self.stats.frame_failed(reason)
        detail = str(err) if isinstance(err, PixioRosError) else traceback.format_exc()
        self._log_throttled(reason, f'frame skipped ({reason}): {detail}')

    def _wanted(self, settings: NodeSettings) -> Wanted:
        def active(publisher: Any, enabled: bool) -> bool:
            return enabled and publisher.get_subscription_count() > 0

        publish = settings.publish
        has_depth = 'depth' in self.engine.outputs
        return Wanted(
            depth=has_depth
            and (
                active(self._depth_pub, publish.depth)
                or active(self._depth_info_pub, publish.depth)
            ),
            colored=has_depth and active(self._colored_pub, publish.depth_colored),
            points=has_depth and active(self._points_pub, publish.points),
            features=active(self._features_pub, publish.features),
            embedding=active(self._embedding_pub, publish.embedding),
        )

    def _infer(self, msg: Image | CompressedImage) -> InferredFrame | None:
        """Decode and run the engine for the wanted outputs; None when nothing is wanted."""
        settings = self._settings
        wanted = self._wanted(settings)
        if not wanted.anything:
            self.stats.frame_idle()
            return None
        if isinstance(msg, CompressedImage):
            rgb = compressed_to_rgb(msg, max_pixels=int(settings.max_input_megapixels * 1e6))
        else:
            rgb = image_to_rgb(msg)
        height, width = rgb.shape[:2]
        camera = self._camera
        if camera is not None:  # CameraError (counted) when it does not describe this image
            camera = camera.matched_to(width, height)
        if settings.depth_resolution == 'camera':
            depth_size = (height, width)
        else:
            depth_size = self.engine.input_size
        if camera is not None:
            camera = camera.scaled_to(depth_size[1], depth_size[0])
        names = engine_outputs(
            wanted,
            self.engine.outputs,
            has_camera=camera is not None,
            confidence=settings.points.confidence,
        )
        prediction = self.engine.infer(rgb, outputs=names, output_size=depth_size)
        return InferredFrame(
            msg=msg,
            rgb=rgb,
            prediction=prediction,
            wanted=wanted,
            options=product_options(settings, self.engine.metadata.max_depth),
            camera=camera,
        )

    def _build_and_publish(self, inferred: InferredFrame) -> None:
        products = build_products(
            inferred.prediction, inferred.rgb, inferred.camera, inferred.wanted, inferred.options
        )
        for warning in products.warnings:
            self._log_throttled('points_skipped', warning)
        if products.points_source is not None:
            self._points_source = products.points_source
        outputs = frame_messages(products, inferred.msg.header)
        if outputs.points is not None:
            self.stats.cloud_built(features=False)
        if outputs.features is not None:
            self.stats.cloud_built(features=True)
        self._publish(outputs)
        self.stats.frame_published(inferred.prediction.inference_ms, self._age_ms(inferred.msg))

    def _publish(self, outputs: FrameMessages) -> None:
        for publisher, message in (
            (self._depth_pub, outputs.depth),
            (self._depth_info_pub, outputs.depth_info),
            (self._colored_pub, outputs.colored),
            (self._points_pub, outputs.points),
            (self._features_pub, outputs.features),
            (self._embedding_pub, outputs.embedding),
        ):
            if message is not None:
                publisher.publish(message)

    def _age_ms(self, msg: Image | CompressedImage) -> float | None:
        stamp = msg.header.stamp
        stamp_ns = stamp.sec * int(NS_PER_S) + stamp.nanosec
        if stamp_ns == 0:
            return None
        return (self.get_clock().now().nanoseconds - stamp_ns) / NS_PER_MS

    def _log_throttled(self, reason: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(reason, -LOG_THROTTLE_S) >= LOG_THROTTLE_S:
            self._last_log[reason] = now
            self.get_logger().warning(text)

    # --- shutdown -------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Stop the inference and publishing threads, then destroy the node."""
        stop = getattr(self, '_stop', None)
        if stop is not None:
            stop.set()
            self._mailbox.close()
            self._results.close()
            for thread in self._threads:
                thread.join()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `pixio_node`; returns the exit code (1 with one line for a bad set-up)."""
    node = None
    try:
        init_rclpy(args)
        node = PixioNode()
        rclpy.spin(node)
    except PixioRosError as err:
        print(f'pixio_node: error: {err}', file=sys.stderr)
        return 1
    except ParameterException as err:  # wrong type or out of range in a params file or -p
        print(
            f'pixio_node: error: {err}; see the parameter table in the README or '
            'config/pixio.yaml for types and ranges (write 10.0, not 10, for a double)',
            file=sys.stderr,
        )
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():  # SIGINT / SIGTERM may have shut the context down already
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
