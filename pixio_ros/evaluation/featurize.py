"""`pixio-ros features`: every frame of recordings through the node's engine and products.

Each frame goes the node's way: decoded by the runtime codec, run by the Engine
(`infer_batch`, as the node's inference stage calls it), its depth at the node's
`depth_resolution`, the CameraInfo matched and scaled as the node does, and the features,
embedding and patch xyz built by `pixio_ros.runtime.products`. So at `--batch-size 1` (the node's
forward for one camera) the rows hold the very bits the node publishes for that frame; larger
batches change only the last bits of depth (and so of xyz) on some backends. Signals are
aligned by `pixio_ros.data.signals`; the dataset is written by `pixio_ros.data.feature_writer`
into a staging directory that replaces OUT only when complete.

Under torchrun the bags are shared between the ranks round-robin and rank 0 writes their rows
in command-line order: the dataset is the one a single process writes, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np

from pixio_ros.data import feature_schema as schema
from pixio_ros.data.bag import BagReader
from pixio_ros.data.decode import ImageCodecError, decode_color
from pixio_ros.data.feature_writer import FeatureLayout, FeatureWriter, SignalLayout
from pixio_ros.data.signals import ALIGNMENT_RULE, align_signal
from pixio_ros.distributed import (
    World,
    agreed,
    all_gather,
    check_same_inputs,
    gather_to_main,
    joined,
    rank_device,
    world_from_env,
)
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
    'extract_features_on_ranks',
]

FORMAT_NAME: Final = 'pixio_ros.features'
FORMAT_VERSION: Final = 1
ENGINE_WARMUP_RUNS: Final = 3
"""As eval: past TorchScript's profiling runs, so frames/s is the steady state."""
ROW_COLUMNS: Final = (
    schema.EPISODE,
    schema.FRAME,
    schema.STAMP,
    schema.FRAME_ID,
    schema.FEATURES,
    schema.EMBEDDING,
    schema.XYZ,
    schema.MATCHED,
)
"""The columns every row has (depth and the signals come on top, as asked)."""
BAG_COLUMN: Final = '__bag'
"""Where a batch of rows carries its bag to the writer (for errors; not written)."""
RANK_LOCAL_OPTIONS: Final = frozenset({'out', 'force'})
"""Options only rank 0 uses (it alone writes OUT); the others must agree between the ranks."""
RANK_SOURCES: Final = {
    'model_sha256': '--model (the artifact file)',
    'bags': 'the BAGs (their paths, image topics and frames)',
}


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

    def _layout(self, first: dict[str, list[Any]]) -> FeatureLayout:
        """The column shapes: the artifact's grid and channels, the first row's depth."""
        metadata = self.engine.metadata
        height, width = metadata.input_size
        tracks = self.plans[0].tracks
        depth_shape = None
        if self.config.with_depth and first.get(schema.DEPTH):
            depth_shape = tuple(int(n) for n in first[schema.DEPTH][0].shape)
        return FeatureLayout(
            grid=(height // metadata.patch_size, width // metadata.patch_size),
            channels=metadata.embed_dim,
            features_dtype=self.config.features_dtype,
            depth_shape=cast('tuple[int, int] | None', depth_shape),
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

    def _rows(self, batch: list[PendingFrame]) -> dict[str, list[Any]]:
        """One forward pass over `batch` (frames of one bag): its rows, one list per column."""
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
        columns: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        if self.config.with_depth:
            columns[schema.DEPTH] = []
        for track in self.plans[0].tracks:
            columns[track.column] = []
        columns[BAG_COLUMN] = [batch[0].bag]
        for pending, prediction in zip(batch, predictions, strict=True):
            products = build_products(
                prediction, pending.rgb, pending.camera, self.wanted, self.options
            )
            assert products.features is not None and products.embedding is not None
            if self.config.with_depth and products.depth is not None:
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
        return columns

    def bag_rows(self, index: int) -> list[dict[str, list[Any]]]:
        """The rows of bag ``index``, in the batches they are written in.

        A batch never spans two bags, so a bag's rows (and the bits of a batched forward) do
        not depend on which bags a process handles; its episodes are numbered after those of
        the bags before it on the command line.
        """
        plan = self.plans[index]
        first_episode = sum(len(before.episode_starts) for before in self.plans[:index])
        batches: list[dict[str, list[Any]]] = []
        batch: list[PendingFrame] = []
        for pending in self._frames(plan, first_episode):
            batch.append(pending)
            if len(batch) == self.config.batch_size:
                batches.append(self._rows(batch))
                batch = []
        if batch:
            batches.append(self._rows(batch))
        return batches

    def append(self, columns: dict[str, list[Any]]) -> None:
        """Write one batch of rows (the first fixes the layout: every depth must match it)."""
        (bag,) = columns.pop(BAG_COLUMN)
        if self.writer is None:
            self.writer = FeatureWriter(self._scratch_dir(), self._layout(columns))
        layout = self.writer.layout
        if layout.depth_shape is not None:
            for stamp, depth in zip(columns[schema.STAMP], columns[schema.DEPTH], strict=True):
                if depth.shape != layout.depth_shape:
                    raise EvaluationError(
                        f'the frame at {stamp} ns in {bag} is {depth.shape[1]}x'
                        f'{depth.shape[0]}, the first was {layout.depth_shape[1]}x'
                        f'{layout.depth_shape[0]}; --with-depth needs one image size: pass '
                        '--depth-resolution input.'
                    )
        self.writer.write_batch(columns)

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            raise EvaluationError('the staging directory is set by run(); call run().')
        return self._scratch

    def run(self, target: Path | None, world: World, *, progress: bool) -> float:
        """Extract every frame; rank 0 writes the dataset to ``target``; the wall seconds.

        The bags are shared round-robin (`pixio_ros.distributed.shard`'s rule): in round k rank
        r extracts bag k * N + r, and rank 0 writes the round's bags in command-line order, so
        the dataset is the one a single process writes. Rank 0 holds one round's rows.
        """
        from tqdm import tqdm

        self._check_signal_shapes()
        self._scratch = None if target is None else target.parent
        total = sum(len(plan.order) for plan in self.plans)
        start = time.perf_counter()
        shown = progress and world.is_main
        with tqdm(total=total, desc='features', unit='frame', disable=not shown) as bar:
            for first in range(0, len(self.plans), world.size):
                index = first + world.rank
                with agreed(world, 'extracting its bags'):
                    mine = self.bag_rows(index) if index < len(self.plans) else []
                parts = gather_to_main(mine, world, 'collecting the rows')
                with agreed(world, 'writing the rows'):
                    for bag in parts or []:  # rank order is bag order within a round
                        for columns in bag:
                            self.append(columns)
                            bar.update(len(columns[schema.STAMP]))
        wall = time.perf_counter() - start
        counts = all_gather((self.skipped, self.unmatched), world, 'counting the frames')
        self.skipped = sum(skipped for skipped, _ in counts)
        self.unmatched = sum(unmatched for _, unmatched in counts)
        self.episodes = sum(len(plan.episode_starts) for plan in self.plans)
        with agreed(world, 'writing the dataset'):
            if world.is_main:
                if self.writer is None:
                    raise EvaluationError('no frame could be decoded; nothing to write.')
                assert target is not None
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
    only at the end (and is removed on any failure). One process; `extract_features_on_ranks`
    is the same under torchrun.
    """
    summary = _extract(config, World(), progress=progress)
    assert summary is not None  # rank 0 of 1 always writes
    return summary


def extract_features_on_ranks(
    config: FeaturesConfig, *, progress: bool = False
) -> FeaturesSummary | None:
    """`extract_features` on the ranks torchrun started (one process without torchrun).

    Every rank plans every bag and extracts its share of them; rank 0 writes the dataset a
    single process writes and returns the summary, the other ranks return None.
    """
    import torch

    world = world_from_env()
    device = rank_device(config.device, world)  # 'auto' stays only on one process
    with joined(torch.device('cpu' if device == 'auto' else device), world):
        return _extract(config, world, progress=progress)


def _rank_inputs(
    config: FeaturesConfig, engine: Engine, plans: Sequence[BagPlan]
) -> dict[str, Any]:
    """What every rank must share: the options, the artifact and the frames of every bag."""
    options = {k: v for k, v in asdict(config).items() if k not in RANK_LOCAL_OPTIONS}
    bags = [
        {
            'path': str(plan.path),
            'image_topic': plan.image_topic,
            'frames': len(plan.order),
            'stamps': hashlib.sha256(plan.stamps.tobytes()).hexdigest(),
        }
        for plan in plans
    ]
    return {**options, 'model_sha256': engine.sha256, 'bags': bags}


def _extract(config: FeaturesConfig, world: World, *, progress: bool) -> FeaturesSummary | None:
    from pixio_ros.runtime.engine import Engine

    with agreed(world, 'checking the inputs'):
        config.validate()
        if world.is_main:
            check_writable(config.out, force=config.force)
        plans = [plan_bag(path, config) for path in config.bags]
        engine = Engine(
            config.model,
            device=rank_device(config.device, world),
            precision=config.precision,
            backend=config.backend,
            warmup_runs=ENGINE_WARMUP_RUNS,
        )
        extraction = FeatureExtraction(config, engine, plans)
    check_same_inputs(_rank_inputs(config, engine, plans), world, sources=RANK_SOURCES)
    with contextlib.ExitStack() as stack:
        target = None
        if world.is_main:
            target = stack.enter_context(atomic_output(config.out, force=config.force))
        wall = extraction.run(target, world, progress=progress)
    if not world.is_main:
        return None
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
