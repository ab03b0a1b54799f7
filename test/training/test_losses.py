"""SiLog and the point-map loss on hand-made inputs."""

from __future__ import annotations

import math

import pytest
import torch

from pixio_ros.training import point_map_loss, silog_loss
from pixio_ros.training.losses import valid_depth


def test_silog_of_a_constant_scale_error():
    target = torch.full((1, 1, 4, 4), 2.0)
    pred = target * 3.0
    valid = torch.ones_like(target, dtype=torch.bool)
    # d = log 3 everywhere: sqrt(log(3)^2 - 0.5 * log(3)^2)
    assert silog_loss(pred, target, valid).item() == pytest.approx(math.log(3) * math.sqrt(0.5))
    assert silog_loss(pred, target, valid, lam=1.0).item() == pytest.approx(0.0, abs=1e-3)


def test_silog_ignores_invalid_pixels():
    target = torch.tensor([[[[1.0, float('nan'), 4.0, 50.0]]]])
    pred = torch.tensor([[[[1.0, 7.0, 4.0, 1.0]]]])
    valid = valid_depth(target, min_depth=0.1, max_depth=10.0)
    assert valid.tolist() == [[[[True, False, True, False]]]]
    assert silog_loss(pred, target, valid).item() == pytest.approx(0.0, abs=1e-6)


def test_point_map_loss_terms():
    depth = torch.full((1, 1, 2, 2), 2.0)
    rays = torch.tensor([0.5, -0.25]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    valid = torch.ones_like(depth, dtype=torch.bool)
    pred_depth = depth * 2.0
    outputs = {
        'depth': pred_depth,
        'points': torch.cat(((rays + 0.1) * pred_depth, pred_depth), dim=1),
        'confidence': torch.full_like(depth, 0.5),
    }
    total, silog = point_map_loss(outputs, depth, rays, valid)
    assert silog.item() == pytest.approx(math.log(2) * math.sqrt(0.5))
    # target confidence exp(-log 2 / 0.1); BCE of 0.5 against it is log 2 whatever the target.
    assert total.item() == pytest.approx(silog.item() + 0.1 + math.log(2), rel=1e-5)


def test_pixels_without_a_ray_train_depth_but_no_ray():
    """NaN rays (a pixel the lens model cannot reach) leave the ray term to the other pixels."""
    depth = torch.full((1, 1, 2, 2), 2.0)
    rays = torch.tensor([0.5, -0.25]).view(1, 2, 1, 1).repeat(1, 1, 2, 2)
    valid = torch.ones_like(depth, dtype=torch.bool)
    pred_depth = depth * 2.0
    points = torch.cat(((rays + 0.1) * pred_depth, pred_depth), dim=1)
    points[:, 0:2, 0, 0] += 0.8  # the corner's ray would be 0.4 further off ...
    rays[:, :, 0, 0] = math.nan  # ... but it has none
    outputs = {'depth': pred_depth, 'points': points, 'confidence': torch.full_like(depth, 0.5)}
    total, silog = point_map_loss(outputs, depth, rays, valid)
    assert silog.item() == pytest.approx(math.log(2) * math.sqrt(0.5))
    assert total.item() == pytest.approx(silog.item() + 0.1 + math.log(2), rel=1e-5)
