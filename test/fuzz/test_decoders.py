"""Property-based fuzzing of the pure decoders a peer's bytes reach.

Each decoder either returns a well-formed result or raises the package's own error class
(`PixioRosError` subclasses), never anything else. Example counts are bounded so the whole module
runs in seconds (CI runs it in `make test`).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_typestore

from pixio_ros.errors import PixioRosError
from pixio_ros.features import FeatureDecodeError, decode_embedding, decode_features
from pixio_ros.runtime.image_codec import (
    DEPTH_ENCODINGS,
    RGB_ENCODINGS,
    ImageCodecError,
    decode_compressed_rgb,
    decode_depth,
    decode_rgb,
)

EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIDE = st.integers(min_value=-2, max_value=40)
ENCODINGS = st.sampled_from([*RGB_ENCODINGS, *DEPTH_ENCODINGS, 'rgb16', '', 'RGB8', '8UC3'])
TYPES = get_typestore(Stores.ROS2_JAZZY)
POINT_FIELD = TYPES.types['sensor_msgs/msg/PointField']
POINT_CLOUD = TYPES.types['sensor_msgs/msg/PointCloud2']
HEADER = TYPES.types['std_msgs/msg/Header']
TIME = TYPES.types['builtin_interfaces/msg/Time']


@FUZZ
@given(
    encoding=ENCODINGS,
    height=SIDE,
    width=SIDE,
    step=st.integers(-4, 200),
    data=st.binary(max_size=4000),
    big_endian=st.booleans(),
)
def test_raw_images_decode_or_raise_our_error(encoding, height, width, step, data, big_endian):
    try:
        rgb = decode_rgb(encoding, height, width, step, data, big_endian)
    except ImageCodecError:
        return
    assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)


@FUZZ
@given(
    encoding=ENCODINGS,
    height=SIDE,
    width=SIDE,
    step=st.integers(-4, 200),
    data=st.binary(max_size=4000),
    big_endian=st.booleans(),
)
def test_depth_images_decode_or_raise_our_error(encoding, height, width, step, data, big_endian):
    try:
        depth = decode_depth(encoding, height, width, step, data, big_endian)
    except ImageCodecError:
        return
    assert depth.dtype == np.float32 and depth.shape == (height, width)
    assert not (depth <= 0).any()  # invalid pixels are NaN, never zero or negative


def _jpeg_or_png_prefix() -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [b'', b'\xff\xd8', b'\xff\xd8\xff\xc0\x00\x11\x08', b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR']
    )


@FUZZ
@given(
    prefix=_jpeg_or_png_prefix(),
    body=st.binary(max_size=600),
    fmt=st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '', 'compressedDepth']),
)
def test_compressed_images_decode_or_raise_our_error(prefix, body, fmt):
    try:
        rgb = decode_compressed_rgb(fmt, prefix + body, max_pixels=1_000_000)
    except ImageCodecError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


FIELD_NAMES = st.sampled_from(['x', 'y', 'z', 'feature', 'feature_f16', 'embedding', 'rgb', ''])


@st.composite
def clouds(draw: st.DrawFn) -> object:
    fields = [
        POINT_FIELD(
            name=draw(FIELD_NAMES),
            offset=draw(st.integers(-4, 64)),
            datatype=draw(st.integers(0, 9)),
            count=draw(st.integers(0, 8)),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    height, width = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    point_step = draw(st.integers(0, 64))
    row_step = draw(st.sampled_from([point_step * width, point_step * width + 1, 0]))
    data = np.frombuffer(draw(st.binary(max_size=height * max(row_step, 0) + 8)), np.uint8)
    header = HEADER(stamp=TIME(sec=0, nanosec=0), frame_id='cam')
    return POINT_CLOUD(
        header=header,
        height=height,
        width=width,
        fields=fields,
        is_bigendian=draw(st.booleans()),
        point_step=point_step,
        row_step=row_step,
        data=data,
        is_dense=False,
    )


@FUZZ
@given(cloud=clouds())
def test_feature_decoder_accepts_any_layout_or_raises_our_error(cloud):
    try:
        grid = decode_features(cloud)
    except FeatureDecodeError:
        pass
    else:
        h, w, channels = grid.features.shape
        assert (h, w) == (cloud.height, cloud.width) and channels > 0
        assert grid.xyz.shape == (h, w, 3) and grid.xyz.dtype == np.float32
        assert grid.features.dtype == np.float32
    try:
        embedding = decode_embedding(cloud)
    except PixioRosError:
        return
    assert embedding.ndim == 1 and embedding.size > 0 and embedding.dtype == np.float32
