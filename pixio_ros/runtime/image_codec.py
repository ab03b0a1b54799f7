"""Raw and compressed ROS image payloads -> numpy RGB / depth arrays (numpy + cv2, no ROS).

The functions take the message fields rather than a message so that rclpy messages and rosbags'
message dataclasses (same field names as sensor_msgs) go through the same code. Where the
encoding allows, the result is a view into the message buffer (no copy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from pixio_ros.errors import PixioRosError

__all__ = [
    'DEPTH_ENCODINGS',
    'RGB_ENCODINGS',
    'DEFAULT_MAX_PIXELS',
    'ImageCodecError',
    'compressed_image_size',
    'decode_compressed_rgb',
    'decode_depth',
    'decode_rgb',
]

# 16UC1 depth images store millimetres (REP 118); 0 marks "no measurement".
MILLIMETRES_PER_METRE = 1000.0
# ROS cv_bridge maps 16-bit to 8-bit intensities with this scale (255 / 65535).
SIXTEEN_TO_EIGHT_BIT = 255.0 / 65535.0

# OpenCV names Bayer patterns after the second row's first two pixels, ROS after the first row's,
# hence the apparent swap (the same table as ROS cv_bridge).
_BAYER_TO_RGB: dict[str, int] = {
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB,
    'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB,
    'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
}
_YUV422_TO_RGB: dict[str, int] = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
}


class ImageCodecError(PixioRosError):
    """An image payload that cannot be decoded; the message names the encoding, size and fix."""


def _bytes_view(data: Any) -> np.ndarray:
    """A flat uint8 view of bytes / bytearray / array.array / memoryview / numpy buffers."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageCodecError(
                f'image data has dtype {data.dtype}; expected a flat uint8 buffer as in '
                'sensor_msgs/Image.data (pass msg.data unchanged)'
            )
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise ImageCodecError(
            f'image data of type {type(data).__name__} is not a byte buffer; pass msg.data '
            '(bytes, array.array, memoryview or a uint8 numpy array)'
        ) from err


def _pixel_rows(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    bytes_per_pixel: int,
) -> np.ndarray:
    """A (height, width * bytes_per_pixel) uint8 view that skips any row padding in `step`."""
    if height <= 0 or width <= 0:
        raise ImageCodecError(
            f'{encoding} image is {width}x{height}; a frame needs at least one pixel '
            '(check the camera driver)'
        )
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageCodecError(
            f'{encoding} image {width}x{height} has step {step}, needs at least {row_bytes} '
            f'({bytes_per_pixel} bytes per pixel); the encoding or step field is wrong'
        )
    buffer = _bytes_view(data)
    needed = step * (height - 1) + row_bytes
    if buffer.size < needed:
        raise ImageCodecError(
            f'{encoding} image {width}x{height} (step {step}) needs {needed} bytes of data, '
            f'got {buffer.size}; the message is truncated or its size fields are wrong'
        )
    rows: np.ndarray
    if buffer.size >= step * height:
        rows = buffer[: step * height].reshape(height, step)
    else:  # the last row may omit its padding
        rows = np.lib.stride_tricks.as_strided(
            buffer, shape=(height, row_bytes), strides=(step, 1), writeable=False
        )
    return rows[:, :row_bytes]


def _pixels(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    dtype: np.dtype,
    channels: int,
) -> np.ndarray:
    """(height, width, channels) view of the payload with `dtype` elements."""
    rows = _pixel_rows(encoding, height, width, step, data, dtype.itemsize * channels)
    return rows.view(dtype).reshape(height, width, channels)


def _sixteen_bit(is_bigendian: bool) -> np.dtype:
    return np.dtype('>u2' if is_bigendian else '<u2')


def _decode_rgb8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    return _pixels(enc, h, w, s, d, np.dtype(np.uint8), 3)


def _decode_bgr8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    return _pixels(enc, h, w, s, d, np.dtype(np.uint8), 3)[..., ::-1]


def _decode_rgba8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    return _pixels(enc, h, w, s, d, np.dtype(np.uint8), 4)[..., :3]


def _decode_bgra8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    return _pixels(enc, h, w, s, d, np.dtype(np.uint8), 4)[..., 2::-1]


def _decode_mono8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    gray = _pixels(enc, h, w, s, d, np.dtype(np.uint8), 1)[..., 0]
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2RGB)


def _decode_mono16(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    gray16 = _pixels(enc, h, w, s, d, _sixteen_bit(be), 1)[..., 0]
    gray8 = cv2.convertScaleAbs(gray16.astype(np.uint16), alpha=SIXTEEN_TO_EIGHT_BIT)
    return cv2.cvtColor(gray8, cv2.COLOR_GRAY2RGB)


def _decode_yuv422(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    if w % 2:
        raise ImageCodecError(
            f'{enc} image {w}x{h} has an odd width; 4:2:2 packs two pixels per 4 bytes, so the '
            'width must be even (check the camera driver)'
        )
    packed = np.ascontiguousarray(_pixels(enc, h, w, s, d, np.dtype(np.uint8), 2))
    return cv2.cvtColor(packed, _YUV422_TO_RGB[enc])


def _decode_bayer8(enc: str, h: int, w: int, s: int, d: Any, be: bool) -> np.ndarray:
    if h < 2 or w < 2:
        raise ImageCodecError(
            f'{enc} image {w}x{h} is smaller than one 2x2 Bayer cell; check the camera driver'
        )
    mosaic = np.ascontiguousarray(_pixels(enc, h, w, s, d, np.dtype(np.uint8), 1)[..., 0])
    return cv2.cvtColor(mosaic, _BAYER_TO_RGB[enc])


_RGB_DECODERS: dict[str, Callable[[str, int, int, int, Any, bool], np.ndarray]] = {
    'rgb8': _decode_rgb8,
    'bgr8': _decode_bgr8,
    'rgba8': _decode_rgba8,
    'bgra8': _decode_bgra8,
    'mono8': _decode_mono8,
    'mono16': _decode_mono16,
    'yuv422': _decode_yuv422,
    'yuv422_yuy2': _decode_yuv422,
    **dict.fromkeys(_BAYER_TO_RGB, _decode_bayer8),
}
RGB_ENCODINGS: tuple[str, ...] = tuple(_RGB_DECODERS)
DEPTH_ENCODINGS: tuple[str, ...] = ('16UC1', '32FC1')


def decode_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    is_bigendian: bool = False,
) -> np.ndarray:
    """Decode a sensor_msgs/Image payload to RGB.

    Args:
        encoding: the message's encoding; one of `RGB_ENCODINGS`.
        height: rows.
        width: columns.
        step: bytes per row, including padding.
        data: the payload (bytes, array.array, memoryview or a flat uint8 numpy array).
        is_bigendian: byte order of multi-byte (mono16) pixels.

    Returns:
        (height, width, 3) uint8 RGB. rgb8 / bgr8 / rgba8 / bgra8 return views into `data`
        (possibly with negative or padded strides); other encodings return new arrays.

    Raises:
        ImageCodecError: unknown encoding, zero size, or data/step too short for the size.
    """
    decoder = _RGB_DECODERS.get(encoding)
    if decoder is None:
        raise ImageCodecError(
            f'image encoding {encoding!r} ({width}x{height}) is not supported; publish one of '
            f'{", ".join(RGB_ENCODINGS)} (e.g. via image_proc) or use the compressed input'
        )
    return decoder(encoding, int(height), int(width), int(step), data, bool(is_bigendian))


def decode_depth(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    is_bigendian: bool = False,
) -> np.ndarray:
    """Decode a depth image (REP 118) to metres.

    Args:
        encoding: '16UC1' (millimetres, 0 = invalid) or '32FC1' (metres).
        height: rows.
        width: columns.
        step: bytes per row, including padding.
        data: the payload, as for `decode_rgb`.
        is_bigendian: byte order of the pixels.

    Returns:
        (height, width) float32 metres; NaN where the pixel holds no valid measurement
        (0 for 16UC1; non-finite or <= 0 for 32FC1).

    Raises:
        ImageCodecError: unknown encoding or inconsistent size fields.
    """
    order = '>' if is_bigendian else '<'
    if encoding == '16UC1':
        raw = _pixels(encoding, height, width, step, data, np.dtype(f'{order}u2'), 1)[..., 0]
        depth = raw.astype(np.float32) / np.float32(MILLIMETRES_PER_METRE)
        depth[raw == 0] = np.nan
        return depth
    if encoding == '32FC1':
        raw = _pixels(encoding, height, width, step, data, np.dtype(f'{order}f4'), 1)[..., 0]
        depth = raw.astype(np.float32, copy=True)
        with np.errstate(invalid='ignore'):
            depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return depth
    raise ImageCodecError(
        f'depth encoding {encoding!r} ({width}x{height}) is not supported; expected '
        f'{" or ".join(DEPTH_ENCODINGS)} (REP 118)'
    )


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_IHDR_END = 24  # signature (8) + chunk length (4) + 'IHDR' (4) + width (4) + height (4)
JPEG_SOI = b'\xff\xd8'
# Start-of-frame markers (baseline, progressive, lossless, arithmetic...): they carry the size.
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})
JPEG_START_OF_SCAN = 0xDA
MARKER_PREFIX = 0xFF
DEFAULT_MAX_PIXELS = 50_000_000
"""Largest compressed image decoded (50 MP): a forged header must not allocate gigabytes."""


def _big_endian(buffer: np.ndarray, start: int, size: int) -> int:
    return int.from_bytes(buffer[start : start + size].tobytes(), 'big')


def _jpeg_size(buffer: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame segment, without decoding; None if absent."""
    position = len(JPEG_SOI)
    while position + 4 <= buffer.size:
        if buffer[position] != MARKER_PREFIX:
            return None
        marker = int(buffer[position + 1])
        if marker == MARKER_PREFIX:  # fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        length = _big_endian(buffer, position + 2, 2)
        if marker in JPEG_SOF_MARKERS:
            if position + 9 > buffer.size:
                return None
            return _big_endian(buffer, position + 5, 2), _big_endian(buffer, position + 7, 2)
        if marker == JPEG_START_OF_SCAN or length < 2:
            return None
        position += 2 + length
    return None


def compressed_image_size(data: Any) -> tuple[int, int] | None:
    """(height, width) a PNG or JPEG header claims, read without decoding; None if unknown."""
    buffer = _bytes_view(data)
    if buffer.size >= PNG_IHDR_END and buffer[:8].tobytes() == PNG_SIGNATURE:
        return _big_endian(buffer, 20, 4), _big_endian(buffer, 16, 4)
    if buffer.size >= len(JPEG_SOI) and buffer[:2].tobytes() == JPEG_SOI:
        return _jpeg_size(buffer)
    return None


def decode_compressed_rgb(
    format: str, data: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) to (H, W, 3) uint8 RGB.

    The size in the header is checked against `max_pixels` before anything is allocated, so a
    forged header (a decompression bomb) is refused instead of exhausting memory.

    Args:
        format: the message's format string, e.g. 'jpeg' or 'bgr8; jpeg compressed bgr8'.
        data: the compressed bytes.
        max_pixels: largest height x width accepted.

    Raises:
        ImageCodecError: compressedDepth payloads, empty, oversized or corrupt data.
    """
    if 'compresseddepth' in format.lower().replace(' ', ''):
        raise ImageCodecError(
            f'compressed format {format!r} is a depth stream; subscribe the node to a colour '
            'image (image/compressed from image_transport compressed, JPEG or PNG)'
        )
    buffer = _bytes_view(data)
    if buffer.size == 0:
        raise ImageCodecError(f'compressed image ({format!r}) has no data; check the publisher')
    size = compressed_image_size(buffer)
    if size is None:
        raise ImageCodecError(
            f'compressed image ({format!r}, {buffer.size} bytes) has no JPEG/PNG header with a '
            'size; it is corrupt or another format: check the publisher or use the raw input'
        )
    height, width = size
    if height * width > max_pixels:
        raise ImageCodecError(
            f'compressed image header claims {width}x{height} ({height * width / 1e6:.0f} MP), '
            f'over the {max_pixels / 1e6:g} MP limit; refused before decoding. Raise '
            'max_input_megapixels if the camera really sends such images'
        )
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageCodecError(
            f'compressed image ({format!r}, {buffer.size} bytes) could not be decoded: '
            f'{str(err).strip().splitlines()[-1]}'
        ) from err
    if image is None or image.size == 0:
        raise ImageCodecError(
            f'compressed image ({format!r}, {buffer.size} bytes) is corrupt or not JPEG/PNG; '
            'check the publisher or use the raw image input'
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
