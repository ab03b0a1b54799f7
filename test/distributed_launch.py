"""Start `pixio-ros` on several ranks: with torchrun itself, or as torchrun starts them.

`launch` sets the variables torchrun gives each worker (RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and starts one process per rank, each in its own
working directory if asked, so a test sees what every rank wrote. `torchrun` runs the real
launcher (`python -m torch.distributed.run --standalone`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CLI = (sys.executable, '-m', 'pixio_ros.cli')
RANK_THREADS = '1'
"""torch threads per rank: two ranks on two cores (torchrun's own default for N > 1)."""


def free_port() -> int:
    """A TCP port nobody listens on right now (for MASTER_PORT)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def rank_env(rank: int, size: int, port: int) -> dict[str, str]:
    """The environment torchrun gives worker ``rank`` of ``size`` on one node."""
    return {
        **os.environ,
        'OMP_NUM_THREADS': RANK_THREADS,
        'RANK': str(rank),
        'LOCAL_RANK': str(rank),
        'WORLD_SIZE': str(size),
        'LOCAL_WORLD_SIZE': str(size),
        'GROUP_RANK': '0',
        'MASTER_ADDR': '127.0.0.1',
        'MASTER_PORT': str(port),
    }


def launch(
    argv: Sequence[str], cwds: Sequence[Path], *, timeout: float = 240
) -> list[subprocess.CompletedProcess[str]]:
    """Run `pixio-ros ARGV` on ``len(cwds)`` ranks, rank r in ``cwds[r]``; one result per rank."""
    port = free_port()
    size = len(cwds)
    processes = [
        subprocess.Popen(
            [*CLI, *argv],
            cwd=cwd,
            env=rank_env(rank, size, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank, cwd in enumerate(cwds)
    ]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def torchrun_command(argv: Sequence[str], nproc: int) -> list[str]:
    """The torchrun command line of `pixio-ros ARGV` on ``nproc`` processes of this node."""
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--standalone']
    return [*launcher, f'--nproc-per-node={nproc}', '-m', 'pixio_ros.cli', *argv]


def torchrun_env() -> dict[str, str]:
    """The environment for torchrun (threads per rank as `launch` gives them)."""
    return {**os.environ, 'OMP_NUM_THREADS': RANK_THREADS}


def error_lines(stderr: str, command: str) -> list[str]:
    """The `pixio-ros COMMAND: error:` lines of ``stderr`` (one per reported failure)."""
    prefix = f'pixio-ros {command}: error:'
    return [line for line in stderr.splitlines() if line.startswith(prefix)]
