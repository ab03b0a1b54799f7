"""The tests' own PointCloud2 reader, written from the message definition, not from our encoder.

Reading the clouds through `pixio_ros.wire` would let an encoder bug and its reader agree; this
one builds the numpy dtype from the message's own `fields`, offsets and `point_step`, as any
downstream consumer would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# sensor_msgs/PointField datatype constants -> numpy type codes
POINT_FIELD_DTYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 8: 'f8'}


def cloud_array(msg: Any) -> np.ndarray:
    """(height, width) structured array of a PointCloud2 (rclpy or rosbags message)."""
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in msg.fields:
        base = order + POINT_FIELD_DTYPES[field.datatype]
        names.append(field.name)
        formats.append((base, (field.count,)) if field.count > 1 else base)
        offsets.append(field.offset)
    dtype = np.dtype(
        {'names': names, 'formats': formats, 'offsets': offsets, 'itemsize': msg.point_step}
    )
    assert msg.row_step == msg.point_step * msg.width
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    return data.view(dtype).reshape(msg.height, msg.width)
