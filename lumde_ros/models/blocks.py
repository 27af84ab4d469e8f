"""Small building blocks shared by the depth networks (plain torch, ONNX-exportable)."""
from __future__ import annotations

import math

import torch
from torch import nn

from lumde_ros.geometry import FLOOR_PRIOR_CHANNELS

# Images enter every network as RGB in [0, 1]; this fixed affine map centres them (the
# ImageNet-like statistics Monodepth2 uses) so exported models take the same [0, 1] input.
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225


def conv_bn_act(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
    """Conv, batch norm and (optionally) ReLU6, padded to keep size / stride."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def separable_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1: about 1/9 of a dense 3x3's multiply-adds."""
    return nn.Sequential(conv_bn_act(c_in, c_in, 3, groups=c_in), conv_bn_act(c_in, c_out, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3 (stride), linear project 1x1, residual."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.body = nn.Sequential(
            conv_bn_act(c_in, hidden, 1),
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            conv_bn_act(hidden, c_out, 1, act=False))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (B, 3, H, W) to the centred range the encoders are trained on."""
    return (image - IMAGE_MEAN) / IMAGE_STD


def encoder_input(image: torch.Tensor, prior: torch.Tensor | None,
                  floor_prior: bool) -> torch.Tensor:
    """What a depth encoder reads: the normalised image and, for a network with
    `floor_prior`, the floor prior's channels behind it (geometry.floor_prior; None: not
    known, zeros, as such a network is trained to see now and then)."""
    x = normalize_image(image)
    if not floor_prior:
        return x
    if prior is None:
        prior = image.new_zeros(image.shape[0], FLOOR_PRIOR_CHANNELS, *image.shape[2:])
    return torch.cat([x, prior], dim=1)


def encoder_channels(floor_prior: bool) -> int:
    """Input channels of a depth encoder: RGB, plus the floor prior's with `floor_prior`."""
    return 3 + (FLOOR_PRIOR_CHANNELS if floor_prior else 0)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling (cheap, exports to a plain ONNX Resize)."""
    return nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class BilinearUp2(nn.Module):
    """Bilinear x2 upsampling, equal to `interpolate(mode="bilinear", align_corners=False)`,
    computed as edge padding, a fixed 3x3 convolution into the four output phases and a pixel
    shuffle. OpenVINO runs its own Interpolate on a one-channel map so slowly that it took 0.75
    ms of the student's 2.7 ms forward at 320x256; these three ops take about 0.15 ms."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.channels = channels
        # Output row 2i takes 1/4 of row i-1 and 3/4 of row i; row 2i+1 3/4 of i, 1/4 of i+1.
        taps = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.75, 0.25]])
        kernel = torch.einsum("ai,bj->abij", taps, taps).reshape(4, 1, 3, 3)
        self.register_buffer("kernel", kernel.repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = nn.functional.conv2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                      self.kernel, groups=self.channels)
        return nn.functional.pixel_shuffle(phases, 2)


def init_disparity_head(conv: nn.Conv2d, near_m: float, far_m: float) -> None:
    """Start a sigmoid disparity head at the depth midway (geometrically) through its range.
    A zero logit means depth ~2 * near_m, so a network trained from scratch would spend its
    first thousands of steps only pushing every depth out to room scale."""
    middle = (near_m * far_m) ** 0.5
    disp = (1 / middle - 1 / far_m) / (1 / near_m - 1 / far_m)
    nn.init.constant_(conv.bias, math.log(disp / (1 - disp)))
