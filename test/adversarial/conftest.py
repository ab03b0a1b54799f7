"""Fixtures of the adversarial suite: one node process per input class, reused across cases.

The raw-image node serves the image, CameraInfo, stamp, burst and parameter modules (one process
for the session); the compressed-image node serves its module. Both read a params file with two
misspelt names, so the start-up warnings of issue 12 are checked on the same processes.
"""

from __future__ import annotations

import pytest
from adversarial_helpers import DIAGNOSTICS_PERIOD_S, INPUT_SIZE, Target

# The compressed node refuses images over this size (a real decompression bomb stays small).
COMPRESSED_LIMIT_MEGAPIXELS = 1.0
MISSPELT = {'points': {'strid': 4}, 'max_rate_hx': 5.0}


def node_parameters(artifact: object, **more: object) -> dict[str, object]:
    return {
        'model_path': str(artifact),
        'device': 'cpu',
        'warmup_runs': 0,
        'diagnostics_period': DIAGNOSTICS_PERIOD_S,
        'input_qos': {'reliability': 'reliable', 'depth': 5},
        **more,
    }


@pytest.fixture(scope='session')
def peer_context():
    """The rclpy Context of the hostile peers."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture(scope='session')
def adversarial_artifact(tiny_artifact):
    return tiny_artifact(head_kind='points', input_size=INPUT_SIZE)


@pytest.fixture(scope='session')
def raw_target(peer_context, adversarial_artifact, tmp_path_factory):
    """The node on raw `image` input, with a valid CameraInfo and one processed frame."""
    with Target(
        peer_context,
        tmp_path_factory.mktemp('raw_node'),
        namespace='/adversarial_raw',
        parameters=node_parameters(adversarial_artifact),
        extra_parameters=MISSPELT,
    ) as target:
        yield target


@pytest.fixture(scope='module')
def compressed_target(peer_context, adversarial_artifact, tmp_path_factory):
    """The node on `image/compressed` input with a 1 MP decode limit."""
    with Target(
        peer_context,
        tmp_path_factory.mktemp('compressed_node'),
        namespace='/adversarial_compressed',
        parameters=node_parameters(
            adversarial_artifact,
            compressed_input=True,
            max_input_megapixels=COMPRESSED_LIMIT_MEGAPIXELS,
        ),
    ) as target:
        yield target
