"""Which topics of a bag are the camera: its colour image topic and the CameraInfo beside it.

When the user names no topic, the bag decides only if it is unambiguous: the one colour image
stream (a raw Image with a colour encoding, or a CompressedImage; a compressed copy of a raw
topic, `<topic>/compressed`, counts as the same stream and the raw one is used), and the
CameraInfo that image_transport puts beside it (`/ns/image_raw` -> `/ns/camera_info`).
Anything else is an error that lists the candidates and names the option to pass.
"""

from __future__ import annotations

from typing import Final

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import CAMERA_INFO_TYPE, COLOR_TYPES, COMPRESSED_TYPE, IMAGE_TYPE
from pixio_ros.data.errors import DataError
from pixio_ros.runtime.image_codec import DEPTH_ENCODINGS

__all__ = ['default_camera_info_topic', 'default_image_topic', 'first_encoding']

COMPRESSED_SUFFIX: Final = '/compressed'
CAMERA_INFO_NAME: Final = 'camera_info'


def first_encoding(bag: BagReader, topic: str) -> str | None:
    """The encoding (Image) or format (CompressedImage) of the topic's first logged message."""
    for message in bag.stream([topic]):
        return getattr(message.msg, 'encoding', None) or getattr(message.msg, 'format', None)
    return None


def default_image_topic(bag: BagReader) -> str:
    """The bag's one colour image stream.

    Raises:
        DataError: no colour stream, or several (listing them; pass --image-topic).
    """
    candidates = []
    for topic, msgtype in bag.topics.items():
        if msgtype == IMAGE_TYPE and first_encoding(bag, topic) not in DEPTH_ENCODINGS:
            candidates.append(topic)
        elif msgtype == COMPRESSED_TYPE:
            candidates.append(topic)
    raw = set(candidates)
    streams = [
        t
        for t in candidates
        if not (t.endswith(COMPRESSED_SUFFIX) and t[: -len(COMPRESSED_SUFFIX)] in raw)
    ]
    if len(streams) == 1:
        return streams[0]
    if not streams:
        raise DataError(
            f'bag {bag.path} has no colour image topic ({" or ".join(COLOR_TYPES)} with a colour '
            f'encoding); its topics are: {bag.describe_topics()}.'
        )
    raise DataError(
        f'bag {bag.path} has several colour image topics ({", ".join(streams)}); pass '
        '--image-topic TOPIC.'
    )


def default_camera_info_topic(bag: BagReader, image_topic: str) -> str | None:
    """`/ns/camera_info` beside `/ns/<image>` (or `/ns/<image>/compressed`), if the bag has it."""
    base = image_topic.removesuffix(COMPRESSED_SUFFIX)
    namespace = base.rpartition('/')[0]
    candidate = f'{namespace}/{CAMERA_INFO_NAME}'
    return candidate if bag.topics.get(candidate) == CAMERA_INFO_TYPE else None
