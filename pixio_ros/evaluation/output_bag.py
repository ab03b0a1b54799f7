"""Eval's optional output bag: the node's outputs under /pixio, in the node's exact bytes.

The messages come from the same products (`pixio_ros.runtime.products`) and wire layouts as the
node's, through the rosbags adapter (`pixio_ros.data.messages`), so Foxglove or RViz show the
prediction next to the recording exactly as the live node would have published it. Stamps and
frame ids are the input image's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from pixio_ros.data.messages import frame_messages, serialize, typestore
from pixio_ros.runtime.products import FrameProducts

NAMESPACE: Final = '/pixio'


class PixioBagWriter:
    """An mcap rosbag2 of predictions; use as a context manager around the evaluation loop.

    Args:
        path: the rosbag2 directory to write, or with `single_file` the one .mcap file.
        single_file: write `path` as one self-contained .mcap file. rosbags writes rosbag2
            directories, so the bag is written into a scratch directory beside `path` and its
            only .mcap (schemas, channels and messages) is moved to `path` on a clean exit.
    """

    def __init__(self, path: Path, *, single_file: bool = False) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._target = path if single_file else None
        self._scratch: Path | None = None
        directory = path
        if single_file:
            self._scratch = Path(tempfile.mkdtemp(prefix=f'.{path.stem}.', dir=path.parent))
            directory = self._scratch / path.stem
        self._directory = directory
        self._writer = Writer(
            directory, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP
        )
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> PixioBagWriter:
        self._writer.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            self._writer.close()
            if self._target is not None and exc_type is None:
                (self._directory / f'{self._directory.name}.mcap').rename(self._target)
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)

    def _write(self, topic: str, msg: Any, log_time: int) -> None:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msg.__msgtype__, typestore=typestore()
            )
        self._writer.write(self._connections[topic], log_time, serialize(msg))

    def write_frame(self, products: FrameProducts, stamp: int, frame_id: str) -> None:
        """Write one frame's messages, stamped (and logged) at the input image's stamp (ns)."""
        for name, msg in frame_messages(products, stamp, frame_id).items():
            self._write(f'{NAMESPACE}/{name}', msg, stamp)
