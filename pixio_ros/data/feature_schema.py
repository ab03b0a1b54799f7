"""The columns of a feature dataset: what `pixio-ros features` writes and policy code reads.

One home for the names, so the writer (`pixio-ros features`), the readers
(`pixio_ros.policy.FeatureDataset`, `train-policy`) and the README's schema table cannot drift
apart. A dataset holds one row per camera frame, in the order of the recordings given and of the
frames' stamps within each; everything here is plain strings and numbers, no heavy imports.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    'DEPTH',
    'EMBEDDING',
    'EPISODE',
    'FEATURES_DTYPES',
    'FEATURES',
    'FRAME',
    'FRAME_ID',
    'FeaturesDtype',
    'MATCHED',
    'STAMP',
    'XYZ',
    'parse_signal',
    'signal_column',
]

EPISODE: Final = 'episode_index'
"""int64: the episode of the frame, counted from 0 over all recordings given (a recording is one
episode unless `--episode-gap-s` splits it)."""
FRAME: Final = 'frame_index'
"""int64: the frame's index within its episode, from 0."""
STAMP: Final = 'timestamp_ns'
"""int64: the camera image's header stamp in nanoseconds (the stamp the node copies to outputs)."""
FRAME_ID: Final = 'frame_id'
"""string: the camera image's header frame_id."""
FEATURES: Final = 'features'
"""(h, w, C) float32 or float16: the normed patch tokens on the patch grid, row-major, exactly the
`feature` / `feature_f16` field of the node's `features` cloud."""
FeaturesDtype = Literal['float32', 'float16']
"""The value types of the features column (`--features-dtype`; the node's `features.dtype`)."""
FEATURES_DTYPES: Final = ('float32', 'float16')
EMBEDDING: Final = 'embedding'
"""(C,) float32: the mean of the normed class tokens, the node's `embedding` cloud."""
XYZ: Final = 'xyz'
"""(h, w, 3) float32: the patch centres in the camera frame, metres, NaN without depth; the x y z
fields of the node's `features` cloud."""
DEPTH: Final = 'depth'
"""(H, W) float32 metres, NaN where invalid; only with `--with-depth`."""
MATCHED: Final = 'matched'
"""bool: every aligned signal of the frame had a message within `--max-gap-ms`; where false, that
frame's signal columns hold NaN and training code skips the frame."""

SIGNAL_SEPARATOR: Final = ':'


def signal_column(topic: str, field: str) -> str:
    """The column of one aligned signal: `'/cmd_vel', 'linear.x'` -> `'cmd_vel:linear.x'`.

    The topic keeps its inner slashes (`/robot/joint_states` -> `robot/joint_states`) and loses only
    the leading one, so the column reads like the `--with TOPIC:FIELD` option that made it. Values
    are float64: a scalar field is one number per row, an array field a fixed-length list.
    """
    return f'{topic.lstrip("/")}{SIGNAL_SEPARATOR}{field}'


def parse_signal(column: str) -> tuple[str, str]:
    """`'cmd_vel:linear.x'` -> `('/cmd_vel', 'linear.x')`, the inverse of `signal_column`.

    Raises:
        ValueError: the name has no `TOPIC:FIELD` form.
    """
    topic, separator, field = column.rpartition(SIGNAL_SEPARATOR)
    if not separator or not topic or not field:
        raise ValueError(
            f'{column!r} is not a signal column; signal columns read TOPIC:FIELD, e.g. '
            "'cmd_vel:linear.x'"
        )
    return '/' + topic, field
