"""Eval's optional output bag: the node's outputs under /pixio, in the node's exact bytes.

The messages come from the same products (`pixio_ros.runtime.products`) and wire layouts as the
node's, through the rosbags adapter (`pixio_ros.data.messages`), so Foxglove or RViz show the
prediction next to the recording exactly as the live node would have published it. Stamps and
frame ids are the input image's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pixio_ros.data.messages import frame_messages, serialize, typestore
from pixio_ros.runtime.products import FrameProducts

NAMESPACE: Final = '/pixio'


class PixioBagWriter:
    """An mcap rosbag2 of predictions; use as a context manager around the evaluation loop."""

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._writer = Writer(
            path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP
        )
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> PixioBagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

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
