"""Loading a node's artifact: the one-line errors and the warnings a robot engineer must see.

Shared by the plain node (which loads at start-up) and the lifecycle node (which loads in
configure), so both refuse a bad artifact with the same line and warn about the same things.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import warnings
from typing import Any

import torch

from pixio_ros.model.artifact_format import ArtifactError
from pixio_ros.ros.errors import NodeError
from pixio_ros.ros.settings import NodeSettings
from pixio_ros.runtime.engine import EXPORT_HINT, Engine, RandomInitWarning

__all__ = ['load_engine', 'release_memory']


def load_engine(settings: NodeSettings, logger: Any) -> Engine:
    """The artifact of `settings.model_path` on its device, warmed up.

    Logs (on `logger`) a random-init part and a missing depth head: the node runs, but a user
    expecting metric depth must know.

    Raises:
        NodeError: model_path is empty.
        ArtifactError: a missing, unreadable or invalid artifact (one line naming the fix).
        EngineError: an unavailable device or precision, a failed warm-up.
    """
    if not settings.model_path:
        raise NodeError(
            'parameter model_path is empty; point it at an artifact (launch: '
            '`ros2 launch pixio_ros pixio.launch.py model:=/path/to/model.ts`; without '
            f'launch: --ros-args -p model_path:=/path/to/model.ts); {EXPORT_HINT}'
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', RandomInitWarning)
        try:
            engine = Engine(
                settings.model_path,
                device=settings.device,
                precision=settings.precision,
                warmup_runs=settings.warmup_runs,
                backend=settings.backend,
            )
        except ArtifactError as err:  # name where the path came from
            raise ArtifactError(f'model_path (launch argument model:=): {err}') from err
    for warning in caught:
        if issubclass(warning.category, RandomInitWarning):
            logger.warning(str(warning.message))
    backend = engine.backend_info
    logger.info(f'backend {backend.summary()}; start-up parity {backend.parity_summary()}')
    if 'depth' not in engine.outputs:
        logger.warning(
            f'{settings.model_path} has no depth head (head_kind '
            f'{engine.metadata.head_kind!r}): depth, depth/colored and points are '
            'not published and feature xyz is NaN; export with --head-kind depth or points '
            'for 3D outputs'
        )
    return engine


def release_memory() -> None:
    """Return freed model memory to the system once the last reference to an Engine is gone.

    Garbage-collects (TorchScript modules sit in reference cycles), empties CUDA's cache, and
    asks glibc to give its free heap back: a small model's weights live in heap blocks that
    would otherwise stay in the process's resident memory.
    """
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    libc_name = ctypes.util.find_library('c')
    if libc_name is None:
        return
    try:
        trim = ctypes.CDLL(libc_name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)
