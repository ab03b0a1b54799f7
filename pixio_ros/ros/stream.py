"""CameraStream: one camera of the node, from its input topics to its output topics.

A stream owns what differs per camera: the image and camera_info subscriptions, the one-slot
mailbox its frames wait in, the last valid CameraInfo (and why the last one was refused), the
output publishers under its namespace and its counters. The inference stage takes frames from
several streams and hands each result back to the stream it came from to be published.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, TypeAlias

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan, PointCloud2

from pixio_ros.errors import PixioRosError
from pixio_ros.ros.convert import (
    FrameMessages,
    alignment_msg,
    compressed_to_rgb,
    frame_messages,
    image_to_rgb,
    laser_scan_msg,
)
from pixio_ros.ros.diagnostics import NodeStats, camera_status
from pixio_ros.ros.frame import InferredFrame, PreparedFrame, product_options
from pixio_ros.ros.mailbox import Mailbox
from pixio_ros.ros.params import qos_profile
from pixio_ros.ros.references import Alignment
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.ros.throttled_log import ThrottledLog
from pixio_ros.runtime.alignment import aligned_prediction
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.runtime.engine import Engine, EngineError
from pixio_ros.runtime.image_codec import ImageCodecError
from pixio_ros.runtime.navigation import scan_frame_id
from pixio_ros.runtime.products import Wanted, build_products, engine_outputs
from pixio_ros.units import NS_PER_MS, stamp_ns
from pixio_ros.wire import (
    COLORED_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    EMBEDDING_TOPIC,
    FEATURES_TOPIC,
    POINTS_TOPIC,
)

ALIGNMENT_TOPIC = 'depth/alignment'
SCAN_TOPIC = 'scan'
OBSTACLES_TOPIC = 'points/obstacles'
SPARSE_DEPTH_TOPIC = 'sparse_depth'
SPARSE_POINTS_TOPIC = 'sparse_points'

__all__ = ['ERROR_REASONS', 'CameraStream', 'InputMessage']

InputMessage: TypeAlias = Image | CompressedImage
# Short reasons a frame can fail for (diagnostics keys `errors <reason>`).
ERROR_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (ImageCodecError, 'decode'),
    (CameraError, 'camera_info'),
    (EngineError, 'inference'),
)


class CameraStream:
    """One camera: subscriptions, mailbox, camera model, publishers and counters.

    Args:
        node: the node the topics belong to.
        name: the camera's name, the namespace of its topics (`front` -> `front/image`,
            `front/depth`); '' for the single camera of a plain node (`image`, `depth`).
        settings: the start-up settings (output QoS).
        log: the node's throttled warnings.
        on_frame: called after each frame is stored (wakes the inference stage).
    """

    def __init__(
        self,
        node: Node,
        name: str,
        settings: NodeSettings,
        *,
        log: ThrottledLog,
        on_frame: Any,
    ) -> None:
        self.name = name
        self.stats = NodeStats()
        self.mailbox: Mailbox[InputMessage] = Mailbox()
        self.points_source = 'none'
        self._info_problem: str | None = None  # the last CameraInfo was refused
        # (calibration, warning) when the frames' camera leaves pixels without a ray
        self._rays_problem: tuple[PinholeCamera | None, str] | None = None
        self._rays_checked: PinholeCamera | None = None
        self._node = node
        self._log = log
        self._on_frame = on_frame
        self._camera: PinholeCamera | None = None
        self._last_frame_at: float | None = None
        self._failed_reported = 0
        self._subscriptions: list[Any] = []
        qos = qos_profile(settings.output_qos)
        self._depth_pub = node.create_publisher(Image, self.topic(DEPTH_TOPIC), qos)
        self._depth_info_pub = node.create_publisher(CameraInfo, self.topic(DEPTH_INFO_TOPIC), qos)
        self._colored_pub = node.create_publisher(Image, self.topic(COLORED_TOPIC), qos)
        self._points_pub = node.create_publisher(PointCloud2, self.topic(POINTS_TOPIC), qos)
        self._features_pub = node.create_publisher(PointCloud2, self.topic(FEATURES_TOPIC), qos)
        self._embedding_pub = node.create_publisher(PointCloud2, self.topic(EMBEDDING_TOPIC), qos)
        self._scan_pub = node.create_publisher(LaserScan, self.topic(SCAN_TOPIC), qos)
        self._obstacles_pub = node.create_publisher(PointCloud2, self.topic(OBSTACLES_TOPIC), qos)
        self._alignment_pub = node.create_publisher(
            DiagnosticArray, self.topic(ALIGNMENT_TOPIC), qos
        )
        self.alignment = Alignment()
        self._publishers = [
            self._depth_pub,
            self._depth_info_pub,
            self._colored_pub,
            self._points_pub,
            self._features_pub,
            self._embedding_pub,
            self._scan_pub,
            self._obstacles_pub,
            self._alignment_pub,
        ]

    def topic(self, relative: str) -> str:
        """`relative` under this camera's namespace (unchanged for the single camera)."""
        return f'{self.name}/{relative}' if self.name else relative

    @property
    def label(self) -> str:
        """The camera as logs and diagnostics name it."""
        return self.name or 'camera'

    @property
    def has_camera_info(self) -> bool:
        """Whether a valid CameraInfo has arrived (points then come from back-projection)."""
        return self._camera is not None

    @property
    def image_topic(self) -> str:
        """The resolved image topic (after remapping), or '' while not subscribed."""
        return self._subscriptions[0].topic_name if self._subscriptions else ''

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, settings: NodeSettings) -> None:
        """Start receiving images and CameraInfo (no-op when subscribed already)."""
        if self._subscriptions:
            return
        qos = qos_profile(settings.input_qos)
        node = self._node
        if settings.compressed_input:
            image = node.create_subscription(
                CompressedImage, self.topic('image/compressed'), self._on_image, qos
            )
        else:
            image = node.create_subscription(Image, self.topic('image'), self._on_image, qos)
        info = node.create_subscription(
            CameraInfo, self.topic('camera_info'), self._on_camera_info, qos
        )
        references = self.alignment.references
        sparse_depth = node.create_subscription(
            Image, self.topic(SPARSE_DEPTH_TOPIC), references.put, qos
        )
        sparse_points = node.create_subscription(
            PointCloud2, self.topic(SPARSE_POINTS_TOPIC), references.put, qos
        )
        self._subscriptions = [image, info, sparse_depth, sparse_points]

    def unsubscribe(self) -> None:
        """Stop receiving; a frame still waiting in the mailbox is dropped (and counted)."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        self.alignment.references.clear()
        if self.mailbox.clear() is not None:
            self.stats.frame_dropped()

    def destroy_publishers(self) -> None:
        """Remove the output publishers (the stream cannot publish afterwards)."""
        for publisher in self._publishers:
            self._node.destroy_publisher(publisher)
        self._publishers = []

    def recently_received(self, now: float, within_s: float) -> bool:
        """Whether a frame arrived in the last `within_s` seconds (monotonic `now`)."""
        last = self._last_frame_at
        return last is not None and now - last <= within_s

    # --- callbacks (never raise) ------------------------------------------------------------

    def _on_image(self, msg: InputMessage) -> None:
        self._last_frame_at = time.monotonic()
        self.stats.frame_received(replaced=self.mailbox.put(msg))
        self._on_frame()

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
            where = f' on {self.name}' if self.name else ''
            self._info_problem = f'invalid CameraInfo{where} ({fallback}): {err}'
            self._log.warning(f'{self.name}:camera_info_invalid', self._info_problem)
            return
        self._info_problem = None

    @property
    def camera_problem(self) -> str | None:
        """What is wrong with the calibration in force (WARN in diagnostics), or None."""
        if self._info_problem is not None:
            return self._info_problem
        rays = self._rays_problem
        return rays[1] if rays is not None and rays[0] == self._camera else None

    def _check_rays(self, calibration: PinholeCamera | None, camera: PinholeCamera) -> None:
        """Warn (once per camera) when `camera` leaves pixels without a ray, so without points.

        `camera` is `calibration` at the frame's depth size. The frame back-projects with its
        rays anyway (cached with the camera), so the check costs nothing beyond the first frame
        of a calibration.
        """
        if camera == self._rays_checked:
            return
        self._rays_checked = camera
        share = camera.share_without_ray()
        if share == 0.0:
            self._rays_problem = None
            return
        where = f' on {self.name}' if self.name else ''
        warning = (
            f'CameraInfo{where}: {share:.1%} of the pixels have no ray, so no points (its '
            f'{camera.distortion_model} D folds back or does not invert there, e.g. beyond the '
            'field it was calibrated on); calibrate over the whole image or crop it (ROI)'
        )
        self._rays_problem = (calibration, warning)
        self._log.warning(f'{self.name}:camera_info_rays', warning)

    # --- one frame ----------------------------------------------------------------------------

    def wanted(self, settings: NodeSettings, provided: tuple[str, ...]) -> Wanted:
        """The outputs enabled in `settings` that someone subscribes to on this camera."""

        def active(publisher: Any, enabled: bool) -> bool:
            return enabled and publisher.get_subscription_count() > 0

        publish = settings.publish
        has_depth = 'depth' in provided
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
            scan=has_depth and active(self._scan_pub, publish.scan),
            obstacles=has_depth and active(self._obstacles_pub, publish.obstacles),
        )

    def prepare(
        self, msg: InputMessage, settings: NodeSettings, engine: Engine
    ) -> PreparedFrame | None:
        """Decode `msg` and fix what the model must compute; None when nothing is wanted.

        Raises:
            ImageCodecError: the image cannot be decoded.
            CameraError: the CameraInfo does not describe this image.
        """
        wanted = self.wanted(settings, engine.outputs)
        if not wanted.anything:
            self.stats.frame_idle()
            return None
        if isinstance(msg, CompressedImage):
            rgb = compressed_to_rgb(msg, max_pixels=int(settings.max_input_megapixels * 1e6))
        else:
            rgb = image_to_rgb(msg)
        height, width = rgb.shape[:2]
        calibration = camera = self._camera
        if camera is not None:  # CameraError (counted) when it does not describe this image
            camera = camera.matched_to(width, height)
        if settings.depth_resolution == 'camera':
            depth_size = (height, width)
        else:
            depth_size = engine.input_size
        if camera is not None:
            camera = camera.scaled_to(depth_size[1], depth_size[0])
        names = engine_outputs(
            wanted,
            engine.outputs,
            has_camera=camera is not None,
            confidence=settings.points.confidence or settings.points.min_confidence > 0,
        )
        # Diagnostics name the 3D source from the frame taken on, not only once it is published.
        if wanted.geometry and 'depth' in names and camera is not None:
            self.points_source = 'camera_info'
            self._check_rays(calibration, camera)  # its rays back-project this frame
        elif wanted.geometry and 'points' in names:
            self.points_source = 'head'
        return PreparedFrame(
            msg=msg,
            rgb=rgb,
            outputs=frozenset(names),
            output_size=depth_size,
            wanted=wanted,
            options=product_options(settings, engine.metadata.max_depth),
            camera=camera,
            align=settings.align,
        )

    def publish(self, inferred: InferredFrame) -> None:
        """Build the frame's products and messages and publish them with the input's header."""
        prediction = inferred.prediction
        header = inferred.msg.header
        if inferred.align.mode != 'off' and prediction.depth is not None:
            state = self.alignment.align(prediction.depth, header, inferred.camera, inferred.align)
            if state.problem is not None:  # counted; the last good scale stays in force
                self.stats.input_rejected('alignment')
                self._log.warning(
                    f'{self.name}:alignment', f'alignment kept the last scale: {state.problem}'
                )
            if self._alignment_pub.get_subscription_count() > 0:
                self._alignment_pub.publish(alignment_msg(state, header, self.label))
            prediction = aligned_prediction(prediction, state)
        elif inferred.align.mode == 'off':
            self.alignment.state = None
        products = build_products(
            prediction, inferred.rgb, inferred.camera, inferred.wanted, inferred.options
        )
        for warning in products.warnings:
            self._log.warning(f'{self.name}:points_skipped', warning)
        if products.points_source is not None:
            self.points_source = products.points_source
        outputs = frame_messages(products, header)
        if products.scan is not None:
            frame_id = scan_frame_id(header.frame_id, inferred.options.navigation)
            outputs.scan = laser_scan_msg(products.scan, header, frame_id)
        if outputs.points is not None:
            self.stats.cloud_built(features=False)
        if outputs.features is not None:
            self.stats.cloud_built(features=True)
        self._publish(outputs)
        stamp_problem = self.stats.frame_published(
            inferred.prediction.inference_ms, self._age_ms(inferred.msg)
        )
        if stamp_problem is not None:  # counted; one line per period
            self._log.warning(f'{self.name}:stamp_future', stamp_problem)

    def _publish(self, outputs: FrameMessages) -> None:
        for publisher, message in (
            (self._depth_pub, outputs.depth),
            (self._depth_info_pub, outputs.depth_info),
            (self._colored_pub, outputs.colored),
            (self._points_pub, outputs.points),
            (self._features_pub, outputs.features),
            (self._embedding_pub, outputs.embedding),
            (self._scan_pub, outputs.scan),
            (self._obstacles_pub, outputs.obstacles),
        ):
            if message is not None:
                publisher.publish(message)

    def frame_failed(self, err: Exception) -> None:
        """Count a skipped frame under its reason and log it (throttled per reason)."""
        reason = next((name for kind, name in ERROR_REASONS if isinstance(err, kind)), 'internal')
        self.stats.frame_failed(reason)
        detail = str(err) if isinstance(err, PixioRosError) else traceback.format_exc()
        where = f' on {self.name}' if self.name else ''
        self._log.warning(f'{self.name}:{reason}', f'frame{where} skipped ({reason}): {detail}')

    def _age_ms(self, msg: InputMessage) -> float | None:
        stamp = stamp_ns(msg.header)
        if stamp == 0:
            return None
        return (self._node.get_clock().now().nanoseconds - stamp) / NS_PER_MS

    # --- diagnostics --------------------------------------------------------------------------

    def status(
        self, name: str, hardware_id: str, *, device_memory_bytes: int | None, extra: dict[str, str]
    ) -> DiagnosticStatus:
        """This camera's DiagnosticStatus; `failed since the last report` restarts each call."""
        snapshot = self.stats.snapshot()
        failed_since_last = snapshot.failed - self._failed_reported
        self._failed_reported = snapshot.failed
        problems = [self.camera_problem] if self.camera_problem else []
        values = {**extra, 'points source': self.points_source}
        state = self.alignment.state
        if state is not None:
            if state.problem is not None:
                problems.append(f'alignment kept the last scale: {state.problem}')
            values.update(
                {
                    'alignment scale': f'{state.scale:.6g}',
                    'alignment shift': f'{state.shift:.6g}',
                    'alignment pairs': str(state.pairs),
                    'alignment residual': f'{state.residual:.6g}',
                }
            )
        return camera_status(
            name,
            hardware_id,
            snapshot,
            failed_since_last=failed_since_last,
            device_memory_bytes=device_memory_bytes,
            problems=tuple(problems),
            extra=values,
        )
