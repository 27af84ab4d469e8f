"""Pose network: two frames in, the 6-DoF motion from the first camera to the second out."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lumde_ros.geometry import turned_view
from lumde_ros.models.blocks import conv_bn_act

# Output gain: a frame-to-frame robot translation (centimetres) is then an activation of
# order one.
POSE_SCALE = 0.1
# A match is never trusted to better than this (cells, standard deviation): without a floor
# a peaked match's information grows without bound and one cell decides the rotation.
MATCH_FLOOR_CELLS = 0.25
# A translation much shorter than this (metres on the odometry route, median depths on the
# learned one) counts as standing: all of every cell's flow is then the rotation's.
STANDING = 0.005


class PoseOutput(NamedTuple):
    """axis_angle (B, 3) radians and translation (B, 3): the motion target -> source."""

    axis_angle: torch.Tensor
    translation: torch.Tensor


def standardized(images: torch.Tensor) -> torch.Tensor:
    """Each image (B, 3, H, W) shifted and scaled to zero mean and unit spread: the motion
    does not depend on exposure, and a dark room's frames (held-out seed 1000 is nearly
    black) then match as well as a bright one's."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) / (images.std(dim=(1, 2, 3), keepdim=True) + 0.02)


def correlation(first: torch.Tensor, second: torch.Tensor, radius: int) -> torch.Tensor:
    """How well each cell of `first` (B, C, h, w) matches `second` at every offset within
    `radius` cells, (B, (2r+1)^2, h, w), offsets row by row; both are made zero-mean and
    unit-length over channels first, so a match is a cosine in [-1, 1] whatever the
    brightness (a plain product is dominated by the mean activation). An offset that leaves
    `second` scores -1, the worst match: at 0 it would outscore the cell's unlike
    neighbours (cosines below 0) and pull its flow towards the border."""
    first, second = (x - x.mean(1, keepdim=True) for x in (first, second))
    first, second = (x / x.norm(dim=1, keepdim=True).clamp_min(1e-6) for x in (first, second))
    height, width = first.shape[-2:]
    padded = nn.functional.pad(second, (radius,) * 4)
    inside = nn.functional.pad(second.new_ones(height, width), (radius,) * 4)
    side = 2 * radius + 1
    return torch.stack([(first * padded[:, :, dy:dy + height, dx:dx + width]).sum(1)
                        + inside[dy:dy + height, dx:dx + width] - 1
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


def matched_flow(matches: torch.Tensor, temperature: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each cell moved, from its matches (B, (2r+1)^2, h, w) as `correlation` gives
    them: the mean (B, h, w, 2) and covariance (B, h, w, 2, 2) of the offsets (cells, x then
    y) weighted by softmax(temperature * cosine). The covariance says how well the cell
    placed itself: wide on a plain wall, long along a stripe (the aperture problem)."""
    side = int(round(matches.shape[1] ** 0.5))
    steps = torch.arange(side, dtype=matches.dtype, device=matches.device) - side // 2
    offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij")[::-1], -1).reshape(-1, 2)
    weights = torch.softmax(matches * temperature, dim=1).movedim(1, -1)  # (B, h, w, S)
    mean = weights @ offsets
    spread = torch.einsum("bhws,si,sj->bhwij", weights, offsets, offsets)
    return mean, spread - mean[..., :, None] * mean[..., None, :]


def rotation_from_flow(flow: torch.Tensor, covariance: torch.Tensor, rays: torch.Tensor,
                       translation: torch.Tensor) -> torch.Tensor:
    """The rotation (B, 3; axis-angle) that best explains each cell's `flow` (B, h, w, 2) with
    its `covariance` (B, h, w, 2, 2), both in normalised image units, at viewing directions
    `rays` (B, 2, h, w), given the `translation` (B, 3). Why not learned: a small motion's
    flow is the rotation's, the same at any depth (linear in it), plus the translation's,
    which at each cell lies along (t_x - x t_z, t_y - y t_z) with a length set by the cell's
    unknown inverse depth. Only the flow across that line, whitened by the cell's
    covariance, is fitted (weighted least squares), so the depth never enters and the fit is
    the same on a scene no network has seen. A learned head on the same kind of matches
    followed held-out turns with correlation 0.87; this fit, 0.90 (README, #21)."""
    x, y = rays[:, 0], rays[:, 1]
    # flow = a @ rotation + translation's part, per cell (small-motion field)
    a = torch.stack([torch.stack([-x * y, 1 + x * x, -y], -1),
                     torch.stack([-(1 + y * y), x * y, x], -1)], -2)  # (B, h, w, 2, 3)
    t = translation[:, :, None, None]
    along = torch.stack([t[:, 0] - x * t[:, 2], t[:, 1] - y * t[:, 2]], -1)  # (B, h, w, 2)
    whiten = _inverse_root(covariance)
    a, along = whiten @ a, (whiten @ along[..., None])[..., 0]
    flow = (whiten @ flow[..., None])[..., 0]
    # Take out the flow along the translation's line; near its focus (and when standing)
    # that line is undefined and all the flow is kept.
    scale = whiten.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None]
    standing = (0.01 * (translation ** 2).sum(-1) + STANDING ** 2)[:, None, None, None, None]
    across = torch.eye(2, dtype=x.dtype, device=x.device) - along[..., :, None] * along[
        ..., None, :] / ((along ** 2).sum(-1)[..., None, None] + standing * scale ** 2)
    fitted = across @ a
    normal = (a.transpose(-1, -2) @ fitted).sum((1, 2))
    moment = (fitted.transpose(-1, -2) @ flow[..., None]).sum((1, 2))[..., 0]
    ridge = 1e-4 * normal.diagonal(dim1=-2, dim2=-1).mean(-1) + 1e-9
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    return torch.linalg.solve(normal + ridge[:, None, None] * eye, moment)


def _inverse_root(covariance: torch.Tensor) -> torch.Tensor:
    """The square root of the inverse of symmetric positive definite 2x2 matrices (closed
    form: sqrt(M) = (M + sqrt(det M) I) / sqrt(trace M + 2 sqrt(det M)))."""
    xx, xy, yy = covariance[..., 0, 0], covariance[..., 0, 1], covariance[..., 1, 1]
    det = (xx * yy - xy ** 2).clamp_min(1e-20)
    ixx, iyy, ixy = yy / det, xx / det, -xy / det
    root = (ixx * iyy - ixy ** 2).clamp_min(1e-20).sqrt()
    norm = (ixx + iyy + 2 * root).sqrt()[..., None, None]
    return torch.stack([torch.stack([ixx + root, ixy], -1),
                        torch.stack([ixy, iyy + root], -1)], -2) / norm


def _halvings(c_in: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Stride-2 conv-BN-ReLU6 layers of `widths`, each halving the resolution."""
    return nn.Sequential(*(conv_bn_act(a, b, 3, stride=2)
                           for a, b in zip((c_in, *widths), widths)))


class PoseNet(nn.Module):
    """Both frames pass the same strided encoder (`features`: widths of its stride-2 layers;
    a cell is 2**len(features) pixels), each frame standardised first; the two encodings
    are compared at every offset within `radius` cells (a correlation volume, as FlowNetC
    and PWC-Net build).

    The rotation is fitted, not learned (`rotation_from_flow`): each cell's flow is where
    its matches peak (`matched_flow`, softmax at a learned `temperature`). A fit sees no
    further than `radius` cells, so the first compares cells `coarse` times larger (the
    encodings average-pooled, as PWC-Net goes coarse to fine) and reaches `coarse` times
    further. It is coarse, and a softmax's mean leans toward the middle of the offsets, so
    the fit is repeated `refinements` times on the source turned back by the rotation found
    so far (`turned_view`: at any depth, no translation), on the full cells, where what is left to
    find is small and the mean unbiased: SC-DepthV2's rectify-first idea, applied to the
    pose. No fit uses the cells on the grid's border (`_rotation` says why).

    The translation is learned: from the comparison and each cell's viewing direction
    (`cell_rays`) through stride-2 layers (`channels`) whose average is the motion. Why not
    one encoder over the stacked frames, the usual pose network (and this one's first form):
    trained from scratch on 2340 simulated pairs it learned which training pair it saw
    instead of how the image moved (README, #21)."""

    def __init__(self, features: tuple[int, ...] = (16, 32), radius: int = 5,
                 channels: tuple[int, ...] = (64, 128, 256, 256), temperature: float = 20.0,
                 coarse: int = 4, refinements: int = 1) -> None:
        super().__init__()
        if not features or not channels or radius < 1 or coarse < 1 or refinements < 0:
            raise ValueError("features and channels need a layer each, radius and coarse at "
                             "least 1, refinements at least 0")
        self.encoder = _halvings(3, features)
        self.radius = radius
        self.coarse = coarse
        self.refinements = refinements
        self.log_temperature = nn.Parameter(torch.tensor(float(temperature)).log())
        self.motion = _halvings((2 * radius + 1) ** 2 + 2, channels)
        self.head = nn.Conv2d(channels[-1], 3, 1)
        # Millimetres at first: near the identity, but not exactly. At exactly the identity
        # every warped view equals its source, auto-masking hides every pixel, and without
        # odometry nothing would ever move the pose away from it.
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, target: torch.Tensor, source: torch.Tensor,
                k: torch.Tensor) -> PoseOutput:
        """target, source: RGB (B, 3, H, W) in [0, 1]; k: their camera matrices (B, 3, 3)."""
        size = target.shape[-2:]
        first, second = self.encoder(standardized(torch.cat([target, source]))).chunk(2)
        matches = correlation(first, second, self.radius)
        rays = cell_rays(k, size, matches.shape[-2:]).to(matches.dtype)
        translation = self.head(self.motion(torch.cat([matches, rays], dim=1))).mean(
            dim=(2, 3)) * POSE_SCALE
        coarse, coarse_rays = matches, rays  # the first fit's cells: the full ones if coarse=1
        cell = 2 ** len(self.encoder)  # pixels per cell (the stride-2 layers round up)
        if min(first.shape[-2:]) < 3 * self.coarse:
            raise ValueError(f"{tuple(first.shape[-2:])} cells pooled by coarse={self.coarse} "
                             "leave no cells inside the border to fit: use an image of at "
                             f"least {3 * self.coarse * cell} pixels each way")
        if self.coarse > 1:
            if any(n % self.coarse for n in first.shape[-2:]):
                raise ValueError(f"{tuple(first.shape[-2:])} cells do not pool by coarse="
                                 f"{self.coarse}: use an image size that divides by "
                                 f"{self.coarse * cell} pixels")
            coarse = correlation(*(nn.functional.avg_pool2d(x, self.coarse)
                                   for x in (first, second)), self.radius)
            coarse_rays = cell_rays(k, size, coarse.shape[-2:]).to(coarse.dtype)
        axis_angle = self._rotation(coarse, coarse_rays, k, translation, size)
        for _ in range(self.refinements):
            back = turned_view(source, axis_angle.detach(), k)
            matches = correlation(first, self.encoder(standardized(back)), self.radius)
            axis_angle = axis_angle + self._rotation(matches, rays, k, translation, size)
        return PoseOutput(axis_angle=axis_angle, translation=translation)

    def _rotation(self, matches: torch.Tensor, rays: torch.Tensor, k: torch.Tensor,
                  translation: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """`rotation_from_flow` of the matches, their cells turned into normalised image
        units through `k`."""
        flow, covariance = matched_flow(matches, self.log_temperature.exp())
        (height, width), (h, w) = image_size, matches.shape[-2:]
        unit = torch.stack([width / w / k[:, 0, 0], height / h / k[:, 1, 1]], -1)[:, None, None]
        covariance = (covariance + MATCH_FLOOR_CELLS ** 2 * torch.eye(2, dtype=flow.dtype,
                                                                      device=flow.device))
        covariance = covariance * unit[..., :, None] * unit[..., None, :]
        # The border cells are left out: the encoder's zero padding marks them, so each
        # matches itself where it is, confidently, whatever the turn (a trained network's
        # border held 24-64 % of the fit's weight and read a turn as none; README, #21).
        inner = (slice(None), slice(1, -1), slice(1, -1))
        return rotation_from_flow((flow * unit)[inner], covariance[inner],
                                  rays[:, :, 1:-1, 1:-1], translation)
