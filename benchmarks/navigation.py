"""Per-frame cost of scale alignment, the edge filter, scan and points/obstacles at 640x480.

    . .venv/pixio_env.sh && python benchmarks/navigation.py [--repeats 50] [--points 2000]

Everything runs side by side on the same frame in one process, medians over `--repeats`:
the products a depth frame already costs (back-projected organized points, the baseline) and
what each new step adds to it. The frame is the synthetic room rendered at 640x480 with its
exact depth divided by 1.3 (the mis-scale alignment has to undo); the reference is a sparse
LiDAR-like cloud (`--points` returns with 1 % noise and 10 % outliers) and, for the depth-image
path, the same returns as a registered sparse depth image. Numpy only: no model, no DDS.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from pixio_ros.data.scene import build_scene, camera_path, realistic_camera
from pixio_ros.runtime.alignment import (
    AlignOptions,
    ScaleTracker,
    aligned_depth,
    fit_alignment,
)
from pixio_ros.runtime.camera import backproject
from pixio_ros.runtime.cloud import CloudOptions, flying_pixels, select_points
from pixio_ros.runtime.navigation import NavigationOptions, laser_scan, obstacle_points
from pixio_ros.runtime.sparse_reference import pairs_from_depth_image, pairs_from_points
from pixio_ros.units import MS_PER_S

HEIGHT, WIDTH = 480, 640
MIS_SCALE = 1.3


def median_ms(step: Callable[[], object], repeats: int) -> float:
    """Median wall time of `step` in milliseconds (one untimed warm-up call)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * MS_PER_S)
    return statistics.median(times)


def main() -> None:
    """Print one table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--points', type=int, default=2000, help='LiDAR returns per frame')
    args = parser.parse_args()

    camera = realistic_camera(HEIGHT, WIDTH)
    _, true_depth = build_scene(0).render(camera_path(0, 60), camera)
    depth = (true_depth / MIS_SCALE).astype(np.float32)
    rng = np.random.default_rng(0)
    v = rng.integers(0, HEIGHT, args.points)
    u = rng.integers(0, WIDTH, args.points)
    z = true_depth[v, u] * (1 + rng.normal(0, 0.01, args.points))
    junk = rng.random(args.points) < 0.1
    z[junk] *= rng.uniform(0.3, 3.0, junk.sum())
    cloud = np.stack([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z], 1)
    sparse = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    sparse[v, u] = z
    rays = camera.rays()
    options = AlignOptions(mode='scale')
    navigation = NavigationOptions(camera_height=1.2, camera_pitch=0.2, range_max=10.0)

    def align_cloud(mode: str = 'scale') -> None:
        pairs = pairs_from_points(depth, cloud, camera, ())
        fit = fit_alignment(pairs, mode)  # type: ignore[arg-type]
        state = ScaleTracker().update(fit, options)
        aligned_depth(depth, state.scale, state.shift)

    def align_image() -> None:
        fit = fit_alignment(pairs_from_depth_image(depth, sparse), 'scale')
        aligned_depth(depth, fit.scale, fit.shift)

    points = backproject(depth, rays)
    rows = {
        'baseline: back-projected organized points': lambda: select_points(
            backproject(depth, rays), CloudOptions()
        ),
        f'alignment, {args.points}-point cloud, scale (project, fit, apply)': align_cloud,
        f'alignment, {args.points}-point cloud, scale_shift': lambda: align_cloud('scale_shift'),
        'alignment, registered sparse depth image, scale': align_image,
        'edge filter (points.max_depth_gradient)': lambda: flying_pixels(depth, 0.05),
        'scan (5 rows at the horizon)': lambda: laser_scan(depth, camera, navigation),
        'points/obstacles (stride 4)': lambda: obstacle_points(points, navigation),
    }
    fit = fit_alignment(pairs_from_points(depth, cloud, camera, ()), 'scale')
    print(f'640x480, medians of {args.repeats} runs; recovered scale {fit.scale:.4f} (true 1.3)')
    baseline = None
    print('| step | ms per frame | vs baseline |')
    print('|---|---|---|')
    for name, step in rows.items():
        ms = median_ms(step, args.repeats)
        baseline = baseline or ms
        print(f'| {name} | {ms:.2f} | {ms / baseline:.2f}x |')


if __name__ == '__main__':
    main()
