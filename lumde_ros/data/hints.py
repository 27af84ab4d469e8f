"""Depth hints: depth the robot's own motion shows, found by multi-view plane sweep before
training (as Depth Hints, Watson et al. 2019, took them from stereo pairs). With odometry each
frame's neighbours are views from known, metric camera positions, so testing a range of depths
per pixel and keeping the one that makes every neighbour agree with the frame gives a metric
depth wherever the image is textured and the robot moved sideways or forwards enough. Without
odometry the keyframes' motions the images show, chained in units of the scene's median depth,
serve instead, and the hints are relative: in units of each frame's median depth. The
teacher learns from a hint only where the hint explains the frame better than its own depth
(losses/self_supervised.hint_error), so a wrong hint costs little and a good one speeds up
learning the geometry a photometric loss alone finds slowly. A run finds them once and keeps
them in its folder (`cached_hints`). benchmarks/hints.py measures them.

Inputs are images and odometry (or image motion) only: ground truth is never read here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from lumde_ros.files import atomic_path
from lumde_ros.geometry import warp
from lumde_ros.losses.photometric import photometric_error


@dataclass(frozen=True)
class HintConfig:
    """How hints are found (section `hints` of config/train.yaml, which says what each does)."""

    planes: int
    near_m: float
    far_m: float
    baselines_m: list[float]
    max_frames_apart: int
    max_rotation_deg: float
    window: int
    ssim_weight: float
    min_contrast: float
    agreement: float
    min_views: int
    relative_near: float
    relative_far: float
    relative_baselines: list[float]

    def in_median_depths(self) -> HintConfig:
        """The sweep for a recording without odometry, whose camera motion the images give
        only in units of the scene's median depth (data/image_motion.keyframe_poses): the
        tested depths and baselines in that unit."""
        return dataclasses.replace(self, near_m=self.relative_near, far_m=self.relative_far,
                                   baselines_m=self.relative_baselines)


def plane_depths(config: HintConfig) -> torch.Tensor:
    """The tested depths (D,), uniform in inverse depth (uniform in disparity: equal steps in
    pixels), nearest first."""
    return 1.0 / torch.linspace(1.0 / config.near_m, 1.0 / config.far_m, config.planes)


def choose_views(poses: torch.Tensor, target: int, config: HintConfig) -> list[int]:
    """Frames of one recording (poses (N, 4, 4), camera in odometry) that see `target` from
    a useful baseline: on each side in time, the first frame at least each of
    `baselines_m` away, within `max_frames_apart` frames and `max_rotation_deg` of turn."""
    chosen: list[int] = []
    for direction in (-1, 1):
        wanted = sorted(config.baselines_m)
        for step in range(1, config.max_frames_apart + 1):
            other = target + direction * step
            if not wanted or not 0 <= other < len(poses):
                break
            relative = torch.linalg.inv(poses[other]) @ poses[target]
            cos = ((relative[:3, :3].trace() - 1) / 2).clamp(-1, 1)
            if torch.rad2deg(torch.arccos(cos)) > config.max_rotation_deg:
                break
            if relative[:3, 3].norm() >= wanted[0]:
                chosen.append(other)
                wanted = [b for b in wanted if b > relative[:3, 3].norm()]
    return chosen


def sweep(target: torch.Tensor, views: torch.Tensor, motions: torch.Tensor, k: torch.Tensor,
          config: HintConfig) -> torch.Tensor:
    """Hint depth (1, H, W) of `target` (3, H, W) in [0, 1] from `views` (S, 3, H, W) with
    motions target -> view (S, 4, 4) and camera matrix k (3, 3); 0 where no depth is trusted.

    Each view's matching cost (SSIM + L1, averaged over a `window`) is computed at every
    tested depth. A view votes for its lowest-cost depth where its cost curve has
    `min_contrast` between its mean and its minimum (textured, inside the view); the hint is
    the lowest cost over all views, refined to sub-plane precision, kept where at least
    `min_views` votes lie within `agreement` plane steps of it."""
    depths = plane_depths(config).to(target)
    planes, (_, height, width) = len(depths), target.shape
    plane = depths.view(-1, 1, 1, 1).expand(planes, 1, height, width)
    costs = []
    for view, motion in zip(views, motions):
        warped, inside = warp(view.expand(planes, -1, -1, -1), plane,
                              motion.expand(planes, 4, 4), k.expand(planes, 3, 3))
        error = photometric_error(warped, target.expand(planes, -1, -1, -1),
                                   config.ssim_weight)
        error = error.masked_fill(inside == 0, float("nan"))
        costs.append(F.avg_pool2d(error, config.window, 1, config.window // 2)[:, 0])
    cost = torch.stack(costs)  # (S, D, H, W); NaN where the depth leaves the view
    filled = cost.nan_to_num(float("inf"))
    best, vote = filled.min(dim=1)
    contrast = cost.nanmean(dim=1) - best
    voting = torch.isfinite(best) & (contrast >= config.min_contrast) & \
        (cost.isfinite().float().mean(dim=1) > 0.5)
    overall = filled.min(dim=0).values  # (D, H, W): the best view per depth (occlusions)
    index = overall.argmin(dim=0)
    votes = (((vote - index).abs() <= config.agreement) & voting).sum(dim=0)
    keep = (votes >= config.min_views) & (index > 0) & (index < planes - 1)
    # A parabola through the best plane and its neighbours places the minimum between planes.
    around = torch.stack([index - 1, index, index + 1]).clamp(0, planes - 1)
    left, centre, right = overall.gather(0, around).nan_to_num(0.0)
    curvature = left - 2 * centre + right
    shift = torch.where(curvature > 1e-6, (left - right) / (2 * curvature),
                        torch.zeros_like(curvature)).clamp(-0.5, 0.5)
    inverse = 1.0 / depths
    step = inverse[1] - inverse[0]
    depth = 1.0 / (inverse[index] + shift * step)
    keep &= torch.isfinite(depth) & (depth > 0)
    return torch.where(keep, depth, torch.zeros_like(depth))[None]


def recording_hints(images: torch.Tensor, k: torch.Tensor, poses: torch.Tensor,
                    config: HintConfig, targets: Sequence[int] | None = None) -> torch.Tensor:
    """Hints (N, 1, H, W) of the frames `targets` (None: every frame) of one recording:
    images (N, 3, H, W) uint8, camera matrices (N, 3, 3), camera poses in odometry (N, 4, 4);
    0 where none is trusted (also for frames with no usable neighbour: spinning on the spot,
    standing still) and on frames not asked for. Every frame can serve as a view."""
    hints = torch.zeros(len(images), 1, *images.shape[-2:])
    poses = poses.double()
    with torch.no_grad():
        for i in range(len(images)) if targets is None else sorted(set(targets)):
            chosen = choose_views(poses, i, config)
            if len(chosen) < config.min_views:
                continue
            motions = torch.stack([torch.linalg.inv(poses[j]) @ poses[i] for j in chosen])
            hints[i] = sweep(images[i].float() / 255, images[chosen].float() / 255,
                             motions.float(), k[i].float(), config)
    return hints


def cached_hints(cache: Path | None, identity: dict[str, Any], images: torch.Tensor,
                 k: torch.Tensor, poses: torch.Tensor, config: HintConfig,
                 targets: Sequence[int], say: Callable[[str], None]) -> torch.Tensor:
    """`recording_hints` of `targets`, kept in folder `cache` (None: not kept) under a name
    drawn from `identity` (what the frames were read from: recording, its size on disk,
    frames), `config` and the input size, so a resumed or repeated run finds them again
    instead of spending minutes; a kept file that is unreadable or does not match is found
    again. `say` reports progress (finding hints takes a while)."""
    targets = sorted(set(targets))
    key = {"identity": identity, "config": dataclasses.asdict(config), "targets": targets,
           "frames": len(images), "size": list(images.shape[-2:])}
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = None if cache is None else cache / f"{name}.pt"
    if path is not None and path.is_file():
        try:
            kept = torch.load(path, map_location="cpu", weights_only=True)
            if kept["key"] == key and kept["hints"].shape == (len(images), 1,
                                                               *images.shape[-2:]):
                return kept["hints"].float()
            say(f"depth hints in {path} are for other frames; finding them again")
        except Exception as err:  # torch raises many types for corrupt files
            say(f"depth hints in {path} are unreadable ({type(err).__name__}: {err}); "
                "finding them again")
    say(f"finding depth hints for {identity.get('bag', 'a recording')} ({len(targets)} frames)")
    # Kept at half precision (1 mm at 1 m), and used as kept: a resumed run sees the same.
    hints = recording_hints(images, k, poses, config, targets).half()
    say(f"depth hints cover {float((hints[targets] > 0).float().mean()):.0%} of its pixels")
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save({"key": key, "hints": hints}, tmp)
    return hints.float()
