"""PixioNode: camera image (+ CameraInfo) in; depth, points, features, embedding, diagnostics out.

The node is a shell: it declares the parameters, loads the artifact and runs a `Pipeline`
(`pixio_ros.ros.pipeline`) for its whole life. With `cameras` empty it serves one camera on
`image` and `camera_info`; with `cameras: [front, left]` it serves each camera under its own
namespace and runs their frames through the model as one batch.

Frame flow: the image callback only puts the newest message into its camera's one-slot mailbox
(a replaced frame counts as dropped). The inference thread takes the newest frame of each
camera, decodes them and runs the engine for the outputs that have subscribers; the results go
through a second one-slot mailbox to the publishing thread, which builds the messages and
publishes them with each input's header. The two stages overlap, so throughput is set by the
slower stage, not their sum, and latency stays bounded. A bad frame is logged (throttled per
reason), counted and skipped.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException, ParameterNotDeclaredException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter

from pixio_ros.errors import PixioRosError
from pixio_ros.ros.diagnostics import NodeStats
from pixio_ros.ros.engine_loading import load_engine
from pixio_ros.ros.params import (
    apply_changes,
    declare_parameters,
    init_rclpy,
    unknown_parameter_warnings,
)
from pixio_ros.ros.pipeline import Pipeline
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.ros.stream import CameraStream
from pixio_ros.ros.throttled_log import ThrottledLog

__all__ = ['PixioNode', 'main', 'run_node', 'started_line']

NODE_NAME = 'pixio'
DIAGNOSTICS_QOS_DEPTH = 10


def started_line(pipeline: Pipeline) -> str:
    """The info line a node logs once it listens: artifact, device, sizes, outputs, topics."""
    engine = pipeline.engine
    topics = ', '.join(stream.image_topic for stream in pipeline.streams)
    return (
        f'{engine.path.name} on {engine.device} ({engine.precision}, backend '
        f'{engine.backend}), input '
        f'{engine.input_size[0]}x{engine.input_size[1]} (HxW), outputs '
        f'{", ".join(engine.outputs)}; listening on {topics}'
    )


def node_label(node: Node) -> str:
    """`<namespace>/<name>` as diagnostics name the node."""
    return f'{node.get_namespace().rstrip("/")}/{node.get_name()}'


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
        self._pipeline: Pipeline | None = None
        self._settings: NodeSettings = declare_parameters(self)
        settings = self._settings
        for line in unknown_parameter_warnings(self):
            self.get_logger().warning(line)
        self.engine = load_engine(settings, self.get_logger())
        self._log = ThrottledLog(self.get_logger())
        self._pipeline = Pipeline(self, self.engine, lambda: self._settings, self._log)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH
        )
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period, self._publish_diagnostics
        )
        self._pipeline.start()
        self.get_logger().info(started_line(self._pipeline))

    @property
    def streams(self) -> dict[str, CameraStream]:
        """The cameras by name ('' for the single camera of a plain node)."""
        return {stream.name: stream for stream in self._running().streams}

    @property
    def stats(self) -> NodeStats:
        """The first (for a plain node: the only) camera's counters."""
        return self._running().streams[0].stats

    @property
    def has_camera_info(self) -> bool:
        """Whether every camera has a valid CameraInfo (points then come from back-projection)."""
        return all(stream.has_camera_info for stream in self._running().streams)

    def _running(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError('PixioNode is being destroyed')
        return self._pipeline

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        result, self._settings = apply_changes(self._settings, parameters)
        return result

    def set_parameters_atomically(self, parameter_list: list[Parameter]) -> SetParametersResult:
        """Apply a change request; every refusal is counted (`errors parameter`) and logged.

        The parameter services call this for each request. rclpy refuses a wrong type, a value
        out of range, a read-only or an undeclared name before `_on_set_parameters` runs, so
        this is where every refusal of a peer's request can be seen.
        """
        try:
            result = super().set_parameters_atomically(parameter_list)
        except ParameterNotDeclaredException as err:
            self._parameter_refused(str(err))
            raise
        if not result.successful:
            self._parameter_refused(result.reason)
        return result

    def _parameter_refused(self, reason: str) -> None:
        if self._pipeline is not None:
            self.stats.input_rejected('parameter')
        self._log.warning('parameter', f'parameter change refused: {reason}')

    def _publish_diagnostics(self) -> None:
        if self._pipeline is not None:
            stamp = self.get_clock().now().to_msg()
            self._diagnostics_pub.publish(self._pipeline.diagnostics(stamp, node_label(self)))

    def destroy_node(self) -> None:
        """Stop the inference and publishing threads, then destroy the node."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.stop()
        super().destroy_node()


def run_node(program: str, make_node: Any, args: Sequence[str] | None) -> int:
    """Start rclpy, build a node with `make_node()` and spin it; the exit code of `program`.

    A bad set-up (artifact, parameters, params file) ends with one line on stderr and code 1.
    """
    node = None
    try:
        init_rclpy(args)
        node = make_node()
        rclpy.spin(node)
    except PixioRosError as err:
        print(f'{program}: error: {err}', file=sys.stderr)
        return 1
    except ParameterException as err:  # wrong type or out of range in a params file or -p
        print(
            f'{program}: error: {err}; see the parameter table in the README or '
            'config/pixio.yaml for types and ranges (write 10.0, not 10, for a double)',
            file=sys.stderr,
        )
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # The process is ending. Ctrl-C under `ros2 launch` sends SIGINT twice (the terminal's,
        # then launch's own): the second must not break the teardown off with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():  # SIGINT / SIGTERM may have shut the context down already
            rclpy.shutdown()
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `pixio_node`; returns the exit code (1 with one line for a bad set-up)."""
    return run_node('pixio_node', PixioNode, args)


if __name__ == '__main__':
    sys.exit(main())
