"""Property-based fuzzing of the pure decoders a peer's bytes reach.

Each decoder either returns a well-formed result or raises the package's own error class
(`PixioRosError` subclasses), never anything else. Example counts are bounded so the whole module
runs in seconds (CI runs it in `make test`).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_typestore

from pixio_ros.errors import PixioRosError
from pixio_ros.features import FeatureDecodeError, decode_embedding, decode_features
from pixio_ros.runtime.camera import CameraError, PinholeCamera
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
# Any raw sensor_msgs/Image field values, for the rgb and the depth decoder alike.
RAW_IMAGE = given(
    encoding=ENCODINGS,
    height=SIDE,
    width=SIDE,
    step=st.integers(-4, 200),
    data=st.binary(max_size=4000),
    big_endian=st.booleans(),
)


@FUZZ
@RAW_IMAGE
def test_raw_images_decode_or_raise_our_error(encoding, height, width, step, data, big_endian):
    try:
        rgb = decode_rgb(encoding, height, width, step, data, big_endian)
    except ImageCodecError:
        return
    assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)


@FUZZ
@RAW_IMAGE
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


CAMERA_INFO = TYPES.types['sensor_msgs/msg/CameraInfo']
REGION = TYPES.types['sensor_msgs/msg/RegionOfInterest']
UINT32 = st.integers(0, 2**32 - 1)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
# Sides and offsets a calibration has, and ones only a hostile peer sends.
SIDES = st.one_of(st.integers(0, 64), st.sampled_from([1, 2, 639, 640, 2**31, 2**32 - 1]), UINT32)
VALUES = st.one_of(
    ANY_FLOAT,
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, -1e300, 5e-324]),
    st.floats(-1e4, 1e4),
)
MODELS = st.sampled_from(['plumb_bob', 'rational_polynomial', 'equidistant', '', 'fisheye', 'x'])


@st.composite
def camera_info_fields(draw: st.DrawFn) -> dict[str, object]:
    """A plausible calibration with some of its numbers replaced by anything a peer can send."""
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    fx, fy = draw(st.floats(0.5, 500.0)), draw(st.floats(0.5, 500.0))
    cx, cy = draw(st.floats(-0.5, width - 0.5)), draw(st.floats(-0.5, height - 0.5))
    model = draw(MODELS)
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    d = draw(st.lists(st.floats(-1.0, 1.0), min_size=0, max_size=9))
    fields: dict[str, object] = {
        'width': width,
        'height': height,
        'distortion_model': model,
        'd': d,
        'k': k,
        'r': r,
        'p': p,
        'binning_x': draw(st.sampled_from([0, 1, 2])),
        'binning_y': draw(st.sampled_from([0, 1, 2])),
        'roi': (0, 0, 0, 0),
    }
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(['width', 'height', 'k', 'r', 'p', 'd', 'binning', 'roi']))
        if name in ('width', 'height'):
            fields[name] = draw(SIDES)
        elif name in ('k', 'r', 'p'):
            values = list(fields[name])  # type: ignore[call-overload]
            values[draw(st.integers(0, len(values) - 1))] = draw(VALUES)
            fields[name] = values
        elif name == 'd':
            fields['d'] = draw(st.lists(VALUES, max_size=9))
        elif name == 'binning':
            fields['binning_x'], fields['binning_y'] = draw(SIDES), draw(SIDES)
        else:  # mostly a window inside the image, sometimes anything
            inside = (st.integers(0, width), st.integers(0, height))
            fields['roi'] = (
                draw(st.one_of(inside[0], SIDES)),
                draw(st.one_of(inside[1], SIDES)),
                draw(st.one_of(inside[0], SIDES)),
                draw(st.one_of(inside[1], SIDES)),
            )
    return fields


def _rclpy_camera_info(fields: dict[str, object]) -> object:
    from sensor_msgs.msg import CameraInfo, RegionOfInterest

    x, y, width, height = fields['roi']  # type: ignore[misc]
    info = CameraInfo(
        width=fields['width'],
        height=fields['height'],
        distortion_model=fields['distortion_model'],
        d=fields['d'],
        binning_x=fields['binning_x'],
        binning_y=fields['binning_y'],
        roi=RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height),
    )
    info.k, info.r, info.p = fields['k'], fields['r'], fields['p']
    return info


def _rosbags_camera_info(fields: dict[str, object]) -> object:
    x, y, width, height = fields['roi']  # type: ignore[misc]
    return CAMERA_INFO(
        header=HEADER(stamp=TIME(sec=0, nanosec=0), frame_id='cam'),
        height=fields['height'],
        width=fields['width'],
        distortion_model=fields['distortion_model'],
        d=np.array(fields['d'], dtype=np.float64),
        k=np.array(fields['k'], dtype=np.float64),
        r=np.array(fields['r'], dtype=np.float64),
        p=np.array(fields['p'], dtype=np.float64),
        binning_x=fields['binning_x'],
        binning_y=fields['binning_y'],
        roi=REGION(x_offset=x, y_offset=y, height=height, width=width, do_rectify=False),
    )


def _check_camera(camera: PinholeCamera) -> None:
    numbers = (
        camera.fx,
        camera.fy,
        camera.cx,
        camera.cy,
        camera.skew,
        *camera.d,
        *camera.rectification,
        *camera.projection,
    )
    assert all(math.isfinite(value) for value in numbers), camera
    assert camera.fx > 0 and camera.fy > 0, camera
    assert camera.width > 0 and camera.height > 0, camera


@FUZZ
@given(fields=camera_info_fields())
def test_camera_info_validation_gives_a_usable_camera_or_our_error(fields):
    results = []
    for make in (_rclpy_camera_info, _rosbags_camera_info):
        try:
            camera = PinholeCamera.from_camera_info(make(fields))
        except CameraError as err:
            assert '\n' not in str(err)
            results.append(None)
            continue
        _check_camera(camera)
        results.append(camera)
    assert results[0] == results[1]  # both message flavours give the same verdict and camera
    camera = results[0]
    if camera is not None:  # what the node derives for a frame of that size must hold too
        rays = camera.scaled_to(8, 6).rays() if camera.width * 6 == camera.height * 8 else None
        if rays is not None:
            assert rays.shape == (6, 8, 2)
