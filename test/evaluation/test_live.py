"""The demo's live-run summary from hand-made played / received messages."""

from __future__ import annotations

import json

import numpy as np

from pixio_ros.data.messages import image_message, msg_class, serialize
from pixio_ros.evaluation.live import summarise_live_run, summary_lines
from pixio_ros.model.artifact_format import read_metadata

IMAGE = 'sensor_msgs/msg/Image'
MS = 1_000_000


def _image(stamp: int, encoding: str = 'rgb8') -> bytes:
    array = np.zeros((2, 2, 3), np.uint8) if encoding == 'rgb8' else np.ones((2, 2), np.float32)
    return serialize(image_message(array, encoding, stamp, 'cam'))


def _diagnostics(values: dict[str, str]) -> bytes:
    key_value = msg_class('diagnostic_msgs/msg/KeyValue')
    status = msg_class('diagnostic_msgs/msg/DiagnosticStatus')(
        level=0,
        name='pixio',
        message='running',
        hardware_id='cpu',
        values=[key_value(key=k, value=v) for k, v in values.items()],
    )
    header = image_message(np.zeros((1, 1), np.float32), '32FC1', 0, '').header
    return serialize(
        msg_class('diagnostic_msgs/msg/DiagnosticArray')(header=header, status=[status])
    )


def test_summary_counts_frames_ages_diagnostics_and_random_weights(tiny_artifact):
    played = [('/cam', IMAGE, 1000 * MS, _image(10)), ('/cam', IMAGE, 1033 * MS, _image(20))]
    # What the node latches: the artifact's metadata plus sha256; a pretrained encoder with an
    # untrained head is still random-init (the one rule of pixio_ros.model.artifact_format).
    metadata = {**read_metadata(tiny_artifact()).as_dict(), 'sha256': 'ab'}
    metadata.update(encoder_pretrained=True, head_trained=False)
    info = serialize(msg_class('std_msgs/msg/String')(data=json.dumps(metadata)))
    received = [
        ('/pixio/model_info', 'std_msgs/msg/String', 900 * MS, info),
        ('/pixio/depth', IMAGE, 1030 * MS, _image(10, '32FC1')),  # 30 ms after its image
        (
            '/diagnostics',
            'diagnostic_msgs/msg/DiagnosticArray',
            1100 * MS,
            _diagnostics({'inference ms p50': '12.50', 'frames dropped': '1'}),
        ),
    ]
    stats = summarise_live_run(
        played,
        received,
        image_topic='/cam',
        depth_topic='/pixio/depth',
        model_info_topic='/pixio/model_info',
    )
    assert (stats['frames_in'], stats['frames_out']) == (2, 1)
    assert (stats['age_ms_p50'], stats['age_ms_p95']) == (30.0, 30.0)
    assert (stats['inference_ms_p50'], stats['dropped']) == (12.5, 1)
    assert stats['random_weights'] is True
    assert stats['topics'] == {'/diagnostics': 1, '/pixio/depth': 1, '/pixio/model_info': 1}
    assert summary_lines(stats)[0] == (
        'frames in: 2   frames out (depth): 1   dropped by the node: 1'
    )
