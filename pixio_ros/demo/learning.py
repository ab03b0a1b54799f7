"""The demo's learning half: synthetic bags, a head trained on a frozen random encoder, scores.

No Pixio weights are downloaded, so the encoder is random. A head can still learn a good deal
on top of it: the random transformer's features keep each patch's position and colour, and
the synthetic rooms share their layout (floor near at the bottom, back wall far at the top).
The head is trained on one room (the training bag, seed 1) and scored on another (the
held-out bag, seed 0: other boxes and spheres), next to the same head before training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from pixio_ros.training.budget import BudgetedTraining

if TYPE_CHECKING:
    from pixio_ros.training.config import HeadKind

__all__ = [
    'PRESETS',
    'DemoPreset',
    'LearnedHead',
    'compare_heads',
    'learn_head',
    'random_encoder',
    'sample_bag',
]

LOGGER = logging.getLogger(__name__)
TRAIN_SEED: Final = 1
HELD_OUT_SEED: Final = 0
ENCODER_SEED: Final = 0
HEAD_SEED: Final = 0
MAX_DEPTH_M: Final = 10.0
COMPARED_METRICS: Final = ('abs_rel', 'delta1', 'rmse')


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of one demo flavour.

    Attributes:
        model_size: encoder size (random weights).
        head_kind: the head trained.
        input_size: (H, W) the head trains at and the artifact resizes to.
        bag_size: (H, W) of both synthetic bags.
        frames: frames of the held-out bag (played into the node).
        train_frames: frames of the training bag.
        budget_s: wall-clock budget of the training (feature caching included).
        max_epochs: epochs planned at most (a fast machine stops there).
        lr: peak learning rate.
        min_epochs: epochs trained even if the budget runs out first (a loaded machine).
        batch: examples per step.
    """

    model_size: str
    head_kind: str
    input_size: tuple[int, int]
    bag_size: tuple[int, int]
    frames: int
    train_frames: int
    budget_s: float
    max_epochs: int
    lr: float
    min_epochs: int
    batch: int = 4


# The tiny encoder (4 blocks, 64 wide) with the paper's DPT depth head: on two CPU cores a
# minute trains it well past the untrained head. A real Pixio size would spend that minute
# encoding a few dozen frames, and its DPT head steps take seconds each on a CPU. The learning
# rate is 20x the paper's 1e-4 because the demo trains for a minute, not for 60 epochs on GPUs.
# --tiny is the same pipeline at 64x96 for CI: 4-6 epochs of 12 steps, seconds on an idle
# machine (every epoch also writes checkpoints and a plot, so its epochs are few and long).
PRESETS: Final = {
    'default': DemoPreset(
        'tiny',
        'depth',
        (192, 256),
        (240, 320),
        90,
        60,
        budget_s=60.0,
        max_epochs=40,
        lr=2e-3,
        min_epochs=3,
    ),
    'tiny': DemoPreset(
        'tiny',
        'depth',
        (64, 96),
        (48, 64),
        20,
        24,
        budget_s=60.0,
        max_epochs=6,
        lr=2e-3,
        min_epochs=4,
        batch=2,
    ),
}


def sample_bag(cache: Path, preset: DemoPreset, *, seed: int, frames: int) -> Path:
    """The synthetic RGB-D bag of ``seed`` at the preset's size, written into ``cache`` once."""
    from pixio_ros.data.sample_bag import SampleBagSpec, write_sample_bag

    height, width = preset.bag_size
    path = cache / f'sample_{height}x{width}_{frames}f_seed{seed}'
    if not path.exists():
        print(f'writing the synthetic RGB-D bag {path} ...')
        spec = SampleBagSpec(frames=frames, height=height, width=width, seed=seed)
        write_sample_bag(path, spec, progress=True)
    return path


def random_encoder(cache: Path, size: str) -> Path:
    """A random-init encoder of ``size`` saved as an official-style .pth, once per cache."""
    path = cache / f'pixio_{size}_random_seed{ENCODER_SEED}.pth'
    if not path.exists():
        import torch

        from pixio_ros.files import write_atomically
        from pixio_ros.model import PixioEncoder, get_size

        with torch.random.fork_rng():
            torch.manual_seed(ENCODER_SEED)
            encoder = PixioEncoder(get_size(size))
        write_atomically(path, lambda temp: torch.save(encoder.state_dict(), temp))
    return path


@dataclass(frozen=True)
class LearnedHead:
    """What `learn_head` made.

    Attributes:
        trained: artifact with the trained head.
        untrained: artifact with the same head before training (its initial weights).
        training: the budgeted run (epochs, timings; checkpoints in its run_dir).
        train_bag: the bag it was trained on.
        train_frames: frames trained on.
    """

    trained: Path
    untrained: Path
    training: BudgetedTraining
    train_bag: Path
    train_frames: int


def _export(
    encoder_path: Path, head: Any, path: Path, input_size: tuple[int, int], *, trained: bool
) -> Path:
    from pixio_ros.model import PixioNet, export_artifact, load_encoder_checkpoint

    encoder = load_encoder_checkpoint(encoder_path)
    export_artifact(
        PixioNet(encoder, head).eval(),
        path,
        input_size=input_size,
        sources={'encoder': encoder_path},
        encoder_pretrained=False,
        head_trained=trained,
    )
    return path


def learn_head(
    preset: DemoPreset,
    cache: Path,
    out: Path,
    *,
    device: str = 'cpu',
    say: Callable[[str], None] = print,
) -> LearnedHead:
    """Train the preset's head on the random encoder within its budget; export both heads.

    Writes ``out/training`` (the run directory), ``out/trained.ts`` and ``out/untrained.ts``.
    """
    import torch

    from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
    from pixio_ros.model import build_head, get_size, load_head_checkpoint
    from pixio_ros.training import TrainConfig, load_bag_samples
    from pixio_ros.training.budget import train_within_budget
    from pixio_ros.training.run_files import BEST_HEAD

    train_bag = sample_bag(cache, preset, seed=TRAIN_SEED, frames=preset.train_frames)
    encoder = random_encoder(cache, preset.model_size)
    samples = load_bag_samples(
        train_bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        camera_info_topic=COLOR_INFO_TOPIC,
    )
    height, width = preset.input_size
    say(
        f'training a {preset.head_kind} head on the frozen RANDOM {preset.model_size} encoder '
        f'for at most {preset.budget_s:.0f} s: {len(samples)} frames of a synthetic room '
        f'(seed {TRAIN_SEED}) at {height}x{width}, features cached once ...'
    )
    config = TrainConfig(
        encoder=encoder,
        head_kind=cast('HeadKind', preset.head_kind),
        out=out / 'training',
        input_size=preset.input_size,
        epochs=preset.max_epochs,
        batch=preset.batch,
        lr=preset.lr,
        max_depth=MAX_DEPTH_M,
        device=device,
        crop=False,
        seed=HEAD_SEED,
        progress=False,
    )
    training = train_within_budget(
        config,
        samples,
        [],
        budget_s=preset.budget_s,
        max_epochs=preset.max_epochs,
        min_epochs=preset.min_epochs,
    )
    rows = training.result.history
    say(
        f'trained {training.epochs_done} epochs in {training.seconds:.0f} s (features cached in '
        f'{training.cache_s:.1f} s); training SiLog {rows[0]["train_silog"]:.3f} -> '
        f'{rows[-1]["train_silog"]:.3f}'
    )
    with torch.random.fork_rng():
        torch.manual_seed(HEAD_SEED)  # the head the training started from (HeadTrainer's seed)
        initial = build_head(get_size(preset.model_size), preset.head_kind, max_depth=MAX_DEPTH_M)
    untrained = _export(encoder, initial, out / 'untrained.ts', preset.input_size, trained=False)
    head, _ = load_head_checkpoint(training.result.run_dir / BEST_HEAD)
    trained = _export(encoder, head, out / 'trained.ts', preset.input_size, trained=True)
    return LearnedHead(trained, untrained, training, train_bag, len(samples))


def compare_heads(
    held_out: Path, artifacts: dict[str, Path], out: Path, *, device: str = 'cpu'
) -> dict[str, dict[str, float]]:
    """Score each artifact on every frame of ``held_out`` (metric depth, no alignment).

    Each run's results go to ``out/NAME``; returns NAME -> {abs_rel, delta1, rmse, frames}.
    """
    import warnings

    from pixio_ros.data.sample_bag import COLOR_TOPIC, DEPTH_TOPIC
    from pixio_ros.evaluation.config import EvalConfig
    from pixio_ros.evaluation.run import run_evaluation

    scores = {}
    for name, artifact in artifacts.items():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the random encoder is announced by the demo itself
            document = run_evaluation(
                EvalConfig(
                    bag=held_out,
                    image_topic=COLOR_TOPIC,
                    depth_topic=DEPTH_TOPIC,
                    model=artifact,
                    out=out / name,
                    align='none',
                    device=device,
                )
            )
        summary = document['summary']
        scores[name] = {key: float(summary['depth'][key]) for key in COMPARED_METRICS}
        scores[name]['frames'] = int(summary['frames']['evaluated'])
    return scores
