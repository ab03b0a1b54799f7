"""Write an output file or directory atomically, refusing to replace an existing one unless forced.

Results land under a temporary name next to the target and are renamed into place only when
complete, so an interrupted run never leaves a half-written output and never destroys the old one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pixio_ros.data.errors import DataError


class OutputExistsError(DataError):
    """The output path exists and `--force` was not given."""


def check_writable(path: Path, *, force: bool) -> None:
    """Raise before any work starts if `path` exists and may not be replaced."""
    if path.exists() and not force:
        raise OutputExistsError(f'{path} exists already, not overwriting; pass --force to replace.')


@contextlib.contextmanager
def atomic_output(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed.

    The temporary path has the same name as `path` (inside a hidden sibling directory), so tools
    that name inner files after their output (rosbag2 writers) produce the final names.
    """
    path = Path(path)
    check_writable(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{path.name}.partial-', dir=path.parent))
    try:
        yield staging / path.name
        if path.exists():
            path.rename(staging / f'{path.name}.old')  # removed with the staging directory
        (staging / path.name).rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
