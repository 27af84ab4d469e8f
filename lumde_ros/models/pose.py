"""Pose network: two frames in, the 6-DoF motion from the first camera to the second out."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lumde_ros.models.blocks import conv_bn_act, normalize_image

# Output gain: a frame-to-frame robot motion (centimetres, hundredths of a radian) is then an
# activation of order one.
POSE_SCALE = 0.1


class PoseOutput(NamedTuple):
    """axis_angle (B, 3) radians and translation (B, 3): the motion target -> source."""

    axis_angle: torch.Tensor
    translation: torch.Tensor


class PoseNet(nn.Module):
    """A small strided convolutional encoder over the stacked frames, averaged to 6 numbers.
    `channels`: widths of its stride-2 layers."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128, 256, 256)) -> None:
        super().__init__()
        layers, c_prev = [], 6
        for c in channels:
            layers.append(conv_bn_act(c_prev, c, 3, stride=2))
            c_prev = c
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Conv2d(c_prev, 6, 1)
        # Millimetres at first: near the identity, but not exactly. At exactly the identity
        # every warped view equals its source, auto-masking hides every pixel, and without
        # odometry nothing would ever move the pose away from it.
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> PoseOutput:
        """target, source: RGB (B, 3, H, W) in [0, 1]."""
        x = torch.cat([normalize_image(target), normalize_image(source)], dim=1)
        motion = self.head(self.encoder(x)).mean(dim=(2, 3)) * POSE_SCALE
        return PoseOutput(axis_angle=motion[:, :3], translation=motion[:, 3:])
