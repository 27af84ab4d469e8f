"""The teacher depth network: a ResNet-type encoder (plain torch) and a Monodepth2-style
decoder with skip connections and sigmoid disparity at four scales, full resolution first."""
from __future__ import annotations

import torch
from torch import nn

from lumde_ros.models.blocks import (encoder_channels, encoder_input, init_disparity_head,
                                     upsample2)
from lumde_ros.models.student import DepthNetOutput

# Residual blocks per stage for the selectable encoder depths (as ResNet-18 / ResNet-34).
ENCODER_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """Stem (7x7 stride 2, max-pool) and four residual stages: features at strides 2..32,
    `channels` = (stem, stage1..stage4). `in_channels` 6 serves the pose network."""

    def __init__(self, num_layers: int, channels: tuple[int, ...], in_channels: int = 3) -> None:
        super().__init__()
        if num_layers not in ENCODER_LAYERS:
            raise ValueError(f"num_layers {num_layers} is not one of {sorted(ENCODER_LAYERS)}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels[0], 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        stages, c_prev = [], channels[0]
        for i, (n, c) in enumerate(zip(ENCODER_LAYERS[num_layers], channels[1:])):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(*[BasicBlock(c_prev if j == 0 else c, c,
                                                     stride if j == 0 else 1)
                                          for j in range(n)]))
            c_prev = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        x = self.pool(features[0])
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _conv_elu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3), nn.ELU(inplace=True))


class TeacherDepthNet(nn.Module):
    """Encoder-decoder with disparity heads at `num_scales` scales (scale s: 1/2**s of the
    input). `near_m`/`far_m`: the depth range the sigmoid disparity spans. `floor_prior`: the
    encoder also takes the floor's depth as tf gives it. Inputs must be multiples of 32."""

    STRIDE = 32

    def __init__(self, num_layers: int = 18,
                 enc_channels: tuple[int, ...] = (64, 64, 128, 256, 512),
                 dec_channels: tuple[int, ...] = (16, 32, 64, 128, 256), num_scales: int = 4,
                 near_m: float = 0.1, far_m: float = 20.0, floor_prior: bool = False) -> None:
        super().__init__()
        self.near_m, self.far_m, self.num_scales = near_m, far_m, num_scales
        self.floor_prior = floor_prior
        self.encoder = ResNetEncoder(num_layers, enc_channels, encoder_channels(floor_prior))
        self.up0, self.up1 = nn.ModuleList(), nn.ModuleList()
        c_up = enc_channels[-1]
        for i in reversed(range(5)):
            self.up0.append(_conv_elu(c_up, dec_channels[i]))
            skip = enc_channels[i - 1] if i > 0 else 0
            self.up1.append(_conv_elu(dec_channels[i] + skip, dec_channels[i]))
            c_up = dec_channels[i]
        self.heads = nn.ModuleList(nn.Sequential(nn.ReflectionPad2d(1),
                                                 nn.Conv2d(dec_channels[s], 1, 3))
                                   for s in range(num_scales))
        for head in self.heads:
            init_disparity_head(head[1], near_m, far_m)

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None) -> DepthNetOutput:
        """image: RGB (B, 3, H, W) in [0, 1], H and W multiples of 32; prior: the floor
        prior (B, 2, H, W) for a network with `floor_prior` (see blocks.encoder_input)."""
        features = self.encoder(encoder_input(image, prior, self.floor_prior))
        x = features[-1]
        disps: list[torch.Tensor] = []
        for k, i in enumerate(reversed(range(5))):
            x = upsample2(self.up0[k](x))
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.up1[k](x)
            if i < self.num_scales:
                disps.append(torch.sigmoid(self.heads[i](x)))
        return DepthNetOutput(disps=disps[::-1], features=features)
