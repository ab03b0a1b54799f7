"""PLY output read back with open3d (an independent reader)."""

from __future__ import annotations

import numpy as np

from pixio_ros.data.ply import write_ply


def test_ply_round_trips_through_open3d(tmp_path):
    import open3d as o3d

    points = np.array([[[0.0, 1.0, 2.0], [np.nan, 0.0, 1.0]], [[3.0, -1.0, 0.5], [1, 1, 1]]])
    colors = np.array([[[255, 0, 0], [0, 0, 0]], [[0, 255, 0], [0, 0, 255]]], np.uint8)
    path = tmp_path / 'cloud.ply'
    assert write_ply(path, points, colors) == 3
    cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(cloud.points), [[0, 1, 2], [3, -1, 0.5], [1, 1, 1]])
    np.testing.assert_allclose(np.asarray(cloud.colors), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
