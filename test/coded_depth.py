"""An artifact whose depth is known exactly: the image carries it, the model mis-scales it.

A random head's depth means nothing, so scale alignment cannot be checked against it. This
artifact keeps the contract (uint8 NHWC in, a dict of outputs, embedded metadata) but its
`depth` is the millimetres coded in the image's red (high byte) and green (low byte) channels,
times a known factor: a head that is exactly right up to a known scale. Images and input size
must match, so no resize blends the coded bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MM_PER_M = 1000.0
BYTE = 256


def depth_to_coded_rgb(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8: millimetres as R (high byte), G (low byte), B = 0."""
    mm = np.clip(np.rint(np.nan_to_num(depth_m) * MM_PER_M), 0, BYTE * BYTE - 1).astype(np.uint16)
    rgb = np.zeros((*depth_m.shape, 3), dtype=np.uint8)
    rgb[..., 0] = mm >> 8
    rgb[..., 1] = mm & (BYTE - 1)
    return rgb


def coded_depth(depth_m: np.ndarray) -> np.ndarray:
    """The depth the coded image carries (metres, millimetre steps), as float64."""
    return np.rint(np.nan_to_num(depth_m) * MM_PER_M) / MM_PER_M


def coded_depth_artifact(path: Path, *, factor: float, input_size: tuple[int, int]) -> Path:
    """A TorchScript artifact at `path` whose depth is the coded depth times `factor`."""
    import torch

    from pixio_ros.model import METADATA_FILE, build_network
    from pixio_ros.model.artifact import build_metadata

    class CodedDepth(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, factor: float) -> None:
            super().__init__()
            self.net = net
            self.factor = factor

        def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
            outputs = self.net(image)
            pixels = image.float()
            millimetres = pixels[..., 0] * 256.0 + pixels[..., 1]
            outputs['depth'] = (millimetres / 1000.0 * self.factor).unsqueeze(1)
            return outputs

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_network('tiny', 'depth').eval()
    metadata = build_metadata(
        net,
        input_size=input_size,
        fmt='torchscript',
        dtype='fp32',
        sources=None,
        encoder_pretrained=False,
        head_trained=True,
    )
    scripted = torch.jit.script(CodedDepth(net, factor))
    torch.jit.save(scripted, str(path), _extra_files={METADATA_FILE: metadata.to_json()})
    return path
