"""Several processes launched by `torchrun`: who this one is, its share, and how ranks agree.

PyTorch's own launcher (`torchrun`, under SLURM or Kubernetes) starts one process per device
and tells each its place through environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). Commands use this module to split work deterministically
(`shard` / `unshard`: round-robin, so the merged result is in the one-process order), to let
only rank 0 write (`World.is_main`), to combine results (`all_sum`, `all_gather`,
`gather_to_main`, `broadcast_from_main`), to stop every rank with one line when one fails
(`agreed`) and to refuse ranks that were given different inputs (`check_same_inputs`).
Without those variables everything here is the identity on one process, so the commands
have a single code path.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from pixio_ros.errors import PixioRosError

if TYPE_CHECKING:
    import torch

__all__ = [
    'DistributedError',
    'RankFailedError',
    'World',
    'agreed',
    'backend_for',
    'check_same_inputs',
    'joined',
    'error_line',
    'shard',
    'unshard',
    'world_from_env',
]

T = TypeVar('T')
ENV_RANK, ENV_WORLD_SIZE, ENV_LOCAL_RANK = 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)
"""How long a rank waits for the others in one collective (an encoder epoch can be long)."""
SHOWN_VALUE_CHARS = 120
"""Longest value `check_same_inputs` prints (a list of hundreds of bags is cut)."""


class DistributedError(PixioRosError):
    """Launcher variables that do not fit together, or a process group that cannot work.

    Attributes:
        reporter: The rank that prints this error (the others stay quiet, so a failure is
            one line however many ranks see it).
    """

    def __init__(self, message: str, *, reporter: int = 0):
        super().__init__(message)
        self.reporter = reporter


class RankFailedError(DistributedError):
    """One rank failed (its own error, or it is gone); every rank stops with this message.

    Attributes:
        rank: The first rank that failed.
    """

    def __init__(self, message: str, *, rank: int, reporter: int = 0):
        super().__init__(message, reporter=reporter)
        self.rank = rank


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError as err:
        raise DistributedError(
            f'{name}={text!r} is not an integer; start the command with torchrun, which sets it.'
        ) from err


@dataclass
class World:
    """This process's place among the ranks of one run (0 of 1 without torchrun).

    Attributes:
        rank: Global rank, 0..size-1.
        size: Number of processes (WORLD_SIZE).
        local_rank: Rank on this node (picks the GPU).
        peers: (host, pid) of every rank, filled in by `joined` (to name a rank that is gone).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)
    failing: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes outputs and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1


def world_from_env(environ: dict[str, str] | None = None) -> World:
    """The World torchrun describes in ``environ`` (default ``os.environ``); 0 of 1 without it.

    Raises:
        DistributedError: The variables contradict each other.
    """
    env = dict(os.environ if environ is None else environ)
    size = _env_int(env, ENV_WORLD_SIZE, 1)
    rank = _env_int(env, ENV_RANK, 0)
    local_rank = _env_int(env, ENV_LOCAL_RANK, 0)
    if size < 1 or not 0 <= rank < size or local_rank < 0:
        raise DistributedError(
            f'RANK={rank}, WORLD_SIZE={size}, LOCAL_RANK={local_rank} do not describe a rank '
            'of a run; start the command with torchrun (it sets them) or unset them.'
        )
    return World(rank=rank, size=size, local_rank=local_rank)


def backend_for(device: torch.device) -> str:
    """The collective backend for ``device``: NCCL between GPUs, gloo between CPUs."""
    return 'nccl' if device.type == 'cuda' else 'gloo'


def rank_device(requested: str, world: World) -> str:
    """The device this rank uses: a plain ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun.

    Under torchrun ``auto`` is resolved here (cuda when torch sees a GPU, else cpu), so that
    each rank takes its own GPU; on one process it is left to the command.

    Raises:
        DistributedError: One explicit ``cuda:N`` for several processes on a node (they would
            all share one GPU).
    """
    if world.distributed and requested == 'auto':
        import torch

        requested = 'cuda' if torch.cuda.is_available() else 'cpu'
    if not world.distributed or not requested.startswith('cuda'):
        return requested
    if requested == 'cuda':
        return f'cuda:{world.local_rank}'
    raise DistributedError(
        f'--device {requested} under torchrun would put every rank on one GPU; pass --device '
        'cuda (each rank takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES.'
    )


@contextlib.contextmanager
def joined(device: torch.device, world: World | None = None) -> Iterator[World]:
    """Join the run's process group for the duration of a command (no-op on one process).

    NCCL for GPUs, gloo for CPUs. While joined, SIGTERM (torchrun's way of stopping the
    remaining ranks when one fails) raises `RankFailedError` naming the rank that is gone.
    """
    world = world_from_env() if world is None else world
    if not world.distributed:
        yield world
        return
    import torch.distributed as dist

    if device.type == 'cuda':
        import torch

        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=COLLECTIVE_TIMEOUT)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        peers: list[Any] = [None] * world.size
        dist.all_gather_object(peers, (socket.gethostname(), os.getpid()))
        world.peers = [(str(host), int(pid)) for host, pid in peers]

        def stopped(signum: int, frame: FrameType | None) -> None:
            if not world.failing:
                raise _lost_peer(world, 'stopped by the launcher (SIGTERM)')

        signal.signal(signal.SIGTERM, stopped)
        yield world
    finally:
        if not world.failing:  # a failing rank keeps ignoring SIGTERM until it has reported
            signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(RuntimeError, ValueError):
            dist.destroy_process_group()


def _process_gone(pid: int) -> bool:
    """True when ``pid`` (on this host) no longer runs: absent, or a zombie awaiting its parent."""
    stat = Path(f'/proc/{pid}/stat')
    try:
        state = stat.read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ('Z', 'X')


def _lost_peer(world: World, what: str) -> RankFailedError:
    """The error of a rank that lost its peers: which ranks are gone, as far as it can tell."""
    world.failing = True
    host = socket.gethostname()
    gone = [
        rank
        for rank, (peer_host, pid) in enumerate(world.peers)
        if rank != world.rank and peer_host == host and _process_gone(pid)
    ]
    alive = [rank for rank in range(world.size) if rank not in gone]
    if gone:
        names = ', '.join(f'rank {rank} (pid {world.peers[rank][1]})' for rank in gone)
        message = (
            f'{names} of {world.size} is gone (killed or crashed: out of memory, a signal); '
            f'rank {world.rank} {what}; every rank stopped.'
        )
        return RankFailedError(message, rank=gone[0], reporter=min(alive))
    message = (
        f'rank {world.rank} of {world.size} lost its peers ({what}); a rank on another node '
        "stopped: torchrun's failure report names it."
    )
    return RankFailedError(message, rank=-1, reporter=world.rank)


def error_line(error: BaseException, environ: dict[str, str] | None = None) -> str | None:
    """What this rank prints for ``error``; None when another rank prints it.

    A failure the ranks agreed on (`RankFailedError`) is printed once, by its reporter. Any other
    error is this rank's own, printed by it (named by its rank when there are several).
    """
    try:
        world = world_from_env(environ)
    except DistributedError:
        return str(error)
    if isinstance(error, DistributedError):
        return str(error) if error.reporter == world.rank else None
    if world.is_main:
        return str(error)
    return f'rank {world.rank} of {world.size}: {error}'


def _collective(world: World, what: str, call: Any, *args: Any) -> Any:
    """Run a torch.distributed collective; a lost peer becomes a `RankFailedError`."""
    try:
        return call(*args)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _lost_peer(world, f'{what}: {first}') from err


def all_sum(tensor: torch.Tensor, world: World, what: str = 'summing') -> torch.Tensor:
    """Sum of ``tensor`` over the ranks (a new tensor; ``tensor`` itself on one process)."""
    if not world.distributed:
        return tensor
    import torch.distributed as dist

    total = tensor.detach().clone()
    _collective(world, what, dist.all_reduce, total)
    return total


def all_gather(value: T, world: World, what: str = 'gathering') -> list[T]:
    """Every rank's ``value`` (picklable, small), in rank order, on every rank."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * world.size
    _collective(world, what, dist.all_gather_object, values, value)
    return values


def broadcast_from_main(value: T, world: World, what: str = 'broadcasting') -> T:
    """Rank 0's ``value`` on every rank (others pass anything, e.g. None)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box: list[Any] = [value]
    _collective(world, what, dist.broadcast_object_list, box, 0)
    return box[0]


def gather_to_main(value: T, world: World, what: str = 'gathering') -> list[T] | None:
    """Every rank's ``value`` in rank order on rank 0; None on the others."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    values: list[Any] | None = [None] * world.size if world.is_main else None
    _collective(world, what, dist.gather_object, value, values, 0)
    return values


def shard(items: Sequence[T], world: World) -> list[T]:
    """This rank's items: every ``size``-th from position ``rank`` (deterministic, balanced)."""
    return list(items[world.rank :: world.size])


def unshard(parts: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of `shard`: rank r's i-th item goes back to position i * size + r."""
    size = len(parts)
    merged: list[T] = []
    longest = max((len(part) for part in parts), default=0)
    for position in range(longest * size):
        rank, index = position % size, position // size
        if index < len(parts[rank]):
            merged.append(parts[rank][index])
    return merged


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ''
    return text if isinstance(error, PixioRosError) else f'{type(error).__name__}: {text}'


@contextlib.contextmanager
def agreed(world: World, what: str) -> Iterator[None]:
    """Run a stage on every rank, then agree on its outcome: all go on, or all stop.

    Without a failure this costs one small all-gather. If any rank raised, every rank raises
    `RankFailedError` with the first failing rank's reason (identical errors on all ranks, such as
    a bad option, keep their own message). On one process the error passes through unchanged.
    """
    error: BaseException | None = None
    try:
        yield
    except Exception as err:  # any rank's failure, out of memory included
        if not world.distributed:
            raise
        error = err
    if not world.distributed:
        return
    reasons = all_gather(None if error is None else _reason(error), world, what)
    failed = [(rank, reason) for rank, reason in enumerate(reasons) if reason is not None]
    if not failed:
        return
    world.failing = True
    rank, reason = failed[0]
    if len(failed) == world.size and len({r for _, r in failed}) == 1:
        message = reason  # every rank failed alike (a bad option, a missing file)
    else:
        reason = reason.rstrip('.')  # the sentence goes on
        message = f'rank {rank} of {world.size} failed {what}: {reason}; every rank stopped.'
    raise RankFailedError(message, rank=rank) from error


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else f'{text[: SHOWN_VALUE_CHARS - 3]}...'


def check_same_inputs(
    values: dict[str, Any], world: World, *, sources: dict[str, str] | None = None
) -> None:
    """Refuse a run whose ranks were given different inputs (options, data, files).

    Every rank must work on the same frames with the same settings: otherwise they run
    different numbers of steps (and wait for each other until `COLLECTIVE_TIMEOUT`) or merge
    results that do not belong together. Costs one small all-gather; call it on every rank at
    the same point. On one process it does nothing.

    Args:
        values: What must agree, by name (picklable, compared with ``==``).
        world: This process's rank.
        sources: Per name, the option or input that sets it (named in the error).

    Raises:
        DistributedError: On every rank, printed once by rank 0: the first rank whose value
            differs from rank 0's, the name and both values.
    """
    if not world.distributed:
        return
    every = all_gather(values, world, "comparing the ranks' inputs")
    reference = every[0]
    for rank, theirs in enumerate(every[1:], start=1):
        names = {**reference, **theirs}
        differing = [key for key in names if reference.get(key) != theirs.get(key)]
        if not differing:
            continue
        key = differing[0]
        source = (sources or {}).get(key)
        more = f' ({len(differing) - 1} more values differ too)' if len(differing) > 1 else ''
        world.failing = True
        raise DistributedError(
            f'rank {rank} of {world.size} was started with other inputs than rank 0: {key} is '
            f'{_shown(theirs.get(key))} on rank {rank}, {_shown(reference.get(key))} on rank 0'
            + (f' (set by {source})' if source else '')
            + f'{more}; start every rank with the same command, options and files (the same '
            'paths on every node, or a shared filesystem).',
            reporter=0,
        )
