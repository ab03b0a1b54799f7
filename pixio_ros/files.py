"""Files the package writes and fingerprints: atomic replacement, refusal to overwrite, sha256.

Every output (artifacts, bags, evaluation results, training checkpoints) is written under a
temporary name beside its target and renamed into place only when complete, so an interrupted
run never leaves a half-written file and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pixio_ros.errors import PixioRosError

HASH_CHUNK_BYTES = 1 << 20

__all__ = [
    'OutputExistsError',
    'atomic_output',
    'check_writable',
    'file_sha256',
    'path_sha256',
    'write_atomically',
]


class OutputExistsError(PixioRosError):
    """The output path exists and `--force` was not given."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks (artifacts and checkpoints reach tens of GB)."""
    digest = hashlib.sha256()
    with Path(path).open('rb') as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b''):
            digest.update(chunk)
    return digest.hexdigest()


def path_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, or of a directory's files (a rosbag2 folder) taken together.

    A directory hashes (relative name, file sha256) of every file below it, sorted by name, so
    two folders share a digest only when they hold the same files with the same bytes.
    """
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob('*') if p.is_file()):
        digest.update(f'{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n'.encode())
    return digest.hexdigest()


def check_writable(path: Path, *, force: bool) -> None:
    """Raise before any work starts if `path` exists and may not be replaced."""
    if path.exists() and not force:
        raise OutputExistsError(f'{path} exists already, not overwriting; pass --force to replace.')


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)``, then rename the result onto ``path`` (untouched on error).

    The temporary file keeps ``path``'s suffix, for writers that choose a format by suffix.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        prefix=f'.{path.name}.', suffix=path.suffix, dir=path.parent
    )
    os.close(descriptor)
    temp = Path(temp_name)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write a file or directory; on success it replaces `path`.

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
