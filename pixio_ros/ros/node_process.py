"""NodeProcess: pixio_node as a child process with its own log, stopped the way ros2 launch does.

The demo and the process tests run the node out of process, as a robot would, so that DDS,
parameters from the command line and shutdown on SIGINT are exercised for real.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Final

__all__ = ['NodeProcess']

STOP_TIMEOUT_S: Final = 10.0
ParameterValue = str | int | float | bool | list[str]


def _parameter_text(value: ParameterValue) -> str:
    """A `-p name:=value` value as ROS parses it (YAML: booleans are lower case, [a, b] lists)."""
    if isinstance(value, list):
        return f'[{", ".join(value)}]'
    return str(value).lower() if isinstance(value, bool) else str(value)


class NodeProcess:
    """`python -m pixio_ros.ros.node` with parameters and remappings; use as a context manager.

    Args:
        log: file that receives the node's stdout and stderr.
        parameters: `-p name:=value` pairs (e.g. model_path, use_sim_time).
        remappings: `-r from:=to` pairs (e.g. `__ns`, `image`).
        module: the node's module (`pixio_ros.ros.lifecycle` for the lifecycle node).
    """

    def __init__(
        self,
        log: Path,
        *,
        parameters: Mapping[str, ParameterValue],
        remappings: Mapping[str, str] | None = None,
        module: str = 'pixio_ros.ros.node',
    ) -> None:
        self.log = log
        self.command = [sys.executable, '-m', module, '--ros-args']
        for name, target in (remappings or {}).items():
            self.command += ['-r', f'{name}:={target}']
        for name, value in parameters.items():
            self.command += ['-p', f'{name}:={_parameter_text(value)}']
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def __enter__(self) -> NodeProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process (its output goes to `log`)."""
        self._log_file = self.log.open('wb')
        self._process = subprocess.Popen(
            self.command, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGINT (clean rclpy shutdown), then SIGTERM, then SIGKILL; returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            for stop in (lambda: process.send_signal(signal.SIGINT), process.terminate):
                stop()
                try:
                    process.wait(STOP_TIMEOUT_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return process.returncode

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log, for error messages."""
        text = (
            self.log.read_text(errors='replace').strip().splitlines() if self.log.exists() else []
        )
        return '\n'.join(text[-lines:]) or '(no output)'
