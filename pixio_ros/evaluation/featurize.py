"""`pixio-ros features`: every frame of recordings through the node's engine and products.

Each frame goes the node's way: decoded by the runtime codec, run by the Engine
(`infer_batch`, as the node's inference stage calls it), its depth at the node's
`depth_resolution`, the CameraInfo matched and scaled as the node does, and the features,
embedding and patch xyz built by `pixio_ros.runtime.products`. So at `--batch-size 1` (the node's
forward for one camera) the rows hold the very bits the node publishes for that frame; larger
batches change only the last bits of depth (and so of xyz) on some backends. Signals are
aligned by `pixio_ros.data.signals`; the dataset is written by `pixio_ros.data.feature_writer`
into a staging directory that replaces OUT only when complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from pixio_ros.data import feature_schema as schema
from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import ImageCodecError, decode_color
from pixio_ros.data.feature_writer import FeatureLayout, FeatureWriter, SignalLayout
from pixio_ros.data.signals import ALIGNMENT_RULE, align_signal
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.feature_plan import (
    BagPlan,
    FeaturesConfig,
    image_messages_in_stamp_order,
    plan_bag,
)
from pixio_ros.files import atomic_output, check_writable
from pixio_ros.runtime.camera import CameraError, PinholeCamera
from pixio_ros.runtime.products import ProductOptions, Wanted, build_products, engine_outputs

if TYPE_CHECKING:
    from pixio_ros.runtime.engine import Engine

__all__ = [
    'FORMAT_NAME',
    'FeatureExtraction',
    'FeaturesConfig',
    'FeaturesSummary',
    'extract_features',
]

FORMAT_NAME: Final = 'pixio_ros.features'
FORMAT_VERSION: Final = 1
ENGINE_WARMUP_RUNS: Final = 3
"""As eval: past TorchScript's profiling runs, so frames/s is the steady state."""


@dataclass
class FeaturesSummary:
    """What the run did: counts, speed and where the dataset is."""

    out: Path
    frames: int
    episodes: int
    unmatched: int
    skipped: int
    frames_per_s: float
    bytes_per_frame: int

    def line(self) -> str:
        """The one-line summary the command prints."""
        skipped = f', {self.skipped} skipped (undecodable)' if self.skipped else ''
        return (
            f'{self.frames} frames, {self.episodes} episodes, {self.unmatched} unmatched'
            f'{skipped}, {self.frames_per_s:.2f} frames/s -> {self.out}'
        )


@dataclass
class PendingFrame:
    """A decoded frame waiting for its batch."""

    bag: Path
    episode: int
    frame: int
    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    camera: PinholeCamera | None
    output_size: tuple[int, int]
    signals: dict[str, Any] = field(default_factory=dict)
    matched: bool = True


class FeatureExtraction:
    """The run: the engine, the products' options, the writer once the first frame fixed shapes.

    Args:
        config: the checked options.
        engine: the loaded artifact.
        plans: the bags' plans, in command-line order.
    """

    def __init__(self, config: FeaturesConfig, engine: Engine, plans: Sequence[BagPlan]) -> None:
        missing = sorted({'features', 'embedding'} - set(engine.outputs))
        if missing:
            raise EvaluationError(
                f'artifact {engine.path} has no {" / ".join(missing)} output (outputs: '
                f'{", ".join(engine.outputs)}); export it again with `pixio-ros export`.'
            )
        self.config = config
        self.engine = engine
        self.plans = list(plans)
        self.wanted = Wanted(depth=config.with_depth, features=True, embedding=True)
        self.options = ProductOptions(features_half=config.features_dtype == 'float16')
        self.writer: FeatureWriter | None = None
        self.skipped = 0
        self.unmatched = 0
        self.episodes = 0
        self._scratch: Path | None = None

    def _layout(self, first: PendingFrame) -> FeatureLayout:
        metadata = self.engine.metadata
        height, width = metadata.input_size
        tracks = self.plans[0].tracks
        return FeatureLayout(
            grid=(height // metadata.patch_size, width // metadata.patch_size),
            channels=metadata.embed_dim,
            features_dtype=self.config.features_dtype,
            depth_shape=first.output_size if self.config.with_depth else None,
            signals=tuple(SignalLayout(t.column, t.length, t.scalar) for t in tracks),
        )

    def _check_signal_shapes(self) -> None:
        first = {t.column: t.length for t in self.plans[0].tracks}
        for plan in self.plans[1:]:
            lengths = {t.column: t.length for t in plan.tracks}
            if lengths != first:
                raise EvaluationError(
                    f'--with arrays differ in length between bags: {self.plans[0].path} has '
                    f'{first}, {plan.path} has {lengths}; featurize them separately.'
                )

    def _pending(
        self, plan: BagPlan, position: int, msg: Any, episode: int, frame: int
    ) -> PendingFrame | None:
        """Decode one frame the node's way; None (counted) when the node would skip it too."""
        try:
            rgb = decode_color(msg)
            camera = plan.camera_at(int(plan.stamps[position]))
            if camera is not None:
                camera = camera.matched_to(rgb.shape[1], rgb.shape[0])
        except (ImageCodecError, CameraError):
            self.skipped += 1
            return None
        size = rgb.shape[:2] if self.config.depth_resolution == 'camera' else self.engine.input_size
        if camera is not None:
            camera = camera.scaled_to(size[1], size[0])
        return PendingFrame(
            bag=plan.path,
            episode=episode,
            frame=frame,
            stamp_ns=int(plan.stamps[position]),
            frame_id=str(msg.header.frame_id),
            rgb=rgb,
            camera=camera,
            output_size=(int(size[0]), int(size[1])),
        )

    def _frames(self, plan: BagPlan, first_episode: int) -> Iterator[PendingFrame]:
        """The bag's decodable frames in stamp order, with episodes, indices and signals."""
        aligned = {
            track.column: align_signal(track, plan.stamps, self.config.max_gap_ms)
            for track in plan.tracks
        }
        starts = set(plan.episode_starts)
        episode, frame = first_episode - 1, 0
        with BagReader(plan.path) as bag:
            for position, msg in image_messages_in_stamp_order(bag, plan):
                if position in starts:
                    episode, frame = episode + 1, 0
                pending = self._pending(plan, position, msg, episode, frame)
                if pending is None:
                    continue
                frame += 1
                for track in plan.tracks:
                    signal = aligned[track.column]
                    values = signal.values[position]
                    pending.signals[track.column] = float(values[0]) if track.scalar else values
                    pending.matched &= bool(signal.matched[position])
                yield pending

    def _write(self, batch: list[PendingFrame]) -> None:
        """One forward pass over `batch` and its rows."""
        names = set().union(
            *(
                engine_outputs(
                    self.wanted,
                    self.engine.outputs,
                    has_camera=p.camera is not None,
                    confidence=False,
                )
                for p in batch
            )
        )
        predictions = self.engine.infer_batch(
            [p.rgb for p in batch], outputs=names, output_sizes=[p.output_size for p in batch]
        )
        if self.writer is None:
            self.writer = FeatureWriter(self._scratch_dir(), self._layout(batch[0]))
        layout = self.writer.layout
        columns: dict[str, list[Any]] = {name: [] for name in layout.features()}
        for pending, prediction in zip(batch, predictions, strict=True):
            products = build_products(
                prediction, pending.rgb, pending.camera, self.wanted, self.options
            )
            assert products.features is not None and products.embedding is not None
            if layout.depth_shape is not None and products.depth is not None:
                if products.depth.shape != layout.depth_shape:
                    raise EvaluationError(
                        f'the frame at {pending.stamp_ns} ns in {pending.bag} is '
                        f'{products.depth.shape[1]}x{products.depth.shape[0]}, the first was '
                        f'{layout.depth_shape[1]}x{layout.depth_shape[0]}; --with-depth needs '
                        'one image size: pass --depth-resolution input.'
                    )
                columns[schema.DEPTH].append(products.depth)
            columns[schema.EPISODE].append(pending.episode)
            columns[schema.FRAME].append(pending.frame)
            columns[schema.STAMP].append(pending.stamp_ns)
            columns[schema.FRAME_ID].append(pending.frame_id)
            columns[schema.FEATURES].append(products.features.values)
            columns[schema.EMBEDDING].append(products.embedding)
            columns[schema.XYZ].append(products.features.xyz)
            columns[schema.MATCHED].append(pending.matched)
            for name, value in pending.signals.items():
                columns[name].append(value)
            self.unmatched += not pending.matched
        self.writer.write_batch(columns)

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            raise EvaluationError('the staging directory is set by run(); call run().')
        return self._scratch

    def run(self, target: Path, *, progress: bool) -> float:
        """Extract every frame and write the dataset to `target`; returns the wall seconds."""
        from tqdm import tqdm

        self._check_signal_shapes()
        self._scratch = target.parent
        total = sum(len(plan.order) for plan in self.plans)
        start = time.perf_counter()
        batch: list[PendingFrame] = []
        with tqdm(total=total, desc='features', unit='frame', disable=not progress) as bar:
            for plan in self.plans:
                for pending in self._frames(plan, self.episodes):
                    batch.append(pending)
                    if len(batch) == self.config.batch_size:
                        self._write(batch)
                        bar.update(len(batch))
                        batch = []
                self.episodes += len(plan.episode_starts)
            if batch:
                self._write(batch)
                bar.update(len(batch))
        wall = time.perf_counter() - start
        if self.writer is None:
            raise EvaluationError('no frame could be decoded; nothing to write.')
        self.writer.save(target, self.description())
        return wall

    def description(self) -> dict[str, Any]:
        """The dataset's `info.description`: everything needed to reproduce and check it."""
        assert self.writer is not None
        layout = self.writer.layout
        config = self.config
        return {
            'format': FORMAT_NAME,
            'format_version': FORMAT_VERSION,
            'artifact': {**self.engine.model_info(), 'path': str(config.model)},
            'precision': config.precision,
            'features_dtype': config.features_dtype,
            'grid': list(layout.grid),
            'channels': layout.channels,
            'depth': (
                {'resolution': config.depth_resolution, 'shape': list(layout.depth_shape)}
                if layout.depth_shape is not None
                else None
            ),
            'batch_size': config.batch_size,
            'alignment': {'rule': ALIGNMENT_RULE, 'max_gap_ms': config.max_gap_ms},
            'signals': [
                {
                    'column': t.column,
                    'topic': t.topic,
                    'field': t.field,
                    'length': t.length,
                    'scalar': t.scalar,
                }
                for t in self.plans[0].tracks
            ],
            'episode_gap_s': config.episode_gap_s,
            'bags': [
                {
                    'path': str(plan.path),
                    'image_topic': plan.image_topic,
                    'camera_info_topic': plan.camera_info_topic,
                    'frames': len(plan.order),
                    'episodes': len(plan.episode_starts),
                }
                for plan in self.plans
            ],
            'counts': {
                'frames': self.writer.rows,
                'episodes': self.episodes,
                'unmatched': self.unmatched,
                'skipped': self.skipped,
            },
        }


def extract_features(config: FeaturesConfig, *, progress: bool = False) -> FeaturesSummary:
    """Check everything, run every frame, write OUT atomically; returns the summary.

    Nothing is written until the options, bags, topics and fields have been checked and the
    artifact loaded; the dataset is built in a staging directory beside OUT that replaces it
    only at the end (and is removed on any failure).
    """
    from pixio_ros.runtime.engine import Engine

    config.validate()
    check_writable(config.out, force=config.force)
    plans = [plan_bag(path, config) for path in config.bags]
    engine = Engine(
        config.model,
        device=config.device,
        precision=config.precision,
        backend=config.backend,
        warmup_runs=ENGINE_WARMUP_RUNS,
    )
    extraction = FeatureExtraction(config, engine, plans)
    with atomic_output(config.out, force=config.force) as target:
        wall = extraction.run(target, progress=progress)
    assert extraction.writer is not None
    frames = extraction.writer.rows
    return FeaturesSummary(
        out=config.out,
        frames=frames,
        episodes=extraction.episodes,
        unmatched=extraction.unmatched,
        skipped=extraction.skipped,
        frames_per_s=frames / wall if wall > 0 else float('inf'),
        bytes_per_frame=extraction.writer.layout.bytes_per_frame(),
    )
