"""Depth networks, built by architecture name from plain numbers (as stored in checkpoints)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lumde_ros.errors import ConfigError, LumdeError, ModelLoadError
from lumde_ros.geometry import disp_to_depth
from lumde_ros.models.pose import PoseNet, PoseOutput
from lumde_ros.models.student import DepthNetOutput, StudentDepthNet
from lumde_ros.models.teacher import TeacherDepthNet

ARCHITECTURES: dict[str, type[nn.Module]] = {"student": StudentDepthNet,
                                             "teacher": TeacherDepthNet}

__all__ = ["ARCHITECTURES", "DepthNetOutput", "MetricDepth", "PoseNet", "PoseOutput",
           "StudentDepthNet", "TeacherDepthNet", "build_depth_net", "construct", "count_macs",
           "fuse_for_inference"]


def construct(cls: type[nn.Module], arguments: dict[str, Any],
              error: type[LumdeError] = ConfigError) -> nn.Module:
    """`cls(**arguments)` from stored or configured numbers (lists become tuples); arguments
    the class rejects raise `error` naming them."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in arguments.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise error(f"{cls.__name__} rejects arguments {arguments}: {err}") from err


def build_depth_net(arch: str, arch_config: dict[str, Any]) -> nn.Module:
    """Instantiate architecture `arch` with keyword arguments `arch_config`."""
    if arch not in ARCHITECTURES:
        raise ModelLoadError(f"unknown architecture '{arch}'; this version knows "
                             f"{sorted(ARCHITECTURES)}; update lumde_ros or re-export the model")
    return construct(ARCHITECTURES[arch], arch_config, ModelLoadError)


class MetricDepth(nn.Module):
    """Serving form of a depth network: RGB [0, 1] (B, 3, H, W) (and, for a network with
    `floor_prior`, the floor prior (B, 2, H, W)) in, depth (B, 1, H, W) out, times `scale`
    (metres per network unit). This is what inference runs and export writes."""

    def __init__(self, net: nn.Module, scale: float) -> None:
        super().__init__()
        self.net, self.scale = net, float(scale)

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        disp = self.net(image, prior).disps[0]
        return disp_to_depth(disp, self.net.near_m, self.net.far_m) * self.scale


@contextmanager
def input_size(width: int, height: int) -> Iterator[None]:
    """Runs a forward pass at width x height, turning a network's failure at that size (too
    small for its deepest padding) into a ConfigError that names the size."""
    try:
        yield
    except RuntimeError as err:
        raise ConfigError(f"the network cannot run at {width}x{height} "
                          f"({str(err).splitlines()[0][:120]}); use a larger input") from err


def count_macs(net: nn.Module, width: int, height: int) -> int:
    """Multiply-accumulates of one forward pass at `width` x `height` (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    training = net.training
    with torch.no_grad(), counter, input_size(width, height):
        net.eval()(torch.zeros(1, 3, height, width))  # as served: BatchNorm takes any size
    net.train(training)
    return counter.get_total_flops() // 2


def fuse_for_inference(net: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the conv before it (in place; returns `net`).
    BatchNorm on its own costs as much as the depthwise convs on a CPU."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net.eval()
    for module in net.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
    return net
