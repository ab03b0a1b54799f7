"""Pipeline: the node's work, camera streams -> one batched forward -> publishing, on two threads.

The inference thread gathers the newest frame of every camera (`pixio_ros.ros.batching`),
decodes them, runs them through the engine as one batch and hands the results, as one list,
through a one-slot mailbox to the publishing thread, which publishes each frame on its own
camera's topics. The two stages overlap, so throughput is set by the slower one; a result list
replaced before it was published counts as dropped for each of its cameras. The plain node runs
a pipeline for its whole life; the lifecycle node starts it on activate and stops it on
deactivate.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from pixio_ros.ros.batching import Arrivals, gather_frames
from pixio_ros.ros.convert import model_info_msg
from pixio_ros.ros.diagnostics import BatchStats, model_status, statuses_array
from pixio_ros.ros.frame import InferredFrame, PreparedFrame
from pixio_ros.ros.mailbox import Mailbox
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.ros.stream import CameraStream, InputMessage
from pixio_ros.ros.throttled_log import ThrottledLog
from pixio_ros.runtime.engine import Engine
from pixio_ros.units import MS_PER_S

__all__ = ['Pipeline']

WORKER_POLL_S = 0.1
Published = list[tuple[CameraStream, InferredFrame]]


class Pipeline:
    """Streams, the batching inference stage and the publishing stage of one node.

    Args:
        node: the node whose topics the streams use.
        engine: the loaded artifact.
        settings: returns the settings in force (read once per batch, so live changes apply
            to the next batch).
        log: the node's throttled warnings.
    """

    def __init__(
        self,
        node: Node,
        engine: Engine,
        settings: Callable[[], NodeSettings],
        log: ThrottledLog,
    ) -> None:
        self.engine = engine
        self.batches = BatchStats()
        self._node = node
        self._settings = settings
        self._log = log
        self._arrivals = Arrivals()
        start_up = settings()
        self.streams = [
            CameraStream(node, name, start_up, log=log, on_frame=self._arrivals.signal)
            for name in (start_up.cameras or ('',))
        ]
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._model_info_pub = node.create_publisher(String, 'model_info', latched)
        self._results: Mailbox[Published] = Mailbox()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fallback_logged = False

    @property
    def running(self) -> bool:
        """Whether the streams are subscribed and the threads run."""
        return bool(self._threads)

    def start(self) -> None:
        """Subscribe every camera, latch model_info and start the two threads."""
        if self.running:
            return
        settings = self._settings()
        self._model_info_pub.publish(model_info_msg(self.engine.model_info()))
        self._stop.clear()
        self._arrivals.reopen()
        self._threads = [
            threading.Thread(target=self._infer_loop, name='pixio_inference', daemon=True),
            threading.Thread(target=self._publish_loop, name='pixio_publishing', daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        for stream in self.streams:
            stream.subscribe(settings)

    def stop(self) -> None:
        """Unsubscribe, stop the threads and drop the frames and results still waiting."""
        for stream in self.streams:
            stream.unsubscribe()
        self._stop.set()
        self._arrivals.close()
        self._results.close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        for stream in self.streams:
            if stream.mailbox.clear() is not None:
                stream.stats.frame_dropped()
        self._drop(self._results.clear())
        self._results = Mailbox()

    def destroy(self) -> None:
        """Stop, then remove every publisher; the pipeline cannot be started again."""
        self.stop()
        for stream in self.streams:
            stream.destroy_publishers()
        self._node.destroy_publisher(self._model_info_pub)

    # --- inference and publishing threads ---------------------------------------------------

    def _wait_for_rate(self, last_start: float | None) -> bool:
        """Wait until max_rate_hz allows the next batch; False when the pipeline is stopping.

        Waits in WORKER_POLL_S slices that re-read the rate, so raising (or clearing) a very low
        max_rate_hz takes effect at once instead of after the old period.
        """
        while last_start is not None:
            rate = self._settings().max_rate_hz
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
            taken = gather_frames(
                self.streams,
                self._arrivals,
                window_s=self._settings().batch_window_ms / MS_PER_S,
                idle_timeout_s=WORKER_POLL_S,
            )
            if not taken:
                continue
            last_start = time.monotonic()
            settings = self._settings()  # after gathering: a change made meanwhile applies
            jobs: list[tuple[CameraStream, PreparedFrame]] = []
            for index, msg in taken:
                stream = self.streams[index]
                try:
                    prepared = stream.prepare(typing.cast(InputMessage, msg), settings, self.engine)
                except Exception as err:  # a frame must never stop the thread
                    stream.frame_failed(err)
                    continue
                if prepared is not None:
                    jobs.append((stream, prepared))
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[tuple[CameraStream, PreparedFrame]]) -> None:
        """One forward pass over `jobs`; the results go to the publishing thread."""
        outputs = frozenset().union(*(prepared.outputs for _, prepared in jobs))
        try:
            predictions = self.engine.infer_batch(
                [prepared.rgb for _, prepared in jobs],
                outputs=outputs,
                output_sizes=[prepared.output_size for _, prepared in jobs],
            )
        except Exception as err:  # the batch's frames are skipped, the thread goes on
            for stream, _ in jobs:
                stream.frame_failed(err)
            return
        self.batches.batch_ran(len(jobs), predictions[0].inference_ms)
        fallback = self.engine.batch_fallback
        if fallback is not None and not self._fallback_logged:
            self._fallback_logged = True
            self._log.logger.warning(fallback)
        published = [
            (stream, prepared.inferred(prediction))
            for (stream, prepared), prediction in zip(jobs, predictions, strict=True)
        ]
        self._drop(self._results.swap(published))

    @staticmethod
    def _drop(results: Published | None) -> None:
        for stream, _ in results or []:
            stream.stats.frame_dropped()

    def _publish_loop(self) -> None:
        results = self._results
        while not self._stop.is_set():
            published = results.take(WORKER_POLL_S)
            for stream, inferred in published or []:
                try:
                    stream.publish(inferred)
                except Exception as err:  # a frame must never stop the thread
                    stream.frame_failed(err)

    # --- diagnostics ------------------------------------------------------------------------

    def diagnostics(self, stamp: Any, node_label: str) -> DiagnosticArray:
        """The /diagnostics message: one status per camera, plus the model's with several.

        A single-camera node reports one status, `<node>: pixio inference`, as it always has.
        """
        engine = self.engine
        memory = engine.device_memory_bytes()
        model = {
            'device': str(engine.device),
            'precision': engine.precision,
            'backend': engine.backend_info.summary(),
            'model': engine.path.name,
            'model sha256': engine.sha256,
        }
        if len(self.streams) == 1 and not self.streams[0].name:
            status = self.streams[0].status(
                f'{node_label}: pixio inference',
                str(engine.device),
                device_memory_bytes=memory,
                extra=model,
            )
            return statuses_array(stamp, [status])
        statuses = [
            stream.status(
                f'{node_label}: camera {stream.name}',
                str(engine.device),
                device_memory_bytes=None,
                extra={'camera': stream.name, 'image topic': stream.image_topic},
            )
            for stream in self.streams
        ]
        statuses.append(
            model_status(
                f'{node_label}: pixio model',
                str(engine.device),
                self.batches.snapshot(),
                device_memory_bytes=memory,
                extra={**model, 'cameras': ', '.join(stream.name for stream in self.streams)},
                problems=(engine.batch_fallback,) if engine.batch_fallback else (),
            )
        )
        return statuses_array(stamp, statuses)
