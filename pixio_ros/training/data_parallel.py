"""Training one head on N processes so that the run does not depend on N.

Every rank draws the same global batch order and the same augmentation numbers from the run's
one generator; rank r builds every N-th example of each global batch (`local_positions`).
Losses are functions of sums over the global batch (`global_total`), and the head's gradients
are summed over the ranks (DistributedDataParallel with a summing communication hook), so a
step on N processes with global batch B computes the gradient of one process with batch B;
only floating-point reduction order differs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pixio_ros.distributed import World, all_sum
from pixio_ros.training.errors import TrainingError
from pixio_ros.training.losses import Total
from pixio_ros.training.run_files import RESUME_INVARIANTS

RANK_INVARIANTS = {
    'sources': 'the training data (--bag/--data/--dataset PATH)',
    **RESUME_INVARIANTS,
    'frame_stamps': 'the training data (--bag/--data/--dataset PATH)',
    'cache_dir': '--cache-dir',
    'stop_after_epochs': '--stop-after-epochs',
}
"""What every rank of one run must be given alike, with the option or input that sets it.

The settings a resumed run must keep, the frames' capture stamps (another recording under
the same path), and the options that change how many collective steps a rank takes (a rank
that stops after fewer epochs, or exchanges cached features another way, would leave the
others waiting). The data's sources come first: a path that differs between nodes is the
likely cause, and it reads better than the data's fingerprint.
"""


def local_positions(batch_size: int, world: World) -> list[int]:
    """Positions within a global batch of ``batch_size`` that this rank builds (round-robin)."""
    return list(range(world.rank, batch_size, world.size))


def global_total(world: World) -> Total:
    """A `Total` for this run: the sum over the ranks, with the gradient of the local part.

    The value is the exact global sum (the same on every rank); its gradient flows into this
    rank's partial sum only, and DDP adds the ranks' gradients, which together make the
    gradient of the global loss.
    """

    def total(partial: Tensor) -> Tensor:
        if not world.distributed:
            return partial
        summed = all_sum(partial, world, 'summing the loss')
        return summed + (partial - partial.detach())

    return total


def _sum_gradients(state: Any, bucket: Any) -> Any:
    """DDP communication hook: sum the ranks' gradients (DDP's default would average them)."""
    import torch.distributed as dist

    future = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return future.then(lambda done: done.value()[0])


def has_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` normalises with batch statistics (the linear probe)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def synchronise_batch_norm(head: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``head`` with BatchNorm over the global batch (SyncBatchNorm) on several processes.

    Raises:
        TrainingError: Several CPU processes and a BatchNorm head: torch's SyncBatchNorm
            runs on GPUs only, and per-rank statistics would make the run depend on N.
    """
    if not world.distributed or not has_batch_norm(head):
        return head
    if device.type != 'cuda':
        raise TrainingError(
            'the linear probe normalises with batch statistics, which torch synchronises '
            '(SyncBatchNorm) on GPUs only; train --head linear on CPU with one process, or on '
            'GPUs.'
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(head)


def data_parallel(head: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``head`` wrapped for N processes (gradients summed over ranks); ``head`` on one."""
    if not world.distributed:
        return head
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == 'cuda' else None
    import torch.distributed as dist

    # static: the same parameters take part in every step (DPT leaves some unused)
    wrapped = DistributedDataParallel(head, device_ids=device_ids, static_graph=True)
    # DDP checks the hook's annotations at run time; this module's are strings (PEP 563)
    _sum_gradients.__annotations__.update(
        bucket=dist.GradBucket, state=object, **{'return': torch.futures.Future[torch.Tensor]}
    )
    wrapped.register_comm_hook(None, _sum_gradients)
    return wrapped


__all__ = [
    'RANK_INVARIANTS',
    'data_parallel',
    'global_total',
    'has_batch_norm',
    'local_positions',
    'synchronise_batch_norm',
]
