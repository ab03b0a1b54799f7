"""Image payload decoding against OpenCV references and hand-built mosaics / packings."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from pixio_ros.runtime.image_codec import (
    ImageCodecError,
    compressed_image_size,
    decode_compressed_rgb,
    decode_depth,
    decode_rgb,
)

HEIGHT, WIDTH = 48, 64


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ('encoding', 'to_payload', 'channels'),
    [
        ('rgb8', lambda image: image, 3),
        ('bgr8', lambda image: cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 3),
        ('rgba8', lambda image: cv2.cvtColor(image, cv2.COLOR_RGB2RGBA), 4),
        ('bgra8', lambda image: cv2.cvtColor(image, cv2.COLOR_RGB2BGRA), 4),
    ],
)
@pytest.mark.parametrize(
    'wrap',
    [bytes, lambda b: array.array('B', b), memoryview, lambda b: np.frombuffer(b, np.uint8)],
)
def test_colour_encodings_round_trip(rgb, encoding, to_payload, channels, wrap):
    payload = to_payload(rgb)
    decoded = decode_rgb(encoding, HEIGHT, WIDTH, WIDTH * channels, wrap(payload.tobytes()))
    assert decoded.shape == (HEIGHT, WIDTH, 3)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, rgb)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_encodings_are_views(rgb, encoding):
    channels = 4 if encoding.endswith('a8') else 3
    data = np.zeros(HEIGHT * WIDTH * channels, dtype=np.uint8)
    decoded = decode_rgb(encoding, HEIGHT, WIDTH, WIDTH * channels, data)
    assert np.shares_memory(decoded, data)


def test_row_padding_is_skipped(rgb):
    padding = 8
    padded = np.zeros((HEIGHT, WIDTH * 3 + padding), dtype=np.uint8)
    padded[:, : WIDTH * 3] = rgb.reshape(HEIGHT, -1)
    decoded = decode_rgb('rgb8', HEIGHT, WIDTH, WIDTH * 3 + padding, padded.tobytes())
    np.testing.assert_array_equal(decoded, rgb)


def test_mono8_matches_cv2(rgb):
    gray = rgb[..., 0].copy()
    decoded = decode_rgb('mono8', HEIGHT, WIDTH, WIDTH, gray.tobytes())
    np.testing.assert_array_equal(decoded, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))


@pytest.mark.parametrize('big_endian', [False, True])
def test_mono16_scales_to_eight_bits(big_endian):
    gray16 = np.random.default_rng(1).integers(0, 65536, (HEIGHT, WIDTH), dtype=np.uint16)
    payload = gray16.astype('>u2' if big_endian else '<u2').tobytes()
    decoded = decode_rgb('mono16', HEIGHT, WIDTH, WIDTH * 2, payload, is_bigendian=big_endian)
    expected = np.rint(gray16 / 257.0).astype(np.uint8)  # 255 / 65535 = 1 / 257
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], expected)


@pytest.mark.parametrize(
    ('encoding', 'code', 'luma_index'),
    [('yuv422', cv2.COLOR_YUV2RGB_UYVY, 1), ('yuv422_yuy2', cv2.COLOR_YUV2RGB_YUY2, 0)],
)
def test_yuv422_matches_cv2_and_byte_order(encoding, code, luma_index):
    packed = np.random.default_rng(2).integers(0, 256, (HEIGHT, WIDTH, 2), dtype=np.uint8)
    decoded = decode_rgb(encoding, HEIGHT, WIDTH, WIDTH * 2, packed.tobytes())
    np.testing.assert_array_equal(decoded, cv2.cvtColor(packed, code))
    # Neutral chroma and a luma ramp must decode to grey that brightens along the row.
    neutral = np.full((HEIGHT, WIDTH, 2), 128, dtype=np.uint8)
    neutral[..., luma_index] = np.linspace(40, 220, WIDTH).astype(np.uint8)
    grey = decode_rgb(encoding, HEIGHT, WIDTH, WIDTH * 2, neutral.tobytes()).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1
    assert np.all(np.diff(grey[0, :, 1]) >= 0)
    assert grey[0, -1, 1] - grey[0, 0, 1] > 150


# (row, column) of R, G on the red row, G on the blue row, B in the 2x2 cell, per ROS name.
BAYER_LAYOUTS = {
    'bayer_rggb8': ((0, 0), (0, 1), (1, 0), (1, 1)),
    'bayer_bggr8': ((1, 1), (1, 0), (0, 1), (0, 0)),
    'bayer_gbrg8': ((1, 0), (0, 0), (1, 1), (0, 1)),
    'bayer_grbg8': ((0, 1), (0, 0), (1, 1), (1, 0)),
}


@pytest.mark.parametrize('encoding', sorted(BAYER_LAYOUTS))
def test_bayer_patterns_recover_colour(encoding):
    colour = (200, 110, 30)
    red, green_a, green_b, blue = BAYER_LAYOUTS[encoding]
    mosaic = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for (row, column), value in zip(
        (red, green_a, green_b, blue), (colour[0], colour[1], colour[1], colour[2]), strict=True
    ):
        mosaic[row::2, column::2] = value
    decoded = decode_rgb(encoding, HEIGHT, WIDTH, WIDTH, mosaic.tobytes())
    interior = decoded[4:-4, 4:-4].reshape(-1, 3).astype(int)
    assert np.abs(interior - np.array(colour)).max() <= 2


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'encoding': 'rgb16'}, "'rgb16'.*not supported"),
        ({'encoding': '32FC1', 'step': WIDTH * 4}, "'32FC1'.*not supported"),
        ({'height': 0}, 'at least one pixel'),
        ({'width': 0}, 'at least one pixel'),
        ({'step': WIDTH * 3 - 1}, 'step'),
        ({'data': bytes(10)}, 'truncated'),
        ({'data': np.zeros(HEIGHT * WIDTH * 3, dtype=np.float32)}, 'dtype float32'),
        ({'data': 12345}, 'not a byte buffer'),
        ({'encoding': 'yuv422', 'width': WIDTH - 1, 'step': (WIDTH - 1) * 2}, 'odd width'),
    ],
)
def test_bad_inputs_are_refused(kwargs, match):
    args = {
        'encoding': 'rgb8',
        'height': HEIGHT,
        'width': WIDTH,
        'step': WIDTH * 3,
        'data': bytes(HEIGHT * WIDTH * 4),
        **kwargs,
    }
    with pytest.raises(ImageCodecError, match=match):
        decode_rgb(**args)


@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_16uc1_millimetres(big_endian):
    millimetres = np.array([[0, 1, 1500], [65535, 250, 0]], dtype=np.uint16)
    payload = millimetres.astype('>u2' if big_endian else '<u2').tobytes()
    depth = decode_depth('16UC1', 2, 3, 6, payload, is_bigendian=big_endian)
    expected = np.array([[np.nan, 0.001, 1.5], [65.535, 0.25, np.nan]], dtype=np.float32)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, expected, rtol=1e-6)


def test_depth_32fc1_invalid_values_become_nan():
    metres = np.array([[1.25, 0.0, -2.0], [np.inf, np.nan, 7.5]], dtype=np.float32)
    depth = decode_depth('32FC1', 2, 3, 12, metres.tobytes())
    expected = np.array([[1.25, np.nan, np.nan], [np.nan, np.nan, 7.5]], dtype=np.float32)
    np.testing.assert_array_equal(depth, expected)


def test_depth_refuses_colour_encodings():
    with pytest.raises(ImageCodecError, match="'rgb8'.*16UC1 or 32FC1"):
        decode_depth('rgb8', 2, 2, 6, bytes(12))


def test_compressed_png_is_lossless(rgb):
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(decode_compressed_rgb('png', png.tobytes()), rgb)


def test_compressed_jpeg_matches_cv2(rgb):
    ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    reference = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    decoded = decode_compressed_rgb('rgb8; jpeg compressed bgr8', array.array('B', jpeg.tobytes()))
    np.testing.assert_array_equal(decoded, reference)


@pytest.mark.parametrize(
    ('format_', 'data', 'match'),
    [
        ('jpeg', b'\xff\xd8\xff\xe0 definitely not a jpeg', 'corrupt'),
        ('jpeg', b'', 'no data'),
        ('16UC1; compressedDepth png', b'\x00' * 16, 'depth stream'),
    ],
)
def test_compressed_bad_data_raises(format_, data, match):
    with pytest.raises(ImageCodecError, match=match):
        decode_compressed_rgb(format_, data)


def _forged_jpeg(height: int, width: int) -> bytes:
    """A real 8x8 JPEG whose start-of-frame header is rewritten to claim height x width."""
    ok, encoded = cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    sof = data.index(b'\xff\xc0')  # baseline start of frame: marker, length, precision, H, W
    data[sof + 5 : sof + 7] = height.to_bytes(2, 'big')
    data[sof + 7 : sof + 9] = width.to_bytes(2, 'big')
    return bytes(data)


def test_compressed_size_is_read_from_the_header_without_decoding():
    ok, png = cv2.imencode('.png', np.zeros((5, 7, 3), np.uint8))
    assert ok
    assert compressed_image_size(png.tobytes()) == (5, 7)
    ok, progressive = cv2.imencode(
        '.jpg', np.zeros((9, 11, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    )
    assert ok
    assert compressed_image_size(progressive.tobytes()) == (9, 11)
    assert compressed_image_size(_forged_jpeg(60000, 60000)) == (60000, 60000)
    assert compressed_image_size(b'GIF89a....') is None
    assert compressed_image_size(b'\xff\xd8\xff') is None


def test_decompression_bomb_header_is_refused_before_decoding():
    """Issue 12: a JPEG claiming 60000x60000 reached the decoder and raised a cv2 traceback."""
    with pytest.raises(ImageCodecError, match='60000x60000.*over the 50 MP limit'):
        decode_compressed_rgb('jpeg', _forged_jpeg(60000, 60000))
    with pytest.raises(ImageCodecError, match='8x8 .* over the 6.3e-05 MP limit'):
        decode_compressed_rgb('jpeg', _forged_jpeg(8, 8), max_pixels=63)
    assert decode_compressed_rgb('jpeg', _forged_jpeg(8, 8), max_pixels=64).shape == (8, 8, 3)
