"""Shared inputs for evaluation tests: a small sample bag and a bag builder for odd cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer

from pixio_ros.data.messages import camera_info_message, image_message, serialize, typestore
from pixio_ros.data.sample_bag import SampleBagSpec, write_sample_bag

SAMPLE_SPEC = SampleBagSpec(frames=4, height=48, width=64, seed=2)


@pytest.fixture(scope='session')
def sample_spec() -> SampleBagSpec:
    """What `sample_bag` holds."""
    return SAMPLE_SPEC


@pytest.fixture(scope='session')
def sample_bag(tmp_path_factory) -> Path:
    """The synthetic RealSense bag, 4 frames of 48x64 (exact millimetre depth)."""
    return write_sample_bag(tmp_path_factory.mktemp('eval_sample') / 'sample', SAMPLE_SPEC)


@pytest.fixture
def make_bag(tmp_path) -> Callable[..., Path]:
    """Write a bag of (topic, encoding, stamps, array) image streams plus optional CameraInfo."""

    def make(
        streams: list[tuple[str, str, list[int], np.ndarray]],
        *,
        name: str = 'custom',
        info: tuple[str, np.ndarray] | None = None,
    ) -> Path:
        path = tmp_path / name
        store = typestore()
        with Writer(path, version=Writer.VERSION_LATEST) as writer:
            for topic, encoding, stamps, array in streams:
                conn = writer.add_connection(topic, 'sensor_msgs/msg/Image', typestore=store)
                for stamp in stamps:
                    writer.write(
                        conn, stamp, serialize(image_message(array, encoding, stamp, 'cam'))
                    )
            if info is not None:
                topic, k = info
                conn = writer.add_connection(topic, 'sensor_msgs/msg/CameraInfo', typestore=store)
                height, width = streams[0][3].shape[:2]
                writer.write(conn, 0, serialize(camera_info_message(k, height, width, 0, 'cam')))
        return path

    return make
