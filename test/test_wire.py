"""Wire layouts, decoded by a numpy dtype written here from the PointField table alone."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.wire import (
    encode_bgr8,
    encode_depth,
    encode_embedding,
    encode_features,
    encode_points,
    field_dtype,
    pack_rgb,
)

# sensor_msgs/PointField: INT8=1 UINT8=2 INT16=3 UINT16=4 INT32=5 UINT32=6 FLOAT32=7 FLOAT64=8
REFERENCE_TYPES = {1: '<i1', 2: '<u1', 3: '<i2', 4: '<u2', 5: '<i4', 6: '<u4', 7: '<f4', 8: '<f8'}


def decode(cloud) -> np.ndarray:
    dtype = np.dtype(
        {
            'names': [f.name for f in cloud.fields],
            'formats': [
                (REFERENCE_TYPES[f.datatype], (f.count,))
                if f.count > 1
                else REFERENCE_TYPES[f.datatype]
                for f in cloud.fields
            ],
            'offsets': [f.offset for f in cloud.fields],
            'itemsize': cloud.point_step,
        }
    )
    assert cloud.data.size == cloud.height * cloud.row_step
    return cloud.data.view(dtype).reshape(cloud.height, cloud.width)


def test_points_layout_and_values():
    rng = np.random.default_rng(0)
    xyz = rng.standard_normal((3, 4, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (3, 4, 3), np.uint8)
    confidence = rng.uniform(size=(3, 4)).astype(np.float32)
    cloud = encode_points(xyz, rgb=rgb, confidence=confidence)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1),
        ('y', 4, 7, 1),
        ('z', 8, 7, 1),
        ('rgb', 12, 7, 1),
        ('confidence', 16, 7, 1),
    ]
    assert (cloud.point_step, cloud.row_step, cloud.is_bigendian) == (20, 80, False)
    array = decode(cloud)
    np.testing.assert_array_equal(np.stack([array['x'], array['y'], array['z']], -1), xyz)
    bits = array['rgb'].view('<u4')
    np.testing.assert_array_equal(
        np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1), rgb
    )
    np.testing.assert_array_equal(array['confidence'], confidence)


@pytest.mark.parametrize(('nan_at', 'dense'), [(None, True), ((1, 2), False)])
def test_is_dense_means_every_point_is_finite(nan_at, dense):
    xyz = np.ones((3, 4, 3), np.float32)
    if nan_at is not None:
        xyz[nan_at] = np.nan
    assert encode_points(xyz).is_dense is dense
    assert encode_features(xyz, np.zeros((3, 4, 2), np.float32)).is_dense is dense


def test_half_features_are_uint16_bits():
    features = np.random.default_rng(1).standard_normal((2, 3, 5)).astype(np.float32)
    half = encode_features(np.zeros((2, 3, 3), np.float32), features.astype(np.float16))
    assert [(f.name, f.datatype, f.count) for f in half.fields][-1] == ('feature_f16', 4, 5)
    np.testing.assert_array_equal(
        decode(half)['feature_f16'], features.astype(np.float16).view(np.uint16)
    )
    full = encode_features(np.zeros((2, 3, 3), np.float32), features)
    np.testing.assert_array_equal(decode(full)['feature'], features)


def test_embedding_depth_and_colour_images():
    embedding = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(decode(encode_embedding(embedding))['embedding'][0, 0], embedding)
    depth = np.arange(12, dtype='>f4').reshape(3, 4)  # big-endian input, little-endian wire
    image = encode_depth(depth)
    assert (image.encoding, image.step, image.is_bigendian) == ('32FC1', 16, False)
    np.testing.assert_array_equal(image.data.view('<f4').reshape(3, 4), depth)
    bgr = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    colour = encode_bgr8(bgr)
    assert (colour.encoding, colour.step) == ('bgr8', 12)
    np.testing.assert_array_equal(colour.data.reshape(3, 4, 3), bgr)


def test_pack_rgb_is_0x00rrggbb():
    packed = pack_rgb(np.array([[0x12, 0x34, 0x56]], np.uint8))
    assert packed.view('<u4')[0] == 0x00123456


@pytest.mark.parametrize('datatype', [0, 9, -1, 7.0, True, None])
def test_unknown_point_field_datatypes_are_refused(datatype):
    with pytest.raises(ValueError, match='PointField datatype'):
        field_dtype(datatype)
    assert field_dtype(8, big_endian=True) == np.dtype('>f8')
