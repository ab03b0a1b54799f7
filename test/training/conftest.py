"""A small synthetic RGB-D bag and a tiny random encoder checkpoint for the training tests."""

from __future__ import annotations

import pytest

INPUT_SIZE = (64, 96)


@pytest.fixture(scope='session')
def bag_samples(sample_bag):
    """The bag's frames as training samples, with intrinsics."""
    from pixio_ros.data.sample_bag import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
    from pixio_ros.training import load_bag_samples

    return load_bag_samples(
        sample_bag,
        image_topic=COLOR_TOPIC,
        depth_topic=DEPTH_TOPIC,
        camera_info_topic=COLOR_INFO_TOPIC,
    )
