"""`pixio-ros train-policy`: behaviour cloning of the example policy head on a feature dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

RECIPE_DEFAULT = "PolicyConfig's, listed in the README"
RECIPE_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ('--epochs', int, 'epochs'),
    ('--batch', int, 'examples per step'),
    ('--lr', float, 'peak learning rate'),
    ('--weight-decay', float, 'AdamW weight decay'),
    ('--dim', int, 'token / pooled width'),
    ('--heads', int, 'attention heads of the pooling'),
    ('--hidden', int, 'hidden width of the MLP'),
    ('--val-fraction', float, 'share of the episodes (the last ones) that validate'),
)
HELP = 'Train the example policy head (behaviour cloning) on a `pixio-ros features` dataset.'
DESCRIPTION = f"""{HELP}

DATASET is the folder `pixio-ros features -o` wrote; --action names its signal columns (as
`--with TOPIC:FIELD` made them: `cmd_vel:angular.z`, several comma-separated), rows with
matched false are skipped. The last --val-fraction of the episodes validate (whole episodes),
scored as the action MSE beside the mean-action baseline (predict the training mean for every
frame). RUN receives best/last .safetensors policies, their JSON, last_state.pt (for --resume),
train_log.csv and curves.png. Then:
  pixio_policy_node --ros-args -p policy_path:=RUN/best.safetensors
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options (defaults: the example's recipe)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument('dataset', type=Path, metavar='DATASET', help='feature dataset folder')
    parser.add_argument(
        '--action',
        required=True,
        help='signal column(s) forming the action, comma-separated, e.g. cmd_vel:angular.z',
    )
    parser.add_argument('-o', '--out', type=Path, required=True, help='run directory (RUN)')
    # Defaults live in PolicyConfig (one place); an option left out keeps its value there.
    for option, kind, text in RECIPE_OPTIONS:
        parser.add_argument(option, type=kind, help=f'{text} (default: {RECIPE_DEFAULT})')
    parser.add_argument(
        '--device', default='auto', help='auto (default: cuda when available), cpu or cuda[:N]'
    )
    parser.add_argument(
        '--seed', type=int, help=f'initial weights and batch order (default: {RECIPE_DEFAULT})'
    )
    parser.add_argument('--resume', action='store_true', help='continue RUN bit-for-bit')
    parser.add_argument(
        '--stop-after-epochs',
        type=int,
        help='stop after this many epochs (>= 1) of this invocation (resume later)',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bars')


def run(args: argparse.Namespace) -> int:
    """Train; print the best epoch's scores beside the baseline and how to run the policy."""
    from pixio_ros.commands.train_head import training_device, training_log_on_stderr
    from pixio_ros.policy import PolicyConfig, train_policy

    recipe = {
        name: getattr(args, name)
        for name in [option[2:].replace('-', '_') for option, _, _ in RECIPE_OPTIONS] + ['seed']
        if getattr(args, name) is not None
    }
    config = PolicyConfig(
        dataset=args.dataset,
        actions=tuple(name.strip() for name in args.action.split(',')),
        out=args.out,
        device=training_device(args.device),
        resume=args.resume,
        **recipe,
        stop_after_epochs=args.stop_after_epochs,
        progress=not args.quiet,
    )
    with training_log_on_stderr('pixio_ros.policy'):
        result = train_policy(config)
    best = result.best
    if best and best['val_mse'] == best['val_mse']:  # not NaN: there were validation episodes
        print(
            f'best epoch {best["epoch"]:.0f}: held-out action MSE {best["val_mse"]:.5f}, '
            f'mean-action baseline {best["val_baseline_mse"]:.5f} '
            f'({best["val_margin"]:.1f}x lower)'
        )
    elif best:
        print(f'epoch {best["epoch"]:.0f}: train loss {best["train_loss"]:.5f} (no validation)')
    print(
        'run it: pixio_policy_node --ros-args -p '
        f'policy_path:={result.run_dir / "best.safetensors"} (or pixio.launch.py policy:=...)'
    )
    return 0
