"""Which messages form each evaluated frame: header stamps of the topics, paired one-to-one.

The first pass reads only stamps (and the camera infos, which are small); the second pass (see
`frames`) decodes just the messages a frame needs, so memory stays bounded on long recordings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import CAMERA_INFO_TYPE, COLOR_TYPES, DEPTH_TYPES
from pixio_ros.data.stamps import nearest_index, pair_stamps
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.runtime.image_codec import DEPTH_ENCODINGS, RGB_ENCODINGS
from pixio_ros.units import NS_PER_S

IMAGE, DEPTH, PREDICTION = 'image', 'depth', 'prediction'


@dataclass
class TopicStamps:
    """Header stamps of one topic in stream (log) order, plus the first message's encoding."""

    topic: str
    stamps: list[int] = field(default_factory=list)
    log_times: list[int] = field(default_factory=list)
    first_encoding: str | None = None

    def describe_range(self) -> str:
        """'N msgs, stamps A .. B s' for error messages."""
        if not self.stamps:
            return 'no messages'
        return (
            f'{len(self.stamps)} msgs, stamps {min(self.stamps) / NS_PER_S:.6f} .. '
            f'{max(self.stamps) / NS_PER_S:.6f} s'
        )


@dataclass(frozen=True)
class FramePlan:
    """One frame to evaluate: stream indices per role (prediction may be missing) and its stamp."""

    number: int
    stamp_ns: int
    indices: dict[str, int | None]


@dataclass
class EvaluationPlan:
    """All frames to evaluate, the pairing counts and the cameras by stamp."""

    frames: list[FramePlan]
    topics: dict[str, TopicStamps]
    counts: dict[str, int]
    camera_stamps: list[int]
    cameras: list[PinholeCamera]

    def camera_at(self, stamp_ns: int) -> PinholeCamera | None:
        """The CameraInfo closest in stamp, or None without a camera-info topic."""
        if not self.cameras:
            return None
        return self.cameras[nearest_index(self.camera_stamps, stamp_ns)]


def _roles(config: EvalConfig) -> dict[str, str]:
    roles = {IMAGE: config.image_topic, DEPTH: config.depth_topic}
    if config.prediction_topic is not None:
        roles[PREDICTION] = config.prediction_topic
    return roles


def check_topics(bag: BagReader, config: EvalConfig) -> None:
    """Raise (listing the bag's topics and types) unless every topic exists with a usable type."""
    bag.require_topic(config.image_topic, COLOR_TYPES, option='--image-topic')
    bag.require_topic(config.depth_topic, DEPTH_TYPES, option='--depth-topic')
    if config.prediction_topic is not None:
        bag.require_topic(config.prediction_topic, DEPTH_TYPES, option='--prediction-topic')
    if config.camera_info_topic is not None:
        bag.require_topic(
            config.camera_info_topic, (CAMERA_INFO_TYPE,), option='--camera-info-topic'
        )


def _read_stamps(bag: BagReader, roles: dict[str, str]) -> dict[str, TopicStamps]:
    by_topic = {topic: TopicStamps(topic) for topic in roles.values()}
    for message in bag.stream(by_topic):
        entry = by_topic[message.topic]
        entry.stamps.append(message.stamp_ns)
        entry.log_times.append(message.log_time_ns)
        if entry.first_encoding is None:
            entry.first_encoding = getattr(message.msg, 'encoding', None) or getattr(
                message.msg, 'format', None
            )
    return {role: by_topic[topic] for role, topic in roles.items()}


def _check_encodings(topics: dict[str, TopicStamps], config: EvalConfig) -> None:
    image = topics[IMAGE]
    if image.first_encoding is not None and image.first_encoding in DEPTH_ENCODINGS:
        raise EvaluationError(
            f'--image-topic {config.image_topic} has encoding {image.first_encoding!r} (depth); '
            f'the model needs colour: one of {", ".join(RGB_ENCODINGS)} or a CompressedImage.'
        )
    for role, option in ((DEPTH, '--depth-topic'), (PREDICTION, '--prediction-topic')):
        entry = topics.get(role)
        if entry is not None and entry.first_encoding not in (None, *DEPTH_ENCODINGS):
            raise EvaluationError(
                f'{option} {entry.topic} has encoding {entry.first_encoding!r}; expected '
                f'{" or ".join(DEPTH_ENCODINGS)} depth (REP 118).'
            )


def read_cameras(
    bag: BagReader, topic: str | None, *, without: str = 'skip 3D metrics'
) -> tuple[list[int], list[PinholeCamera]]:
    """Stamps and camera models of every CameraInfo on `topic` (none without a topic).

    Args:
        bag: the open bag.
        topic: the CameraInfo topic, or None.
        without: what omitting the option does, for the error message.

    Raises:
        EvaluationError: a CameraInfo that describes no camera, or a topic without messages.
    """
    if topic is None:
        return [], []
    stamps, cameras = [], []
    for message in bag.messages(topic):
        try:
            camera = PinholeCamera.from_camera_info(message.msg)
        except CameraError as err:
            raise EvaluationError(
                f'--camera-info-topic {topic}: {err}; or omit the option to {without}.'
            ) from err
        stamps.append(message.stamp_ns)
        cameras.append(camera)
    if not cameras:
        raise EvaluationError(f'--camera-info-topic {topic} has no messages; omit it.')
    return stamps, cameras


def build_plan(bag: BagReader, config: EvalConfig) -> EvaluationPlan:
    """Pair the topics by header stamp and decide the frames to evaluate.

    Raises:
        EvaluationError: a topic with a wrong encoding, or no image/depth stamp pairs (the
            message gives both topics' stamp ranges).
    """
    check_topics(bag, config)
    topics = _read_stamps(bag, _roles(config))
    _check_encodings(topics, config)
    image, depth = topics[IMAGE], topics[DEPTH]
    pairing = pair_stamps(image.stamps, depth.stamps, config.tolerance_ns)
    if not pairing.pairs:
        raise EvaluationError(
            f'no header stamps of --image-topic {image.topic} ({image.describe_range()}) match '
            f'--depth-topic {depth.topic} ({depth.describe_range()}) within '
            f'{config.stamp_tolerance_ms} ms; raise --stamp-tolerance-ms or check the topics.'
        )
    pairs = pairing.pairs[: config.max_frames] if config.max_frames else pairing.pairs
    prediction_of: dict[int, int] = {}
    if PREDICTION in topics:
        image_stamps = [image.stamps[i] for i, _ in pairs]
        matched = pair_stamps(image_stamps, topics[PREDICTION].stamps, config.tolerance_ns)
        prediction_of = dict(matched.pairs)
    frames = []
    for number, (i, j) in enumerate(pairs):
        indices: dict[str, int | None] = {IMAGE: i, DEPTH: j}
        if PREDICTION in topics:
            indices[PREDICTION] = prediction_of.get(number)
        frames.append(FramePlan(number, image.stamps[i], indices))
    counts = {
        'image_messages': len(image.stamps),
        'depth_messages': len(depth.stamps),
        'paired': len(pairing.pairs),
        'unmatched_images': len(pairing.unmatched_first),
        'unmatched_depth': len(pairing.unmatched_second),
        'selected': len(frames),
    }
    if PREDICTION in topics:
        counts['prediction_messages'] = len(topics[PREDICTION].stamps)
    camera_stamps, cameras = read_cameras(bag, config.camera_info_topic)
    return EvaluationPlan(frames, topics, counts, camera_stamps, cameras)


def iter_frame_messages(
    bag: BagReader, plan: EvaluationPlan, frames: list[FramePlan] | None = None
) -> Iterator[tuple[FramePlan, dict[str, Any]]]:
    """Yield `(frame, {role: msg})` for `frames` (default: all) once each has all its messages.

    Frames come in the order their last message was logged; roles whose index is None (no
    prediction for that frame) are not waited for.
    """
    wanted: dict[str, dict[int, list[tuple[int, str]]]] = {}
    selected = plan.frames if frames is None else frames
    pending: dict[int, dict[str, Any]] = {}
    needed: dict[int, int] = {}
    by_number = {frame.number: frame for frame in selected}
    for frame in selected:
        needed[frame.number] = 0
        pending[frame.number] = {}
        for role, index in frame.indices.items():
            if index is None:
                continue
            topic = plan.topics[role].topic
            wanted.setdefault(topic, {}).setdefault(index, []).append((frame.number, role))
            needed[frame.number] += 1
    counters = dict.fromkeys(wanted, 0)
    for message in bag.stream(wanted):
        index = counters[message.topic]
        counters[message.topic] += 1
        for number, role in wanted[message.topic].get(index, ()):
            pending[number][role] = message.msg
            if len(pending[number]) == needed[number]:
                yield by_number[number], pending.pop(number)
