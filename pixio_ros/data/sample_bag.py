"""The synthetic RGB-D sample bag: RealSense-style topics rendered from the deterministic scene.

Topics match `realsense2_camera` with `align_depth.enable:=true`: colour as rgb8 and JPEG, both
CameraInfos, and depth aligned to colour as 16UC1 millimetres (0 = no return). Colour and depth
share each header stamp, as the RealSense aligner produces them. The same arguments always give
the same bytes: stamps start at a fixed epoch and every random draw comes from `seed`. With
`distortion` the lens is a plumb_bob one: images are rendered through it and the CameraInfos carry
its coefficients, as a camera publishing raw (unrectified) images does.

With the task `turn-to-target` the room holds a red target and the camera turns in place towards
it (`pixio_ros.data.turn_task`); the bag then also has the commands that turned it on `/cmd_vel`
(geometry_msgs/Twist, unstamped, logged at each frame's header stamp), a demonstration to clone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias

import cv2
import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.data.messages import (
    camera_model_message,
    compressed_image_message,
    image_message,
    serialize,
    twist_message,
    typestore,
)
from pixio_ros.data.scene import build_scene, camera_path, realistic_camera
from pixio_ros.data.turn_task import turn_episode
from pixio_ros.files import atomic_output
from pixio_ros.runtime.camera import DISTORTION_COEFFICIENTS, CameraError, PinholeCamera

COLOR_TOPIC: Final = '/camera/color/image_raw'
COMPRESSED_TOPIC: Final = '/camera/color/image_raw/compressed'
COLOR_INFO_TOPIC: Final = '/camera/color/camera_info'
DEPTH_TOPIC: Final = '/camera/aligned_depth_to_color/image_raw'
DEPTH_INFO_TOPIC: Final = '/camera/aligned_depth_to_color/camera_info'
CMD_VEL_TOPIC: Final = '/cmd_vel'
FRAME_ID: Final = 'camera_color_optical_frame'
Task: TypeAlias = Literal['none', 'turn-to-target']
TASKS: Final[tuple[Task, ...]] = ('none', 'turn-to-target')
STORAGES: Final = ('mcap', 'sqlite3')

START_STAMP_NS: Final = 1_700_000_000 * 1_000_000_000  # fixed, so the bytes never depend on "now"
FRAME_RATE_HZ: Final = 30.0
# Receive (bag log) time lags the header stamp, as on a real camera driver.
COLOR_LOG_DELAY_NS: Final = 4_000_000
DEPTH_LOG_DELAY_NS: Final = 6_000_000
JPEG_QUALITY: Final = 90
MAX_SENSOR_RANGE_M: Final = 10.0
MM_PER_M: Final = 1000.0
# --noise: a stereo sensor's error grows with z^2; some pixels get no return.
DEPTH_NOISE_PER_M2: Final = 0.002
DEPTH_DROPOUT_FRACTION: Final = 0.02
COLOR_NOISE_STD: Final = 3.0
STRONG_DISTORTION: Final = (-0.35, 0.12, 0.001, -0.0015, -0.02)
"""plumb_bob k1 k2 p1 p2 k3 of a wide-angle lens: rays move by ~10 % of the focal length."""


@dataclass(frozen=True)
class SampleBagSpec:
    """What to render: frame count, image size, seed, sensor noise, lens distortion and task.

    Attributes:
        distortion: plumb_bob coefficients (k1 k2 p1 p2 k3) of the lens; () = none.
        task: 'none' (the walking camera) or 'turn-to-target' (a demonstration with /cmd_vel).
    """

    frames: int = 60
    height: int = 480
    width: int = 640
    seed: int = 0
    noise: bool = False
    distortion: tuple[float, ...] = ()
    task: Task = 'none'

    def check(self) -> None:
        """Raise DataError for sizes a camera could not produce."""
        if self.frames < 1:
            raise DataError(f'--frames {self.frames} must be at least 1.')
        if self.height < 8 or self.width < 8:
            raise DataError(
                f'--size {self.height}x{self.width} is too small; use at least 8x8 (HxW).'
            )
        if self.task not in TASKS:
            raise DataError(f'--task {self.task!r} is unknown; choose one of {", ".join(TASKS)}.')
        plumb_bob = DISTORTION_COEFFICIENTS['plumb_bob']
        if self.distortion and len(self.distortion) != plumb_bob:
            raise DataError(
                f'distortion {self.distortion} has {len(self.distortion)} coefficients; give '
                f'the {plumb_bob} of plumb_bob (k1 k2 p1 p2 k3) or none.'
            )

    def camera(self) -> PinholeCamera:
        """The colour (and aligned depth) camera of the bag."""
        try:
            return realistic_camera(self.height, self.width, distortion=self.distortion)
        except CameraError as err:
            raise DataError(f'distortion {self.distortion}: {err}') from err


def depth_to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres (NaN = none) -> 16UC1 millimetres, 0 where invalid or beyond sensor range."""
    valid = np.isfinite(depth_m) & (depth_m > 0) & (depth_m < MAX_SENSOR_RANGE_M)
    return np.where(valid, np.round(np.nan_to_num(depth_m) * MM_PER_M), 0).astype(np.uint16)


def render_frame(spec: SampleBagSpec, index: int) -> tuple[np.ndarray, np.ndarray, PinholeCamera]:
    """Frame `index`: (H, W, 3) uint8 RGB, (H, W) float64 metres and the camera model."""
    camera = spec.camera()
    if spec.task == 'turn-to-target':
        episode = turn_episode(spec.seed, spec.frames, 1.0 / FRAME_RATE_HZ)
        rgb, depth = episode.scene.render(episode.poses[index], camera)
    else:
        rgb, depth = build_scene(spec.seed).render(camera_path(index, spec.frames), camera)
    if spec.noise:
        rng = np.random.default_rng([spec.seed, index])
        depth = depth + rng.normal(size=depth.shape) * DEPTH_NOISE_PER_M2 * depth**2
        depth[rng.random(depth.shape) < DEPTH_DROPOUT_FRACTION] = np.nan
        noisy = rgb + rng.normal(scale=COLOR_NOISE_STD, size=rgb.shape)
        rgb = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return rgb, depth, camera


def write_sample_bag(
    path: Path,
    spec: SampleBagSpec = SampleBagSpec(),
    *,
    storage: str = 'mcap',
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Render `spec` and write it as a rosbag2 directory at `path` (atomically).

    Args:
        path: output bag directory; refused if it exists unless `force`.
        spec: frames, size, seed and noise.
        storage: 'mcap' or 'sqlite3'.
        force: replace an existing `path`.
        progress: show a tqdm bar.

    Returns:
        `path`.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from tqdm import tqdm

    spec.check()
    if storage not in STORAGES:
        raise DataError(f'--storage {storage!r} is unknown; choose one of {", ".join(STORAGES)}.')
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    period_ns = round(1e9 / FRAME_RATE_HZ)
    with atomic_output(Path(path), force=force) as staging:
        writer = Writer(staging, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        with writer:
            store = typestore()
            add = writer.add_connection
            color = add(COLOR_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
            compressed = add(COMPRESSED_TOPIC, 'sensor_msgs/msg/CompressedImage', typestore=store)
            color_info = add(COLOR_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', typestore=store)
            depth = add(DEPTH_TOPIC, 'sensor_msgs/msg/Image', typestore=store)
            depth_info = add(DEPTH_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', typestore=store)
            commands = None
            if spec.task == 'turn-to-target':
                commands = turn_episode(spec.seed, spec.frames, 1.0 / FRAME_RATE_HZ).angular_z
                cmd_vel = add(CMD_VEL_TOPIC, 'geometry_msgs/msg/Twist', typestore=store)
            for index in tqdm(
                range(spec.frames), desc='render', unit='frame', disable=not progress
            ):
                rgb, depth_m, camera = render_frame(spec, index)
                stamp = START_STAMP_NS + index * period_ns
                ok, jpeg = cv2.imencode(
                    '.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                if not ok:
                    raise DataError(f'JPEG encoding of frame {index} failed.')
                info = camera_model_message(camera, stamp, FRAME_ID)
                color_time = stamp + COLOR_LOG_DELAY_NS
                depth_time = stamp + DEPTH_LOG_DELAY_NS
                writer.write(
                    color, color_time, serialize(image_message(rgb, 'rgb8', stamp, FRAME_ID))
                )
                writer.write(
                    compressed,
                    color_time,
                    serialize(compressed_image_message(jpeg.tobytes(), stamp, FRAME_ID)),
                )
                writer.write(color_info, color_time, serialize(info))
                writer.write(
                    depth,
                    depth_time,
                    serialize(
                        image_message(depth_to_millimetres(depth_m), '16UC1', stamp, FRAME_ID)
                    ),
                )
                writer.write(depth_info, depth_time, serialize(info))
                if commands is not None:
                    command = twist_message(angular_z=commands[index])
                    writer.write(cmd_vel, stamp, serialize(command))
    return Path(path)


def episode_bag_name(seed: int) -> str:
    """The bag of episode `seed` inside a `write_episode_bags` folder."""
    return f'episode_{seed:04d}'


def write_episode_bags(
    path: Path,
    spec: SampleBagSpec,
    episodes: int,
    *,
    storage: str = 'mcap',
    force: bool = False,
    progress: bool = False,
) -> list[Path]:
    """`episodes` bags of `spec` with seeds `spec.seed`, `spec.seed + 1`, ... in folder `path`.

    One bag per episode, as recorded demonstrations usually come; the folder appears whole or
    not at all.

    Returns:
        The bags, `path/episode_<seed>`, in seed order.
    """
    from dataclasses import replace

    if episodes < 1:
        raise DataError(f'--episodes {episodes} must be at least 1.')
    spec.check()
    seeds = range(spec.seed, spec.seed + episodes)
    with atomic_output(Path(path), force=force) as staging:
        staging.mkdir()
        for seed in seeds:
            write_sample_bag(
                staging / episode_bag_name(seed),
                replace(spec, seed=seed),
                storage=storage,
                progress=progress,
            )
    return [Path(path) / episode_bag_name(seed) for seed in seeds]
