"""Hostile compressed images against a real pixio_node process (limit: 1 MP, see conftest).

Issue 12: a JPEG whose header claimed 60000x60000 reached the decoder and ended in a traceback
counted as `internal`; it must be refused from its header, before any allocation, as `decode`.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from adversarial_helpers import compressed_image, random_rgb
from conftest import COMPRESSED_LIMIT_MEGAPIXELS

# ROS-facing through the node process: `make test-kilted` runs it too.
pytestmark = pytest.mark.ros

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))


def png_of_zeros(width: int, height: int) -> bytes:
    """A real, tiny PNG of a large black grey image: a decompression bomb."""
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(bytes(height * (width + 1)), 9)
    return (
        PNG_SIGNATURE
        + png_chunk(b'IHDR', header)
        + png_chunk(b'IDAT', rows)
        + png_chunk(b'IEND', b'')
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose start-of-frame segment claims `width` x `height`."""
    ok, jpeg = cv2.imencode('.jpg', random_rgb(12, 16, 16))
    assert ok
    data = bytearray(jpeg.tobytes())
    sof = data.find(b'\xff\xc0')
    data[sof + 5 : sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def encoded(extension: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


REFUSED = {
    'garbage': lambda: (
        np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes(),
        'jpeg',
    ),
    'empty': lambda: (b'', 'jpeg'),
    'JPEG start only': lambda: (b'\xff\xd8', 'jpeg'),
    'truncated JPEG': lambda: (encoded('.jpg', random_rgb(13))[:400], 'jpeg'),
    'PNG signature only': lambda: (PNG_SIGNATURE, 'png'),
    'corrupt PNG data': lambda: (
        encoded('.png', random_rgb(14))[:60] + bytes(200),
        'png',
    ),
    'JPEG header claiming 60000x60000': lambda: (jpeg_claiming(60000, 60000), 'jpeg'),
    'JPEG header claiming 65535x65535': lambda: (jpeg_claiming(65535, 65535), 'jpeg'),
    'PNG header claiming 2**31 x 2**31': lambda: (
        PNG_SIGNATURE
        + png_chunk(b'IHDR', struct.pack('>IIBBBBB', 2**31 - 1, 2**31 - 1, 8, 2, 0, 0, 0)),
        'png',
    ),
    'real PNG bomb over the limit': lambda: (
        png_of_zeros(1500, int(COMPRESSED_LIMIT_MEGAPIXELS * 1e6) // 1500 + 10),
        'png',
    ),
    'compressedDepth stream': lambda: (encoded('.png', random_rgb(15)), 'compressedDepth png'),
}


@pytest.mark.parametrize('case', list(REFUSED))
def test_bad_compressed_image_is_refused_as_decode(compressed_target, case):
    data, fmt = REFUSED[case]()
    msg = compressed_image(data, fmt)
    _, lines = compressed_target.expect_refused('decode', compressed_target.send_image(msg))
    if 'claiming' in case or 'bomb' in case:
        for line in lines:
            assert 'limit' in line


ACCEPTED = {
    '16-bit PNG': lambda: encoded('.png', random_rgb(16).astype(np.uint16) * 257),
    'PNG with alpha': lambda: encoded(
        '.png', np.dstack([random_rgb(17), np.full((96, 144), 128, np.uint8)])
    ),
    'grey PNG': lambda: encoded('.png', random_rgb(18)[..., 0]),
    'grey JPEG': lambda: encoded('.jpg', random_rgb(19)[..., 0]),
}


@pytest.mark.parametrize('case', list(ACCEPTED))
def test_unusual_but_valid_compressed_images_are_processed(compressed_target, case):
    target = compressed_target
    before = target.fresh_diagnostics()
    mark = target.log_mark()
    outputs = target.process_frame(compressed_image(ACCEPTED[case](), 'png'))
    depth = np.frombuffer(bytes(outputs['depth'].data), '<f4')
    assert depth.size == 96 * 144 and np.isfinite(depth).any()
    after = target.fresh_diagnostics()
    assert after.errors() == before.errors()
    target.assert_log_clean(mark, max_lines=0)
