"""`pixio-ros eval` end to end: validate, plan, replay, write the results atomically.

Under torchrun every rank plans the same frames and replays its share; rank 0 merges the
results in frame order and alone writes DIR, so the files are those of one process (timings
aside: they are measured, not computed).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from pixio_ros import __version__
from pixio_ros.data.bag import BagReader
from pixio_ros.data.datasets import Dataset, open_dataset
from pixio_ros.distributed import (
    World,
    agreed,
    check_same_inputs,
    gather_to_main,
    joined,
    rank_device,
    world_from_env,
)
from pixio_ros.evaluation.config import EvalConfig
from pixio_ros.evaluation.errors import EvaluationError
from pixio_ros.evaluation.output_bag import PixioBagWriter
from pixio_ros.evaluation.plan import EvaluationPlan, build_plan
from pixio_ros.evaluation.plots import plot_error_histogram, plot_metrics_over_time, plot_panel
from pixio_ros.evaluation.predictors import EnginePredictor, Predictor, TopicPredictor
from pixio_ros.evaluation.replay import FrameView, Replayer, ReplayOutput, merge_replays
from pixio_ros.evaluation.report import (
    METRICS_FILE,
    PER_FRAME_FILE,
    PLOT_FILES,
    REPORT_FILE,
    write_metrics_json,
    write_per_frame_csv,
    write_report_md,
)
from pixio_ros.evaluation.rerun_recording import RerunRecorder, import_rerun
from pixio_ros.evaluation.sparse_alignment import (
    ALIGNMENT_CSV,
    ALIGNMENT_PLOT,
    SparseAligner,
    plot_scale_over_time,
)
from pixio_ros.evaluation.summary import summarise
from pixio_ros.files import atomic_output, check_writable
from pixio_ros.model.artifact_format import random_init_parts
from pixio_ros.runtime.alignment import AlignMode, AlignOptions
from pixio_ros.units import MS_PER_S

if TYPE_CHECKING:
    from pixio_ros.runtime.engine import Engine

ENGINE_WARMUP_RUNS = 3
RANK_LOCAL_OPTIONS = frozenset({'out', 'force'})
"""Options only rank 0 uses (it alone writes DIR); the others must agree between the ranks."""
PLAN_SOURCES = {
    'model_sha256': '--model (the artifact file)',
    'frame_counts': 'the frames at PATH and the pairing options',
    'frame_stamps': 'the bag at PATH and the pairing options',
    'bag_contents': 'the bag at PATH',
    'dataset_contents': 'the dataset at PATH',
}


def _model_info(config: EvalConfig, engine: Engine | None) -> dict[str, Any]:
    if engine is None:
        return {'prediction_topic': config.prediction_topic}
    metadata = engine.metadata
    return {
        'path': str(config.model),
        'sha256': engine.sha256,
        'model_size': metadata.size,
        'head_kind': metadata.head_kind,
        'input_size': list(engine.input_size),
        'device': str(engine.device),
        'backend': engine.backend_info.summary(),
        'random_weights': bool(random_init_parts(metadata)),
        'metadata': engine.model_info(),
    }


def _load_predictor(config: EvalConfig, world: World) -> tuple[Predictor, Engine | None]:
    if config.model is None:
        return TopicPredictor(), None
    from pixio_ros.runtime.engine import Engine

    # TorchScript's profiling executor specialises the graph over the first calls; warm up past
    # them so the reported inference times are the steady state.
    engine = Engine(
        config.model,
        device=rank_device(config.device, world),  # GPU LOCAL_RANK under torchrun
        warmup_runs=ENGINE_WARMUP_RUNS,
        backend=config.backend,
    )
    return EnginePredictor(engine, extras=config.write_bag is not None), engine


def _resolved(requested: str) -> str:
    """'auto' as a torch device name: cuda when torch sees a GPU, else cpu."""
    import torch

    if requested != 'auto':
        return requested
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def run_evaluation(config: EvalConfig, *, progress: bool = False) -> dict[str, Any]:
    """Evaluate and write DIR (and the optional bag); returns the metrics.json document.

    The frames come from a bag, or from a public dataset when `config.dataset` is set. Nothing
    is written until every input has been checked; results are assembled under a temporary
    name and moved into place at the end, so a failure leaves old outputs untouched. One
    process; `run_evaluation_on_ranks` is the same under torchrun.
    """
    document = _evaluate(config, World(), progress=progress)
    assert document is not None  # rank 0 of 1 always writes
    return document


def run_evaluation_on_ranks(config: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
    """`run_evaluation` on the ranks torchrun started (one process without torchrun).

    Every rank replays its share of the frames; rank 0 merges, writes and returns the
    document, the other ranks return None.
    """
    import torch

    world = world_from_env()
    with joined(torch.device(rank_device(_resolved(config.device), world)), world):
        return _evaluate(config, world, progress=progress)


def _evaluate(config: EvalConfig, world: World, *, progress: bool) -> dict[str, Any] | None:
    with agreed(world, 'checking the inputs'):
        config.validate()
        if world.distributed and config.write_bag is not None:
            raise EvaluationError(
                '--write-bag is written by one process; run eval without torchrun to write '
                'the prediction bag.'
            )
        if world.distributed and config.rerun is not None:
            raise EvaluationError(
                '--rerun is written by one process; run eval without torchrun to record it.'
            )
        if world.distributed and config.align_to is not None:
            raise EvaluationError(
                '--align-to follows the scale from frame to frame, which needs every frame in '
                'one process; run eval with --align-to without torchrun.'
            )
        if world.is_main:
            check_writable(config.out, force=config.force)
        bag_inside_out = _inside(config.write_bag, config.out)
        if config.write_bag is not None and bag_inside_out is None:
            check_writable(config.write_bag, force=config.force)
        if config.rerun is not None:
            import_rerun()  # before the model loads: a missing extra is one line
            if _inside(config.rerun, config.out) is None:
                check_writable(config.rerun, force=config.force)
    if config.dataset is not None:
        return _run_on_dataset(config, bag_inside_out, world, progress=progress)
    with BagReader(config.bag) as bag:
        with agreed(world, 'planning and loading the model'):
            plan = build_plan(bag, config)
            aligner = None
            if config.align_to is not None:  # checked before the model loads
                mode = cast(AlignMode, config.align_to_mode)
                aligner = SparseAligner(bag, config.align_to, AlignOptions(mode=mode))
            predictor, engine = _load_predictor(config, world)
        plan_inputs = {**_frame_inputs(plan), 'bag_contents': bag.info()}
        check_same_inputs(_rank_inputs(config, engine, plan_inputs), world, sources=PLAN_SOURCES)
        with _outputs(config, bag_inside_out, world) as (out_dir, writer, recorder):
            replayer = Replayer(config, plan, predictor, writer, aligner, world, recorder)
            with agreed(world, 'replaying its frames'):
                mine = replayer.run(bag, progress=progress)
            replay = _merged(replayer, mine, world)
            if replay is None:
                return None
            return _finish(
                config,
                replayer,
                replay,
                plan.counts,
                {'bag': bag.info()},
                engine,
                out_dir,
                lambda numbers: replayer.views(bag, numbers),
            )


def _rank_inputs(
    config: EvalConfig, engine: Engine | None, plan_inputs: dict[str, Any]
) -> dict[str, Any]:
    """What every rank must share: the options, the model file and the frames it planned.

    Ranks that planned other frames would replay shares of different lists, and rank 0 would
    merge results that do not belong together.
    """
    options = {k: v for k, v in config.to_json().items() if k not in RANK_LOCAL_OPTIONS}
    return {**options, 'model_sha256': None if engine is None else engine.sha256, **plan_inputs}


def _frame_inputs(plan: EvaluationPlan) -> dict[str, Any]:
    """The plan's pairing counts and a digest of its frames (stamps and message indices)."""
    digest = hashlib.sha256()
    for frame in plan.frames:
        indices = sorted(frame.indices.items())
        digest.update(f'{frame.number} {frame.stamp_ns} {indices}\n'.encode())
    return {'frame_counts': plan.counts, 'frame_stamps': digest.hexdigest()}


def _merged(replayer: Replayer, mine: ReplayOutput, world: World) -> ReplayOutput | None:
    """All ranks' replays merged on rank 0 (None on the others); the one replay on one process."""
    parts = gather_to_main(mine, world, 'merging the replays')
    if parts is None:
        return None
    replay = merge_replays(parts)
    replayer.gt_sizes = set(replay.gt_sizes)
    return replay


def _run_on_dataset(
    config: EvalConfig, bag_inside_out: Path | None, world: World, *, progress: bool
) -> dict[str, Any] | None:
    """`run_evaluation` over a dataset's samples (lazy: one frame in memory at a time)."""
    assert config.dataset is not None
    with agreed(world, 'opening the dataset'):
        dataset = _open_dataset(config)
    samples = dataset.samples[: config.max_frames] if config.max_frames else dataset.samples
    counts = {'listed': len(dataset.samples), 'selected': len(samples)}
    with agreed(world, 'loading the model'):
        predictor, engine = _load_predictor(config, world)
    dataset_inputs = {'frame_counts': counts, 'dataset_contents': dataset.describe()}
    check_same_inputs(_rank_inputs(config, engine, dataset_inputs), world, sources=PLAN_SOURCES)
    with _outputs(config, bag_inside_out, world) as (out_dir, writer, recorder):
        replayer = Replayer(config, None, predictor, writer, world=world, recorder=recorder)
        with agreed(world, 'replaying its frames'):
            mine = replayer.run_samples(samples, progress=progress)
        replay = _merged(replayer, mine, world)
        if replay is None:
            return None
        return _finish(
            config,
            replayer,
            replay,
            counts,
            {'dataset': dataset.describe()},
            engine,
            out_dir,
            lambda numbers: replayer.sample_views(samples, numbers),
        )


def _open_dataset(config: EvalConfig) -> Dataset:
    assert config.dataset is not None
    return open_dataset(
        config.dataset,
        config.bag,
        split=config.split,
        data_root=config.data_root,
        depth_root=config.depth_root,
        max_difference_s=config.stamp_tolerance_ms / MS_PER_S if config.dataset == 'tum' else None,
    )


@contextlib.contextmanager
def _outputs(
    config: EvalConfig, bag_inside_out: Path | None, world: World
) -> Iterator[tuple[Path, PixioBagWriter | None, RerunRecorder | None]]:
    """(staging result directory, bag writer, Rerun recorder), moved into place on success.

    On ranks other than 0 nothing is created: the path yielded is never written.
    """
    if not world.is_main:
        yield config.out, None, None
        return
    with contextlib.ExitStack() as stack:
        out_dir = stack.enter_context(atomic_output(config.out, force=config.force))
        out_dir.mkdir()
        writer = None
        if config.write_bag is not None:
            if bag_inside_out is not None:
                bag_path = out_dir / bag_inside_out
                bag_path.parent.mkdir(parents=True, exist_ok=True)
            else:
                bag_path = stack.enter_context(atomic_output(config.write_bag, force=config.force))
            writer = stack.enter_context(
                PixioBagWriter(bag_path, single_file=config.write_bag_single_file)
            )
        recorder = None
        if config.rerun is not None:
            recorder = stack.enter_context(
                RerunRecorder(_staged(stack, config.rerun, out_dir, config), name=str(config.bag))
            )
        yield out_dir, writer, recorder


def _finish(
    config: EvalConfig,
    replayer: Replayer,
    replay: ReplayOutput,
    counts: dict[str, int],
    source: dict[str, Any],
    engine: Engine | None,
    out_dir: Path,
    views: Callable[[list[int]], dict[int, FrameView]],
) -> dict[str, Any]:
    """Summarise, then write metrics.json, per_frame.csv, the plots and report.md."""
    summary = summarise(replay.frames, counts, align=config.align, wall_s=replay.wall_s)
    summary['speed']['processes'] = replayer.world.size
    if summary['frames']['evaluated'] == 0:
        details = sorted({f.detail for f in replay.frames if f.detail})
        checks = '' if config.dataset else 'the topics, encodings and '
        raise EvaluationError(
            f'no frame could be evaluated (skipped: {summary["frames"]["skipped"]})'
            + (f'; first problem: {details[0]}' if details else '')
            + f'; check {checks}--min-depth/--max-depth.'
        )
    document: dict[str, Any] = {
        'summary': summary,
        'config': config.to_json(),
        'model': _model_info(config, engine),
        **source,
    }
    if replayer.protocol is not None:
        document['protocol'] = replayer.protocol.describe(replayer.gt_sizes)
    document['pixio_ros_version'] = __version__
    plots = _write_plots(views, replay, summary, config, out_dir)
    if replayer.aligner is not None:
        document['sparse_alignment'] = replayer.aligner.summary()
        replayer.aligner.write_csv(out_dir / ALIGNMENT_CSV)
        plot_scale_over_time(replayer.aligner, out_dir / ALIGNMENT_PLOT)
        plots['alignment'] = ALIGNMENT_PLOT
    write_metrics_json(document, out_dir / METRICS_FILE)
    write_per_frame_csv(replay.frames, out_dir / PER_FRAME_FILE)
    write_report_md(document, plots, out_dir / REPORT_FILE)
    return document


def _write_plots(
    views: Callable[[list[int]], dict[int, FrameView]],
    replay: ReplayOutput,
    summary: dict[str, Any],
    config: EvalConfig,
    out_dir: Path,
) -> dict[str, str]:
    plot_metrics_over_time(replay.frames, out_dir / PLOT_FILES['over_time'])
    plot_error_histogram(np.asarray(replay.histogram), out_dir / PLOT_FILES['histogram'])
    written = {'over_time': PLOT_FILES['over_time'], 'histogram': PLOT_FILES['histogram']}
    picks = summary['best_median_worst']
    frame_views = views(sorted(set(picks.values())))
    for key, number in picks.items():
        if number in frame_views:
            title = (
                f'{key} frame #{number}: AbsRel '
                f'{replay.frames[_index(replay.frames, number)].metrics["abs_rel"]:.4f}'
            )
            plot_panel(frame_views[number], title, config.max_depth, out_dir / PLOT_FILES[key])
            written[key] = PLOT_FILES[key]
    return written


def _staged(stack: contextlib.ExitStack, path: Path, out_dir: Path, config: EvalConfig) -> Path:
    """Where to write the output file `path`: inside the staged results, or staged beside it."""
    inside = _inside(path, config.out)
    if inside is None:
        return stack.enter_context(atomic_output(path, force=config.force))
    staged = out_dir / inside
    staged.parent.mkdir(parents=True, exist_ok=True)
    return staged


def _inside(path: Path | None, directory: Path) -> Path | None:
    """`path` relative to `directory` when it lies inside it (written with the results)."""
    if path is None:
        return None
    try:
        return path.resolve().relative_to(directory.resolve())
    except ValueError:
        return None


def _index(frames: list[Any], number: int) -> int:
    return next(i for i, frame in enumerate(frames) if frame.number == number)
