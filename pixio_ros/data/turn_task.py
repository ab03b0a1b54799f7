"""The turn-to-target demonstration: a red target in the synthetic room, a camera turning to it.

A behaviour-cloning task that policy examples and tests can learn from a few episodes. Each
episode (one bag, one seed) places the room's boxes, a red target sphere at a random bearing and
the camera's initial heading; an expert turns the camera in place towards the target with a
proportional command, `angular.z = -TURN_GAIN * bearing` (rad/s, REP 103: positive turns left,
so a target on the right (positive optical x) gives a negative command). The camera's heading
follows the commands, so the recorded `/cmd_vel` is exactly what turned it. The rendering is the
sample bag's (`pixio_ros.data.scene`); this module holds only the task's geometry and expert.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np

from pixio_ros.data.scene import (
    CAMERA_HEIGHT_M,
    Pose,
    Scene,
    Sphere,
    build_scene,
    look_pose,
)

__all__ = [
    'TARGET_COLOR',
    'TURN_GAIN',
    'TurnEpisode',
    'bearing_to',
    'turn_episode',
]

TURN_GAIN: Final = 1.5
"""Expert gain, (rad/s) per rad of bearing."""
MAX_TURN_RATE: Final = 0.8
"""The expert's commands are clipped to +-this rad/s, as a robot's velocity limits would."""
TARGET_COLOR: Final = np.array([0.95, 0.1, 0.1])
TARGET_RADIUS_M: Final = 0.5
TARGET_DISTANCE_M: Final = (3.0, 4.5)
# Initial bearing of the target from the camera's heading, radians (inside the view of a
# RealSense-like camera, whose half field of view is ~27 degrees).
START_BEARING_RAD: Final = 0.42
HEADING_RANGE_RAD: Final = 0.35
CAMERA_PITCH_RAD: Final = 0.2
# The room around the target: boxes only, so no other sphere looks like it.
DISTRACTOR_BOXES: Final = 3


@dataclass(frozen=True)
class TurnEpisode:
    """One episode of the task.

    Attributes:
        scene: the room with its boxes and the target (the target is the last primitive).
        poses: camera-to-world pose of every frame.
        angular_z: the expert's command at every frame, rad/s (REP 103: + turns left).
        bearing: the target's bearing at every frame, rad (+ = right of the optical axis).
    """

    scene: Scene
    poses: tuple[Pose, ...]
    angular_z: np.ndarray
    bearing: np.ndarray


def bearing_to(pose: Pose, point: np.ndarray) -> float:
    """Bearing of world `point` from the camera's optical axis, rad (+ = right, optical x)."""
    local = pose.rotation.T @ (np.asarray(point, dtype=np.float64) - pose.position)
    return float(np.arctan2(local[0], local[2]))


@functools.lru_cache(maxsize=4)
def turn_episode(seed: int, frames: int, frame_period_s: float) -> TurnEpisode:
    """The room, target, camera poses and expert commands of episode `seed`.

    The heading integrates the command: yaw (about the optical y axis, down, so + turns right)
    changes by `-angular_z * frame_period_s` between frames.
    """
    rng = np.random.default_rng([seed, 17])
    room = build_scene(seed, box_count=DISTRACTOR_BOXES, sphere_count=0)
    heading = float(rng.uniform(-HEADING_RANGE_RAD, HEADING_RANGE_RAD))
    start = float(rng.uniform(-START_BEARING_RAD, START_BEARING_RAD))
    distance = float(rng.uniform(*TARGET_DISTANCE_M))
    center = np.array(
        [
            distance * np.sin(heading + start),
            CAMERA_HEIGHT_M - TARGET_RADIUS_M,
            distance * np.cos(heading + start),
        ]
    )
    scene = Scene((*room.primitives, Sphere(center, TARGET_RADIUS_M, TARGET_COLOR)))
    position = np.zeros(3)
    poses, commands, bearings = [], [], []
    yaw = heading
    for _ in range(frames):
        pose = look_pose(position, yaw=yaw, pitch=CAMERA_PITCH_RAD)
        bearing = bearing_to(pose, center)
        command = float(np.clip(-TURN_GAIN * bearing, -MAX_TURN_RATE, MAX_TURN_RATE))
        poses.append(pose)
        bearings.append(bearing)
        commands.append(command)
        yaw -= command * frame_period_s
    return TurnEpisode(scene, tuple(poses), np.array(commands), np.array(bearings))
