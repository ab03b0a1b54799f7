"""What `pixio-ros eval` was asked to do, validated before any file is read or written."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pixio_ros.data.datasets import DATASET_NAMES, DATASETS
from pixio_ros.evaluation.alignment import ALIGN_NONE, check_align_mode
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import check_depth_range
from pixio_ros.evaluation.pointcloud import DEFAULT_FSCORE_THRESHOLD_M, DEFAULT_MAX_POINTS
from pixio_ros.evaluation.protocol import EvalProtocol, get_protocol
from pixio_ros.units import NS_PER_MS

# --write-bag: a path with this suffix is one mcap file; any other path is a rosbag2 directory.
MCAP_SUFFIX = '.mcap'
# Suffixes of formats that --write-bag does not write (it writes mcap only).
OTHER_BAG_SUFFIXES = ('.db3', '.bag', '.sqlite3')
# --rerun: a Rerun recording is one file with this suffix.
RRD_SUFFIX = '.rrd'


# The node's align.mode values that fit (off is --align-to left out).
ALIGN_TO_MODES = ('scale', 'scale_shift')


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """One evaluation run: a bag, or a public dataset (`dataset`) read by `pixio_ros.data`.

    Attributes:
        bag: input bag (rosbag2 directory or ROS 1 .bag); with `dataset`, the dataset's PATH.
        image_topic: colour images (Image or CompressedImage) the model sees (bags only).
        depth_topic: ground-truth depth (16UC1 mm or 32FC1 m) (bags only).
        out: result directory (refused if it exists, unless `force`).
        model: artifact to run (exclusive with `prediction_topic`).
        prediction_topic: depth already in the bag to score instead of running a model.
        camera_info_topic: intrinsics for the 3D metrics and the output point cloud; optional.
        align: alignment mode before scoring.
        min_depth: evaluated range lower bound, metres.
        max_depth: evaluated range upper bound, metres.
        stamp_tolerance_ms: largest header-stamp difference accepted when pairing; 0 = exact.
        max_frames: evaluate at most this many paired frames (in stamp order); None = all.
        write_bag: optional output bag with the /pixio/* topics: a path ending in .mcap is
            written as that single mcap file, any other path as a rosbag2 directory (its
            metadata.yaml beside one mcap file named after the directory).
        rerun: optional Rerun recording (.rrd) of the scored frames (`rerun_recording.py`).
        force: replace existing outputs.
        device: Engine device ('auto', 'cpu', 'cuda').
        backend: Engine backend ('auto', 'torch', 'onnxruntime', 'openvino', 'tensorrt').
        fscore_threshold: F-score distance threshold, metres.
        max_points: subsample clouds to at most this many points for the 3D metrics.
        dataset: read `bag` as this dataset (nyuv2, kitti, tum, folder) instead of a bag.
        split: the labeled NYUv2 .mat's split (train, test, all; default test).
        data_root: folder a file list's colour paths are relative to.
        depth_root: folder a file list's depth paths are relative to.
        align_to: sparse reference topic (registered depth Image or PointCloud2) the node's
            online scale alignment is replayed against (AbsRel before / after); None = off.
        align_to_mode: that alignment's fit, scale or scale_shift.
        protocol: evaluation protocol (`pixio_ros.evaluation.protocol`: nyuv2, kitti) or None;
            its depth range must be `min_depth` .. `max_depth`.
    """

    bag: Path
    out: Path
    image_topic: str = ''
    depth_topic: str = ''
    model: Path | None = None
    prediction_topic: str | None = None
    camera_info_topic: str | None = None
    align: str = ALIGN_NONE
    min_depth: float = 1e-3
    max_depth: float = 10.0
    stamp_tolerance_ms: float = 5.0
    max_frames: int | None = None
    write_bag: Path | None = None
    rerun: Path | None = None
    force: bool = False
    device: str = 'auto'
    backend: str = 'auto'
    fscore_threshold: float = DEFAULT_FSCORE_THRESHOLD_M
    max_points: int = DEFAULT_MAX_POINTS
    dataset: str | None = None
    split: str | None = None
    data_root: Path | None = None
    depth_root: Path | None = None
    protocol: str | None = None
    align_to: str | None = None
    align_to_mode: str = 'scale'

    @property
    def write_bag_single_file(self) -> bool:
        """True when `write_bag` names one .mcap file rather than a rosbag2 directory."""
        return self.write_bag is not None and self.write_bag.suffix.lower() == MCAP_SUFFIX

    @property
    def tolerance_ns(self) -> int:
        """Pairing tolerance in integer nanoseconds."""
        return round(self.stamp_tolerance_ms * NS_PER_MS)

    def validate(self) -> None:
        """Raise EvaluationError for any inconsistent option (before touching files)."""
        if (self.model is None) == (self.prediction_topic is None):
            raise EvaluationError(
                'give exactly one of --model ARTIFACT (run a model) or --prediction-topic TOPIC '
                '(score depth already in the bag).'
            )
        if self.dataset is not None:
            self._validate_dataset(self.dataset)
        elif not self.image_topic or not self.depth_topic:
            raise EvaluationError(
                'a bag needs --image-topic and --depth-topic (or pass --dataset NAME to read '
                'PATH as a public dataset).'
            )
        elif self.split is not None or self.data_root is not None or self.depth_root is not None:
            raise EvaluationError(
                '--split, --data-root and --depth-root read datasets; pass --dataset NAME.'
            )
        check_align_mode(self.align)
        if self.align_to is not None and self.dataset is not None:
            raise EvaluationError(
                '--align-to reads a reference topic of a bag; datasets have none.'
            )
        if self.align_to_mode not in ALIGN_TO_MODES:
            raise EvaluationError(
                f'--align-to-mode {self.align_to_mode!r} is unknown; choose one of '
                f'{", ".join(ALIGN_TO_MODES)}.'
            )
        check_depth_range(self.min_depth, self.max_depth)
        if self.protocol is not None:
            self._validate_protocol(get_protocol(self.protocol))
        if not self.stamp_tolerance_ms >= 0:
            raise EvaluationError(
                f'--stamp-tolerance-ms {self.stamp_tolerance_ms} must be >= 0 (0 = exact).'
            )
        if self.max_frames is not None and self.max_frames < 1:
            raise EvaluationError(f'--max-frames {self.max_frames} must be at least 1.')
        if not self.fscore_threshold > 0 or self.max_points < 1:
            raise EvaluationError(
                f'F-score threshold {self.fscore_threshold} m and max points {self.max_points} '
                'must be positive.'
            )
        if self.write_bag is not None:
            self._validate_write_bag(self.write_bag)
        if self.rerun is not None:
            self._validate_rerun(self.rerun)

    def _validate_dataset(self, name: str) -> None:
        """Refuse bag-only options with a dataset (it provides images, depth and cameras)."""
        if name not in DATASET_NAMES:
            raise EvaluationError(
                f'--dataset {name!r} is unknown; choose one of {", ".join(DATASET_NAMES)}.'
            )
        bag_options = [
            option
            for option, value in (
                ('--prediction-topic', self.prediction_topic),
                ('--image-topic', self.image_topic),
                ('--depth-topic', self.depth_topic),
                ('--camera-info-topic', self.camera_info_topic),
            )
            if value
        ]
        if bag_options:
            raise EvaluationError(
                f'{", ".join(bag_options)} read bags; --dataset {name} gives the images, depth '
                'and intrinsics itself (score a model with --model).'
            )

    def _validate_protocol(self, protocol: EvalProtocol) -> None:
        """The protocol's depth range is part of it: a different explicit range is refused."""
        if (self.min_depth, self.max_depth) != (protocol.min_depth, protocol.max_depth):
            raise EvaluationError(
                f'--protocol {protocol.name} scores depth in {protocol.min_depth:g}..'
                f'{protocol.max_depth:g} m, but the range asked is {self.min_depth:g}..'
                f'{self.max_depth:g} m; drop --min-depth / --max-depth or use --protocol none.'
            )

    def _validate_write_bag(self, path: Path) -> None:
        """Refuse a bag path that would overwrite the results or promise a format not written."""
        if path.resolve() == self.out.resolve():
            raise EvaluationError(f'--write-bag {path} must differ from --out.')
        if path.suffix.lower() in OTHER_BAG_SUFFIXES:
            raise EvaluationError(
                f'--write-bag {path}: only mcap is written; name a file ending in {MCAP_SUFFIX} '
                f'(e.g. {path.with_suffix(MCAP_SUFFIX)}) or a directory for a rosbag2 bag '
                f'(e.g. {path.with_suffix("")}).'
            )

    def _validate_rerun(self, path: Path) -> None:
        check_rerun_path(path, out=self.out, write_bag=self.write_bag)

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON-friendly values (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def check_rerun_path(path: Path, *, out: Path, write_bag: Path | None = None) -> None:
    """Refuse a `--rerun` path that is not an .rrd file or would overwrite another output."""
    if path.suffix.lower() != RRD_SUFFIX:
        raise EvaluationError(
            f'--rerun {path}: a Rerun recording is one file ending in {RRD_SUFFIX} '
            f'(e.g. {path.with_suffix(RRD_SUFFIX)}).'
        )
    others = [out] + ([write_bag] if write_bag is not None else [])
    if any(path.resolve() == other.resolve() for other in others):
        raise EvaluationError(f'--rerun {path} must differ from --out and --write-bag.')


PROTOCOL_NONE = 'none'
DEFAULT_MIN_DEPTH_M = 1e-3
DEFAULT_MAX_DEPTH_M = 10.0


def resolve_protocol_and_range(
    *,
    dataset: str | None,
    protocol: str | None,
    min_depth: float | None,
    max_depth: float | None,
) -> tuple[str | None, float, float]:
    """(protocol, min_depth, max_depth) after the dataset-driven defaults.

    `--protocol` defaults to the dataset's (nyuv2 -> nyuv2, kitti -> kitti; none for tum,
    folder and bags); 'none' turns it off. The depth range defaults to the protocol's, else the
    dataset's, else 1e-3..10 m; an explicit value that contradicts the protocol is refused later
    by `EvalConfig.validate`.
    """
    low, high = DEFAULT_MIN_DEPTH_M, DEFAULT_MAX_DEPTH_M
    if dataset is not None:
        info = DATASETS.get(dataset)
        if info is None:
            raise EvaluationError(
                f'--dataset {dataset!r} is unknown; choose one of {", ".join(DATASET_NAMES)}.'
            )
        low, high = info.min_depth, info.max_depth
        if protocol is None:
            protocol = info.protocol
    if protocol == PROTOCOL_NONE:
        protocol = None
    if protocol is not None:
        chosen = get_protocol(protocol)
        low, high = chosen.min_depth, chosen.max_depth
    return (
        protocol,
        low if min_depth is None else min_depth,
        high if max_depth is None else max_depth,
    )
