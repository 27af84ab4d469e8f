"""Pose network: two frames in, the 6-DoF motion from the first camera to the second out."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from lumde_ros.models.blocks import conv_bn_act, normalize_image

# Output gain: a frame-to-frame robot motion (centimetres, hundredths of a radian) is then an
# activation of order one.
POSE_SCALE = 0.1


class PoseOutput(NamedTuple):
    """axis_angle (B, 3) radians and translation (B, 3): the motion target -> source."""

    axis_angle: torch.Tensor
    translation: torch.Tensor


def correlation(first: torch.Tensor, second: torch.Tensor, radius: int) -> torch.Tensor:
    """How well each cell of `first` (B, C, h, w) matches `second` at every offset within
    `radius` cells, (B, (2r+1)^2, h, w), offsets row by row; both are made zero-mean and
    unit-length over channels first, so a match is a cosine in [-1, 1] whatever the
    brightness (a plain product is dominated by the mean activation). Offsets that leave
    `second` match zeros."""
    first, second = (x - x.mean(1, keepdim=True) for x in (first, second))
    first, second = (x / x.norm(dim=1, keepdim=True).clamp_min(1e-6) for x in (first, second))
    height, width = first.shape[-2:]
    padded = F.pad(second, (radius,) * 4)
    side = 2 * radius + 1
    return torch.stack([(first * padded[:, :, dy:dy + height, dx:dx + width]).sum(1)
                        for dy in range(side) for dx in range(side)], dim=1)


def cell_rays(k: torch.Tensor, image_size: tuple[int, int],
              cells: tuple[int, int]) -> torch.Tensor:
    """The viewing direction (x/z, y/z) through the centre of each of `cells` (h, w) equal
    cells of an image of `image_size` (H, W) with camera matrices `k` (B, 3, 3): (B, 2, h, w)."""
    (height, width), (h, w) = image_size, cells
    u = (torch.arange(w, dtype=k.dtype, device=k.device) + 0.5) * width / w - 0.5
    v = (torch.arange(h, dtype=k.dtype, device=k.device) + 0.5) * height / h - 0.5
    x = (u[None, None, :] - k[:, 0, 2, None, None]) / k[:, 0, 0, None, None]
    y = (v[None, :, None] - k[:, 1, 2, None, None]) / k[:, 1, 1, None, None]
    return torch.stack([x.expand(-1, h, w), y.expand(-1, h, w)], dim=1)


def _halvings(c_in: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Stride-2 conv-BN-ReLU6 layers of `widths`, each halving the resolution."""
    return nn.Sequential(*(conv_bn_act(a, b, 3, stride=2)
                           for a, b in zip((c_in, *widths), widths)))


class PoseNet(nn.Module):
    """Both frames pass the same strided encoder (`features`: widths of its stride-2 layers;
    a cell is 2**len(features) pixels); the two encodings are compared at every offset within
    `radius` cells (a correlation volume, as FlowNetC and PWC-Net build), and only that
    comparison and each cell's viewing direction (`cell_rays`, from the camera matrix)
    reach the stride-2 layers (`channels`) whose average is the motion. The direction lets
    them tell a turn (the same shift everywhere) from driving forward (flow away from the
    centre) and from roll, and turn a shift in pixels into an angle: 10 pixels are twice
    the turn through a 100-degree lens that they are through a 50-degree one.

    Why not one encoder over the stacked frames, the usual pose network (and this one's
    first form): trained from scratch on 2340 simulated pairs it learned which training pair
    it saw instead of how the image moved, yaw correlation 0.9 on those pairs and about 0 on
    held-out recordings, also when supervised by odometry directly (README, #21)."""

    def __init__(self, features: tuple[int, ...] = (16, 32, 64), radius: int = 4,
                 channels: tuple[int, ...] = (64, 128, 256, 256)) -> None:
        super().__init__()
        if not features or not channels or radius < 1:
            raise ValueError("features and channels need a layer each, radius at least 1")
        self.encoder = _halvings(3, features)
        self.radius = radius
        self.motion = _halvings((2 * radius + 1) ** 2 + 2, channels)
        self.head = nn.Conv2d(channels[-1], 6, 1)
        # Millimetres at first: near the identity, but not exactly. At exactly the identity
        # every warped view equals its source, auto-masking hides every pixel, and without
        # odometry nothing would ever move the pose away from it.
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, target: torch.Tensor, source: torch.Tensor,
                k: torch.Tensor) -> PoseOutput:
        """target, source: RGB (B, 3, H, W) in [0, 1]; k: their camera matrices (B, 3, 3)."""
        first, second = self.encoder(
            torch.cat([normalize_image(target), normalize_image(source)])).chunk(2)
        matches = correlation(first, second, self.radius)
        place = cell_rays(k, target.shape[-2:], matches.shape[-2:]).to(matches.dtype)
        motion = self.head(self.motion(torch.cat([matches, place], dim=1))).mean(dim=(2, 3))
        motion = motion * POSE_SCALE
        return PoseOutput(axis_angle=motion[:, :3], translation=motion[:, 3:])
