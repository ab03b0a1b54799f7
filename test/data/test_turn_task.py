"""Turn-to-target demonstrations: the expert turns the camera to the target; /cmd_vel says so."""

from __future__ import annotations

import numpy as np
import pytest

from pixio_ros.data.bag import BagReader
from pixio_ros.data.errors import DataError
from pixio_ros.data.messages import typestore
from pixio_ros.data.sample_bag import (
    CMD_VEL_TOPIC,
    COLOR_TOPIC,
    FRAME_RATE_HZ,
    SampleBagSpec,
    render_frame,
    write_episode_bags,
)
from pixio_ros.data.turn_task import TARGET_COLOR, turn_episode

SPEC = SampleBagSpec(frames=12, height=48, width=64, seed=3, task='turn-to-target')


def target_column(rgb: np.ndarray) -> float:
    """Mean image column of the target's red pixels, found from the colours alone."""
    red = (rgb[..., 0] > 120) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert red.any(), 'the target is not in view'
    return float(np.nonzero(red)[1].mean())


def test_the_camera_turns_towards_the_target_as_commanded():
    episode = turn_episode(SPEC.seed, SPEC.frames, 1.0 / FRAME_RATE_HZ)
    centre = (SPEC.width - 1) / 2
    offsets = [abs(target_column(render_frame(SPEC, i)[0]) - centre) for i in range(SPEC.frames)]
    assert offsets[-1] < offsets[0]  # the target moves towards the image centre
    # REP 103: a target right of the axis (positive bearing) gives a right turn (negative z).
    assert np.all(np.sign(episode.angular_z) == -np.sign(episode.bearing))
    assert np.all(np.abs(np.diff(np.abs(episode.bearing))) > 0)
    assert TARGET_COLOR[0] > 0.9


def test_episode_bags_carry_one_command_per_frame_at_its_stamp(tmp_path):
    bags = write_episode_bags(tmp_path / 'demos', SPEC, 2)
    assert [bag.name for bag in bags] == ['episode_0003', 'episode_0004']
    for seed, bag in zip((3, 4), bags, strict=True):
        episode = turn_episode(seed, SPEC.frames, 1.0 / FRAME_RATE_HZ)
        with BagReader(bag) as reader:
            assert reader.topics[CMD_VEL_TOPIC] == 'geometry_msgs/msg/Twist'
            stamps = [m.stamp_ns for m in reader.messages(COLOR_TOPIC)]
            commands = list(reader.raw([CMD_VEL_TOPIC]))
        assert [raw.log_time_ns for raw in commands] == stamps
        values = [typestore().deserialize_cdr(raw.data, raw.msgtype) for raw in commands]
        assert [v.angular.z for v in values] == pytest.approx(episode.angular_z.tolist())
        assert all(v.linear.x == 0.0 for v in values)


def test_an_unknown_task_and_zero_episodes_are_refused(tmp_path):
    with pytest.raises(DataError, match="--task 'dance' is unknown; choose one of none, turn-to"):
        SampleBagSpec(task='dance').check()  # type: ignore[arg-type]
    with pytest.raises(DataError, match='--episodes 0 must be at least 1'):
        write_episode_bags(tmp_path / 'none', SPEC, 0)
    assert not (tmp_path / 'none').exists()
