"""PixioLifecycleNode: the node as a managed (lifecycle) node, for Nav2-style bring-up.

The heavy work moves into transitions a lifecycle manager drives: `configure` loads, checks and
warms the artifact (a bad one fails the transition with the one-line error and the node stays
unconfigured, alive, ready for another try); `activate` subscribes and starts processing;
`deactivate` stops processing and drops frames still waiting, keeping the model loaded;
`cleanup` frees the model and its memory; `shutdown` works from any state. Nothing is published
before activate or after deactivate. Parameters are declared at construction, as in the plain
node, so they can be set while unconfigured; frames flow through the same `Pipeline`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter

from pixio_ros.errors import PixioRosError
from pixio_ros.ros.engine_loading import load_engine, release_memory
from pixio_ros.ros.node import DIAGNOSTICS_QOS_DEPTH, NODE_NAME, node_label, run_node, started_line
from pixio_ros.ros.params import apply_changes, declare_parameters, unknown_parameter_warnings
from pixio_ros.ros.pipeline import Pipeline
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.ros.throttled_log import ThrottledLog

__all__ = ['PixioLifecycleNode', 'main']


class PixioLifecycleNode(LifecycleNode):
    """The pixio_ros node under lifecycle management; see the module docstring.

    Args:
        node_name: ROS node name (remappable with --ros-args -r __node:=...).
        **kwargs: passed to rclpy.lifecycle.LifecycleNode (context, parameter_overrides, ...).

    Raises:
        PixioRosError: invalid start-up parameters (the artifact is checked in configure).
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self._pipeline: Pipeline | None = None
        self._diagnostics_timer: Any = None
        self._settings: NodeSettings = declare_parameters(self)
        for line in unknown_parameter_warnings(self):
            self.get_logger().warning(line)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH
        )

    @property
    def pipeline(self) -> Pipeline | None:
        """The loaded model and its cameras; None while unconfigured."""
        return self._pipeline

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        result, self._settings = apply_changes(self._settings, parameters)
        return result

    # --- transitions (never raise: a failure is logged and returned) ------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load, check and warm the artifact and create the publishers."""
        try:
            engine = load_engine(self._settings, self.get_logger())
            self._pipeline = Pipeline(
                self, engine, lambda: self._settings, ThrottledLog(self.get_logger())
            )
        except Exception as err:
            detail = str(err) if isinstance(err, PixioRosError) else traceback.format_exc()
            self.get_logger().error(f'configure failed: {detail}')
            self._pipeline = None
            release_memory()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe every camera and start processing and diagnostics."""
        pipeline = self._pipeline
        if pipeline is None:
            return TransitionCallbackReturn.FAILURE
        pipeline.start()
        self._diagnostics_timer = self.create_timer(
            self._settings.diagnostics_period, self._publish_diagnostics
        )
        self.get_logger().info(started_line(pipeline))
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe and stop processing; frames still waiting are dropped, the model kept."""
        self._stop_processing()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Free the model, its device memory and the publishers."""
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Stop and free whatever the current state holds."""
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """After an unexpected error in a transition: free everything, back to unconfigured."""
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def _stop_processing(self) -> None:
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._pipeline is not None:
            self._pipeline.stop()

    def _free(self) -> None:
        self._stop_processing()
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.destroy()
            del pipeline
            release_memory()

    def _publish_diagnostics(self) -> None:
        pipeline = self._pipeline
        if pipeline is not None and pipeline.running:
            stamp = self.get_clock().now().to_msg()
            self._diagnostics_pub.publish(pipeline.diagnostics(stamp, node_label(self)))

    def destroy_node(self) -> None:
        """Stop the threads and free the model, then destroy the node."""
        self._free()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `pixio_lifecycle_node`; 1 with one line for invalid parameters.

    The node starts unconfigured; a lifecycle manager (or `ros2 lifecycle set`, or the launch
    file's autostart:=true) configures and activates it.
    """
    return run_node('pixio_lifecycle_node', PixioLifecycleNode, args)


if __name__ == '__main__':
    sys.exit(main())
