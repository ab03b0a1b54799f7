"""Depth heads on Pixio features: the paper's DPT head, a point-map head and a linear probe.

Every head takes one (B, 2D, h, w) map per block it reads (patch tokens concatenated with the
mean class token, as in the paper's evaluation code) and returns a dict of full-resolution
outputs. Parameter names of the DPT trunk follow the paper's code (``projects``,
``resize_layers``, ``scratch.layerN_rn``, ``scratch.refinenetN``, ``scratch.output_conv``) so heads
trained there map onto these by dropping their ``head.`` prefix.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor, nn

MIN_DEPTH_M = 1e-3
"""Depth floor in metres: keeps depth strictly positive where the sigmoid underflows to 0."""
DEFAULT_MAX_DEPTH_M = 10.0
POINT_MAP_CHANNELS = 4
"""Point-map head outputs: ray x/z, ray y/z, depth logit, confidence logit."""


def tokens_to_map(patch_tokens: Tensor, class_tokens: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """Build a head input: (B, h*w, D) patches + (B, 8, D) class tokens -> (B, 2D, h, w).

    The mean class token is appended to every patch token, as the paper's heads do.
    """
    batch = patch_tokens.shape[0]
    dim = patch_tokens.shape[2]
    mean_cls = class_tokens.mean(dim=1, keepdim=True).expand(-1, patch_tokens.shape[1], -1)
    joined = torch.cat((patch_tokens, mean_cls), dim=2)
    return joined.transpose(1, 2).reshape(batch, 2 * dim, grid_h, grid_w)


def metric_depth(logits: Tensor, max_depth: float, min_depth: float) -> Tensor:
    """Depth logits -> metres in [min_depth, max_depth]: sigmoid * max_depth, floored."""
    return (torch.sigmoid(logits) * max_depth).clamp(min=min_depth)


class HeadSpec(Protocol):
    """What `PixioNet` reads from any head (the heads below all have these attributes)."""

    kind: str
    in_channels: int
    block_indices: list[int]
    max_depth: float | None


class ResidualConvUnit(nn.Module):
    """ReLU -> conv3x3 -> ReLU -> conv3x3, plus the input (MiDaS / DPT, no BatchNorm)."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, F, h, w) -> (B, F, h, w)."""
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


class FeatureFusionBlock(nn.Module):
    """Adds a refined skip to the deeper path, refines, upsamples (bilinear, aligned corners)."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)

    def forward(self, path: Tensor, skip: Tensor | None, size: list[int]) -> Tensor:
        """Fuse ``path`` (B, F, h, w) with ``skip`` (same shape) and resize to ``size`` [h', w']."""
        if skip is not None:
            path = path + self.resConfUnit1(skip)
        path = self.resConfUnit2(path)
        path = F.interpolate(path, size=size, mode='bilinear', align_corners=True)
        return self.out_conv(path)


class DPTScratch(nn.Module):
    """The fusion half of DPT: per-stage 3x3 convs, four fusion blocks, the output conv.

    A class of its own (not attributes set on a bare Module) so every stage is typed; the
    attribute names are the paper's state-dict names.
    """

    def __init__(self, out_channels: tuple[int, int, int, int], features: int, num_outputs: int):
        super().__init__()

        def rn(channels: int) -> nn.Conv2d:
            return nn.Conv2d(channels, features, kernel_size=3, padding=1, bias=False)

        self.layer1_rn = rn(out_channels[0])
        self.layer2_rn = rn(out_channels[1])
        self.layer3_rn = rn(out_channels[2])
        self.layer4_rn = rn(out_channels[3])
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)
        self.output_conv = nn.Sequential(
            nn.Conv2d(features, features, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, num_outputs, kernel_size=1),
        )


class DPTHead(nn.Module):
    """The paper's DPT trunk: four blocks -> (B, num_outputs, H/2, W/2) raw maps.

    Stage i's map is projected (1x1) to ``out_channels[i]`` and resized relative to the patch
    grid (x4, x2, x1, x1/2), brought to ``features`` by a 3x3 conv and fused deep to shallow;
    the output conv runs at twice the shallowest stage, i.e. half the input resolution.

    Args:
        in_channels: Channels of each input map (2D).
        features: Width of the fusion path.
        out_channels: Projection widths of the four stages, shallow to deep.
        block_indices: The four encoder blocks this head reads, shallow to deep.
        max_depth: Largest depth the head can output, in metres.
    """

    num_outputs = 1
    """Channels of the raw output; each head on this trunk sets its own."""

    def __init__(
        self,
        in_channels: int,
        *,
        features: int,
        out_channels: tuple[int, int, int, int],
        block_indices: list[int],
        max_depth: float = DEFAULT_MAX_DEPTH_M,
    ):
        super().__init__()
        self.max_depth = float(max_depth)
        self.min_depth = MIN_DEPTH_M
        num_outputs = self.num_outputs
        self.in_channels = in_channels
        self.block_indices = list(block_indices)
        self.projects = nn.ModuleList(
            [nn.Conv2d(in_channels, channels, kernel_size=1) for channels in out_channels]
        )
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = DPTScratch(out_channels, features, num_outputs)

    def trunk(self, maps: list[Tensor]) -> Tensor:
        """Four (B, 2D, h, w) maps -> raw output (B, num_outputs, 8h, 8w)."""
        layers: list[Tensor] = []
        for stage, (project, resize) in enumerate(zip(self.projects, self.resize_layers)):  # noqa: B905
            # (TorchScript's zip has no strict=; both lists have DPT_STAGES entries.)
            layers.append(resize(project(maps[stage])))
        scratch = self.scratch
        layer1 = scratch.layer1_rn(layers[0])
        layer2 = scratch.layer2_rn(layers[1])
        layer3 = scratch.layer3_rn(layers[2])
        layer4 = scratch.layer4_rn(layers[3])
        path = scratch.refinenet4(layer4, None, layer3.shape[2:])
        path = scratch.refinenet3(path, layer3, layer2.shape[2:])
        path = scratch.refinenet2(path, layer2, layer1.shape[2:])
        double = [layer1.shape[2] * 2, layer1.shape[3] * 2]
        path = scratch.refinenet1(path, layer1, double)
        return scratch.output_conv(path)


class DPTDepthHead(DPTHead):
    """The paper's monocular depth head: metric depth = sigmoid(raw) * max_depth.

    Constructor arguments are those of `DPTHead`.
    """

    kind = 'depth'
    num_outputs = 1

    def forward(self, maps: list[Tensor], height: int, width: int) -> dict[str, Tensor]:
        """Four (B, 2D, h, w) maps -> {'depth': (B, 1, height, width) metres in (0, max_depth]}."""
        raw = F.interpolate(
            self.trunk(maps), size=[height, width], mode='bilinear', align_corners=True
        )
        depth = metric_depth(raw, self.max_depth, self.min_depth)
        return {'depth': depth}


class PointMapHead(DPTHead):
    """Camera-frame 3D points without intrinsics, on the DPT trunk.

    The four raw channels are the normalised ray (x/z, y/z), depth z (sigmoid * max_depth) and a
    confidence (sigmoid). Points are (x/z * z, y/z * z, z) in metres, camera frame (x right,
    y down, z forward). Constructor arguments are those of `DPTHead`.
    """

    kind = 'points'
    num_outputs = POINT_MAP_CHANNELS

    def forward(self, maps: list[Tensor], height: int, width: int) -> dict[str, Tensor]:
        """Four maps -> depth (B,1,H,W) m, points (B,3,H,W) m, confidence (B,1,H,W) in (0, 1)."""
        raw = F.interpolate(
            self.trunk(maps), size=[height, width], mode='bilinear', align_corners=True
        )
        ray = raw[:, 0:2]
        depth = metric_depth(raw[:, 2:3], self.max_depth, self.min_depth)
        confidence = torch.sigmoid(raw[:, 3:4])
        points = torch.cat((ray * depth, depth), dim=1)
        return {'depth': depth, 'points': points, 'confidence': confidence}


class LinearDepthHead(nn.Module):
    """The paper's linear probe: BatchNorm + 1x1 conv on the last block, bilinear to full size.

    Args:
        in_channels: Channels of the input map (2D).
        block_index: The encoder block it reads (the last).
        max_depth: Largest depth the head can output, in metres.
    """

    kind = 'linear'

    def __init__(
        self, in_channels: int, *, block_index: int, max_depth: float = DEFAULT_MAX_DEPTH_M
    ):
        super().__init__()
        self.in_channels = in_channels
        self.block_indices = [block_index]
        self.max_depth = float(max_depth)
        self.min_depth = MIN_DEPTH_M
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, 1, kernel_size=1)

    def forward(self, maps: list[Tensor], height: int, width: int) -> dict[str, Tensor]:
        """One (B, 2D, h, w) map -> {'depth': (B, 1, height, width) metres in (0, max_depth]}."""
        raw = self.conv(self.norm(maps[0]))
        raw = F.interpolate(raw, size=[height, width], mode='bilinear', align_corners=True)
        depth = metric_depth(raw, self.max_depth, self.min_depth)
        return {'depth': depth}


class NoHead(nn.Module):
    """Stands in for a head in feature-only networks: reads no block, outputs nothing."""

    kind = 'none'

    def __init__(self) -> None:
        super().__init__()
        self.in_channels = 0
        self.block_indices: list[int] = []
        self.max_depth: float | None = None

    def forward(self, maps: list[Tensor], height: int, width: int) -> dict[str, Tensor]:
        """Return an empty dict: the network adds features and embedding itself."""
        return {}
