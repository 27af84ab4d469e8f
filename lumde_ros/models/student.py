"""The light-weight student depth network: inverted-residual encoder, separable-conv decoder."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lumde_ros.models.blocks import (BilinearUp2, InvertedResidual, conv_bn_act,
                                     encoder_channels, encoder_input, init_disparity_head,
                                     separable_conv, upsample2)


class DepthNetOutput(NamedTuple):
    """What every depth network returns.

    disps: sigmoid disparities in [0, 1], finest first; scale s is 1/2**s of the input size.
    features: encoder features, finest first (for pair-wise distillation).
    """

    disps: list[torch.Tensor]
    features: list[torch.Tensor]


class StudentDepthNet(nn.Module):
    """Encoder-decoder with skip connections and disparity heads at `num_scales` scales.

    Five encoder stages at strides 2..32 (`enc_channels`), each `blocks_per_stage` inverted
    residual blocks; the decoder mirrors them with `dec_channels` up to stride 2. The finest
    disparity is the stride-2 head upsampled bilinearly: a full-resolution decoder stage would
    cost a third of the forward time for detail a light student cannot resolve anyway.
    Inputs must be multiples of 32.
    `near_m`/`far_m` are the depth range the sigmoid disparity spans (see geometry.disp_to_depth).
    `floor_prior`: the stem also takes the floor's depth as tf gives it (as the teacher's).
    """

    STRIDE = 32

    def __init__(self, enc_channels: tuple[int, ...] = (16, 24, 32, 64, 96),
                 dec_channels: tuple[int, ...] = (16, 16, 24, 32, 64),
                 blocks_per_stage: tuple[int, ...] = (1, 2, 2, 2, 1), expand: int = 4,
                 num_scales: int = 4, near_m: float = 0.1, far_m: float = 20.0,
                 floor_prior: bool = False) -> None:
        super().__init__()
        if not len(enc_channels) == len(dec_channels) == len(blocks_per_stage) == 5:
            raise ValueError("enc_channels, dec_channels and blocks_per_stage need 5 entries")
        self.near_m, self.far_m, self.num_scales = near_m, far_m, num_scales
        self.floor_prior = floor_prior
        self.stem = conv_bn_act(encoder_channels(floor_prior), enc_channels[0], 3, stride=2)
        stages = []
        c_prev = enc_channels[0]
        for i, (c, n) in enumerate(zip(enc_channels, blocks_per_stage)):
            blocks = [InvertedResidual(c_prev if j == 0 else c, c, 2 if (j == 0 and i > 0) else 1,
                                       expand) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            c_prev = c
        self.stages = nn.ModuleList(stages)
        self.reduce = nn.ModuleList()
        self.fuse = nn.ModuleList()
        c_up = enc_channels[-1]
        for i in reversed(range(1, 5)):
            self.reduce.append(separable_conv(c_up, dec_channels[i]))
            self.fuse.append(separable_conv(dec_channels[i] + enc_channels[i - 1], dec_channels[i]))
            c_up = dec_channels[i]
        # Head s reads the decoder level at stride 2**max(s, 1).
        self.heads = nn.ModuleList(nn.Conv2d(dec_channels[max(s, 1)], 1, 3, padding=1)
                                   for s in range(num_scales))
        for head in self.heads:
            init_disparity_head(head, near_m, far_m)
        self.upsample_head = BilinearUp2()

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None) -> DepthNetOutput:
        """image: RGB (B, 3, H, W) in [0, 1], H and W multiples of 32; prior: the floor
        prior (B, 2, H, W) for a network with `floor_prior` (see blocks.encoder_input)."""
        x = self.stem(encoder_input(image, prior, self.floor_prior))
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        disps: list[torch.Tensor] = []
        for k, i in enumerate(reversed(range(1, 5))):
            x = upsample2(self.reduce[k](x))
            x = self.fuse[k](torch.cat([x, features[i - 1]], dim=1))
            if i < self.num_scales:
                disps.append(torch.sigmoid(self.heads[i](x)))
        full = self.upsample_head(self.heads[0](x))
        disps.append(torch.sigmoid(full))
        return DepthNetOutput(disps=disps[::-1], features=features)
