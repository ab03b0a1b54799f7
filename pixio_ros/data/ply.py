"""Write point clouds as binary PLY (MeshLab, CloudCompare, Open3D and Blender read it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray | None = None) -> int:
    """Write the finite points of `points` (and their colours) as binary little-endian PLY.

    Args:
        path: output file.
        points: (..., 3) float metres; rows with NaN/inf are dropped.
        colors: optional (..., 3) uint8 RGB matching `points`.

    Returns:
        The number of points written.
    """
    xyz = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    keep = np.isfinite(xyz).all(axis=1)
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if colors is not None:
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    vertices = np.empty(int(keep.sum()), dtype=fields)
    for axis, name in enumerate('xyz'):
        vertices[name] = xyz[keep, axis]
    if colors is not None:
        rgb = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[keep]
        for channel, name in enumerate(('red', 'green', 'blue')):
            vertices[name] = rgb[:, channel]
    properties = ''.join(
        f'property {"float" if kind == "<f4" else "uchar"} {name}\n' for name, kind in fields
    )
    header = (
        f'ply\nformat binary_little_endian 1.0\nelement vertex {len(vertices)}\n'
        f'{properties}end_header\n'
    )
    with Path(path).open('wb') as handle:
        handle.write(header.encode('ascii'))
        handle.write(vertices.tobytes())
    return len(vertices)
