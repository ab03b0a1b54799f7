"""Offline replay: decode each frame (bag messages or a dataset sample), predict, score, collect.

Deterministic: frames are processed in a fixed order, the model runs on CPU/GPU in inference
mode, and summaries are image-level means over the frames in order. With a protocol
(`pixio_ros.evaluation.protocol`) only its crop of each ground truth is scored. Under torchrun
each rank replays every N-th frame (`pixio_ros.distributed.shard`) and `merge_replays` puts
the ranks' results back into the one-process order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

import numpy as np

from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import ImageCodecError, decode_color, decode_depth_image
from pixio_ros.data.samples import RGBDSample
from pixio_ros.distributed import World, shard
from pixio_ros.evaluation.alignment import ALIGN_NONE
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.metrics import FrameDepthScore, score_frame
from pixio_ros.evaluation.output_bag import PixioBagWriter
from pixio_ros.evaluation.plan import DEPTH, IMAGE, PREDICTION, EvaluationPlan, FramePlan
from pixio_ros.evaluation.pointcloud import score_point_clouds
from pixio_ros.evaluation.predictors import Predictor
from pixio_ros.evaluation.protocol import EvalProtocol, get_protocol
from pixio_ros.evaluation.sparse_alignment import SparseAligner
from pixio_ros.runtime.alignment import aligned_prediction
from pixio_ros.runtime.camera import CameraError, PinholeCamera, backproject
from pixio_ros.runtime.products import Wanted, build_products
from pixio_ros.units import MS_PER_S, NS_PER_S

DATASET_FRAME_ID: Final = 'camera'
"""frame_id of a dataset frame's products in --write-bag (datasets name no TF frame)."""
# Relative-error histogram (|pred - gt| / gt) over every valid pixel of every frame.
HISTOGRAM_EDGES: Final = np.linspace(0.0, 1.0, 51)

STATUS_OK: Final = 'ok'
SKIP_DECODE: Final = 'decode_error'
SKIP_FEW_PIXELS: Final = 'too_few_valid_pixels'
SKIP_NO_PREDICTION: Final = 'missing_prediction'


@dataclass
class FrameResult:
    """The outcome of one frame (a row of per_frame.csv)."""

    number: int
    stamp_ns: int
    status: str
    detail: str = ''
    metrics: dict[str, float] = field(default_factory=dict)
    raw_metrics: dict[str, float] = field(default_factory=dict)
    valid_pixels: int = 0
    coverage: float = 0.0
    scale: float = float('nan')
    shift: float = float('nan')
    chamfer: float = float('nan')
    fscore: float = float('nan')
    inference_ms: float = float('nan')
    total_ms: float = float('nan')


@dataclass
class FrameView:
    """Arrays of one frame for the report's panels: RGB, ground truth, aligned prediction."""

    rgb: np.ndarray
    gt: np.ndarray
    aligned: np.ndarray

    def relative_error(self) -> np.ndarray:
        """(H, W) |aligned - gt| / gt where the prediction was scored, NaN elsewhere."""
        valid = np.isfinite(self.aligned)
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(valid, np.abs(self.aligned - self.gt) / self.gt, np.nan)


class FrameRecorder(Protocol):
    """Receives every scored frame as it is scored (`--rerun`: `rerun_recording.RerunRecorder`)."""

    def log_frame(self, result: FrameResult, view: FrameView, camera: PinholeCamera | None) -> None:
        """Record one frame's result and arrays."""


@dataclass
class ReplayOutput:
    """Everything the reports need."""

    frames: list[FrameResult]
    histogram: np.ndarray
    wall_s: float
    gt_sizes: set[tuple[int, int]] = field(default_factory=set)


def merge_replays(parts: Sequence[ReplayOutput]) -> ReplayOutput:
    """The ranks' replays as one: frames by number (the one-process order), histograms summed.

    The wall time is the slowest rank's: the run took that long.
    """
    frames = sorted((frame for part in parts for frame in part.frames), key=lambda f: f.number)
    histogram = np.sum([part.histogram for part in parts], axis=0)
    sizes = set().union(*(part.gt_sizes for part in parts))
    return ReplayOutput(frames, histogram, max(part.wall_s for part in parts), sizes)


def _camera_for(
    plan: EvaluationPlan, frame: FramePlan, shape: tuple[int, int]
) -> PinholeCamera | None:
    camera = plan.camera_at(frame.stamp_ns)
    if camera is None:
        return None
    try:
        return camera.matched_to(shape[1], shape[0])
    except CameraError as err:
        raise EvaluationError(f'--camera-info-topic does not fit the depth images: {err}') from err


class Replayer:
    """Runs frames through a predictor and the metrics.

    Args:
        config: the run's configuration.
        plan: frames and cameras from `build_plan` (None when the frames are dataset samples).
        predictor: an EnginePredictor or a TopicPredictor.
        writer: optional output bag writer.
        aligner: `--align-to`: the node's online alignment, applied before scoring (and
            scored without it too).
        world: this process's rank; `run` and `run_samples` replay its share of the frames.
        recorder: optional `--rerun` recording, given every scored frame.

    Attributes:
        gt_sizes: every (H, W) of ground truth scored (the protocol's crop boxes are reported
            per size).
    """

    def __init__(
        self,
        config: EvalConfig,
        plan: EvaluationPlan | None,
        predictor: Predictor,
        writer: PixioBagWriter | None = None,
        aligner: SparseAligner | None = None,
        world: World | None = None,
        recorder: FrameRecorder | None = None,
    ) -> None:
        self.world = World() if world is None else world
        self.recorder = recorder
        self.config = config
        self.aligner = aligner
        self.plan = plan
        self.predictor = predictor
        self.writer = writer
        self.protocol: EvalProtocol | None = (
            get_protocol(config.protocol) if config.protocol is not None else None
        )
        self.gt_sizes: set[tuple[int, int]] = set()

    def _bag_plan(self) -> EvaluationPlan:
        """The plan of a bag replay (dataset replays have none)."""
        if self.plan is None:
            raise EvaluationError('bag frames need the plan from build_plan; this is a dataset.')
        return self.plan

    def _decode(self, messages: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return decode_color(messages[IMAGE]), decode_depth_image(messages[DEPTH])

    def _score(self, depth: np.ndarray, gt: np.ndarray, align: str) -> FrameDepthScore | None:
        region = None
        if self.protocol is not None:
            region = self.protocol.region(gt.shape[0], gt.shape[1])
        return score_frame(
            depth,
            gt,
            align=align,
            min_depth=self.config.min_depth,
            max_depth=self.config.max_depth,
            region=region,
        )

    def process(
        self, frame: FramePlan, messages: dict[str, Any], histogram: np.ndarray | None = None
    ) -> tuple[FrameResult, FrameView | None]:
        """Score one frame of a bag; bad frames come back with a skip status instead of raising."""
        start = time.perf_counter()
        result = FrameResult(frame.number, frame.stamp_ns, STATUS_OK)
        if PREDICTION in frame.indices and frame.indices[PREDICTION] is None:
            result.status = SKIP_NO_PREDICTION
            return result, None
        try:
            rgb, gt = self._decode(messages)
        except ImageCodecError as err:
            result.status, result.detail = SKIP_DECODE, str(err)
            return result, None
        camera = _camera_for(self._bag_plan(), frame, gt.shape)
        frame_id = messages[IMAGE].header.frame_id
        return self._evaluate(result, rgb, gt, camera, messages, frame_id, histogram, start)

    def process_sample(
        self, number: int, sample: RGBDSample, histogram: np.ndarray | None = None
    ) -> tuple[FrameResult, FrameView | None]:
        """Score one dataset sample; its stamp is its capture time, else its number in seconds.

        Raises:
            DataError: the sample's files cannot be read (a benchmark must not silently lose
                frames, so this stops the run and names the file).
        """
        start = time.perf_counter()
        stamp = sample.stamp_ns if sample.stamp_ns is not None else number * NS_PER_S
        result = FrameResult(number, stamp, STATUS_OK)
        rgb, gt = sample.frame()
        return self._evaluate(
            result, rgb, gt, sample.camera, {}, DATASET_FRAME_ID, histogram, start
        )

    def _evaluate(
        self,
        result: FrameResult,
        rgb: np.ndarray,
        gt: np.ndarray,
        camera: PinholeCamera | None,
        messages: dict[str, Any],
        frame_id: str,
        histogram: np.ndarray | None,
        start: float,
    ) -> tuple[FrameResult, FrameView | None]:
        """Predict, write the products, score: the part bags and datasets share."""
        prediction = self.predictor.predict(rgb, messages, gt.shape)
        if prediction.inference_ms is not None:
            result.inference_ms = prediction.inference_ms
        unaligned = prediction.depth
        if self.aligner is not None:
            depth, state = self.aligner.align(result.number, result.stamp_ns, unaligned, camera)
            outputs = aligned_prediction(prediction.outputs, state)
            prediction = replace(prediction, depth=depth, outputs=outputs)
        if self.writer is not None:
            products = build_products(
                prediction.outputs, rgb, camera, Wanted.everything(), self.predictor.product_options
            )
            self.writer.write_frame(products, result.stamp_ns, frame_id)
        self.gt_sizes.add((gt.shape[0], gt.shape[1]))
        score = self._score(prediction.depth, gt, self.config.align)
        if score is None:
            result.status = SKIP_FEW_PIXELS
            return result, None
        result.metrics = score.metrics
        if self.aligner is not None:
            before = self._score(unaligned, gt, self.config.align)
            self.aligner.scored(
                result.number,
                before.metrics['abs_rel'] if before is not None else float('nan'),
                score.metrics['abs_rel'],
            )
        if self.config.align != ALIGN_NONE:  # the metric (unaligned) view, labelled apart
            raw = self._score(prediction.depth, gt, ALIGN_NONE)
            result.raw_metrics = raw.metrics if raw is not None else {}
        result.valid_pixels, result.coverage = score.valid_pixels, score.coverage
        result.scale, result.shift = score.scale, score.shift
        valid = np.isfinite(score.aligned)
        if histogram is not None:
            relative = np.abs(score.aligned[valid] - gt[valid]) / gt[valid]
            histogram += np.histogram(
                np.minimum(relative, HISTOGRAM_EDGES[-1]), bins=HISTOGRAM_EDGES
            )[0]
        if camera is not None:
            rays = camera.rays()
            cloud = score_point_clouds(
                backproject(score.aligned.astype(np.float32), rays)[valid],
                backproject(gt, rays)[valid],
                threshold=self.config.fscore_threshold,
                max_points=self.config.max_points,
            )
            result.chamfer, result.fscore = cloud.chamfer, cloud.fscore
        result.total_ms = (time.perf_counter() - start) * MS_PER_S
        view = FrameView(rgb, gt, score.aligned)
        if self.recorder is not None:
            self.recorder.log_frame(result, view, camera)
        return result, view

    def run(self, bag: BagReader, *, progress: bool = False) -> ReplayOutput:
        """Process every planned frame; results come back sorted by stamp."""
        from tqdm import tqdm

        from pixio_ros.evaluation.plan import iter_frame_messages

        plan = self._bag_plan()
        mine = shard(plan.frames, self.world)
        histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, dtype=np.int64)
        results: dict[int, FrameResult] = {}
        start = time.perf_counter()
        shown = progress and self.world.is_main
        with tqdm(total=len(mine), desc='eval', unit='frame', disable=not shown) as bar:
            for frame, messages in iter_frame_messages(bag, plan, mine):
                results[frame.number], _ = self.process(frame, messages, histogram)
                bar.update()
        wall = time.perf_counter() - start
        frames = [results[f.number] for f in mine if f.number in results]
        return ReplayOutput(frames, histogram, wall, set(self.gt_sizes))

    def run_samples(self, samples: Sequence[RGBDSample], *, progress: bool = False) -> ReplayOutput:
        """Process dataset samples in order; frame numbers are their positions."""
        from tqdm import tqdm

        histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, dtype=np.int64)
        results = []
        start = time.perf_counter()
        mine = shard(list(enumerate(samples)), self.world)
        shown = progress and self.world.is_main
        for number, sample in tqdm(mine, desc='eval', unit='frame', disable=not shown):
            results.append(self.process_sample(number, sample, histogram)[0])
        wall = time.perf_counter() - start
        return ReplayOutput(results, histogram, wall, set(self.gt_sizes))

    def sample_views(
        self, samples: Sequence[RGBDSample], numbers: list[int]
    ) -> dict[int, FrameView]:
        """Re-run the samples ``numbers`` (for the report's panels) and return their arrays."""
        views = {}
        # already written and recorded during `run_samples`
        writer, self.writer, recorder, self.recorder = self.writer, None, self.recorder, None
        try:
            for number in sorted(set(numbers)):
                _, view = self.process_sample(number, samples[number])
                if view is not None:
                    views[number] = view
        finally:
            self.writer, self.recorder = writer, recorder
        return views

    def views(self, bag: BagReader, numbers: list[int]) -> dict[int, FrameView]:
        """Re-run the frames `numbers` (for the report's panels) and return their arrays."""
        from pixio_ros.evaluation.plan import iter_frame_messages

        plan = self._bag_plan()
        wanted = [f for f in plan.frames if f.number in set(numbers)]
        views = {}
        # already written and recorded during `run`
        writer, self.writer, recorder, self.recorder = self.writer, None, self.recorder, None
        try:
            for frame, messages in iter_frame_messages(bag, plan, wanted):
                _, view = self.process(frame, messages)
                if view is not None:
                    views[frame.number] = view
        finally:
            self.writer, self.recorder = writer, recorder
        return views
