"""The self-supervised depth objective shared by the teacher and the student: synthesise the
target frame from its neighbours through the predicted depth and the camera motion (from
odometry, or from a pose network), at every scale."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lumde_ros.data.triplets import Batch
from lumde_ros.geometry import disp_to_depth, pose_from_vector, warp
from lumde_ros.losses.photometric import min_reprojection, smoothness, unmoved_error


@dataclass(frozen=True)
class ViewSynthesisLoss:
    """Weights of the self-supervised loss (section `loss` of the teacher's settings, `photo`
    of the student's)."""

    ssim_weight: float
    smoothness_weight: float
    pose_weight: float
    automask: bool
    hint_weight: float


def view_synthesis(disps: list[torch.Tensor], batch: Batch, motions: torch.Tensor,
                   near_m: float, far_m: float,
                   config: ViewSynthesisLoss) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The self-supervised depth loss over every scale of `disps` (finest first): each scale's
    disparity is upsampled to the target's size, turned into depth, and each source is warped
    onto the target with its motion (B, n_sources, 4, 4) target -> source; the per-pixel
    minimum photometric error (auto-masked) plus weighted smoothness (divided by 2**scale),
    plus, where the batch has depth hints, the hint term (see `hint_error`), averaged over
    scales. Returns the loss and its terms."""
    target, sources = batch.target, batch.sources
    height, width = target.shape[-2:]
    photo, smooth, hinted = (target.new_zeros(()) for _ in range(3))
    unmoved = unmoved_error(sources, target, config.ssim_weight) if config.automask else None
    use_hints = batch.hints is not None and config.hint_weight > 0
    if use_hints:
        hints_explain = reprojection_error(batch.hints, batch, motions, config.ssim_weight)
    for scale, disp in enumerate(disps):
        full = disp if disp.shape[-2:] == (height, width) else F.interpolate(
            disp, (height, width), mode="bilinear", align_corners=False)
        depth = disp_to_depth(full, near_m, far_m)
        error, mask = reprojection(depth, batch, motions, config.ssim_weight, unmoved)
        photo = photo + (error * mask).mean()
        if use_hints:
            hinted = hinted + hint_error(depth, batch.hints, hints_explain < error.detach())
        image = target if disp.shape[-2:] == (height, width) else F.interpolate(
            target, disp.shape[-2:], mode="area")
        smooth = smooth + smoothness(disp, image) / 2 ** scale
    photo, smooth, hinted = photo / len(disps), smooth / len(disps), hinted / len(disps)
    terms = {"photo": photo, "smooth": smooth}
    if use_hints:
        terms["hint"] = hinted
    return (photo + config.smoothness_weight * smooth + config.hint_weight * hinted, terms)


def reprojection(depth: torch.Tensor, batch: Batch, motions: torch.Tensor, ssim_weight: float,
                 unmoved: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`min_reprojection` of the batch's sources warped onto its target through `depth`
    (B, 1, H, W) with `motions` (B, n_sources, 4, 4) target -> source: the per-pixel error
    and the auto-mask (all ones without `unmoved`)."""
    return min_reprojection([warp(source, depth, motions[:, j], batch.k)[0]
                             for j, source in enumerate(batch.sources)],
                            batch.target, ssim_weight, unmoved)


def reprojection_error(depth: torch.Tensor, batch: Batch, motions: torch.Tensor,
                       ssim_weight: float) -> torch.Tensor:
    """`reprojection`'s error (B, 1, H, W) without gradient, infinite where depth is 0 (no
    hint there)."""
    known = depth > 0
    with torch.no_grad():
        error, _ = reprojection(torch.where(known, depth, torch.ones_like(depth)), batch,
                                motions, ssim_weight)
    return error.masked_fill(~known, float("inf"))


def hint_error(depth: torch.Tensor, hints: torch.Tensor, trusted: torch.Tensor) -> torch.Tensor:
    """Mean log-depth L1 (scalar) between predicted `depth` and `hints` (B, 1, H, W, metres)
    over the `trusted` pixels, those where the hint reprojects the sources better than the
    prediction does (Depth Hints, Watson et al. 2019): a wrong hint loses to a good
    prediction and teaches nothing, a good one pulls the depth out of a local minimum the
    photometric loss alone stays in. Divided by all pixels, so sparse hints weigh little."""
    trusted = trusted & (hints > 0)
    gap = (depth.clamp_min(1e-3).log() - hints.clamp_min(1e-3).log()).abs()
    return (gap * trusted).mean()


def forward_motions(pose_net: nn.Module, batch: Batch) -> torch.Tensor:
    """Motions target -> each source (B, 2, 4, 4) from a pose network, which always sees its
    two frames in time order (earlier first), so a robot driving forward is one consistent
    motion to learn; the previous frame's motion is inverted."""
    previous, following = batch.sources
    back = pose_net(previous, batch.target, batch.k)
    ahead = pose_net(batch.target, following, batch.k)
    return torch.stack([torch.linalg.inv(pose_from_vector(back.axis_angle, back.translation)),
                        pose_from_vector(ahead.axis_angle, ahead.translation)], dim=1)


def self_supervised(disps: list[torch.Tensor], pose_net: nn.Module, batch: Batch, near_m: float,
                    far_m: float, config: ViewSynthesisLoss
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """View synthesis of the target from both sources at every scale of `disps`. With
    odometry in the batch the warp uses it and the pose network's motion is supervised by it
    (`motion_error`, weight `pose_weight`); without, the warp uses the pose network's motion,
    supervised in the same way by the motion the images show where the batch has it. Its
    translation is in units of the scene's median depth, so the depth network learns that
    unit: a flat far depth no longer explains a camera that moved (dividing depth by its
    median instead left the disparity free to saturate flat within 700 steps)."""
    predicted = forward_motions(pose_net, batch)
    motions = predicted if batch.motions is None else batch.motions
    loss, terms = view_synthesis(disps, batch, motions, near_m, far_m, config)
    terms = {"loss": loss, **terms}
    pose_loss = motion_error(predicted, batch.motions) if batch.motions is not None else \
        motion_error(predicted, batch.image_motions, batch.image_motion_known) \
        if batch.image_motions is not None else None
    if pose_loss is not None:
        loss = loss + config.pose_weight * pose_loss
        terms.update(loss=loss, pose=pose_loss)
    terms["translation_m"] = predicted[:, :, :3, 3].norm(dim=2).mean()
    return loss, terms


def _rotation_error(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """L1 between rotation matrices' entries (..., 4, 4), halved: for small rotations that is
    the axis-angle difference in radians, and unlike an angle it has a gradient at the
    identity."""
    return (predicted[..., :3, :3] - reference[..., :3, :3]).abs().sum((-2, -1)) / 2


def motion_error(predicted: torch.Tensor, reference: torch.Tensor,
                 known: torch.Tensor | None = None) -> torch.Tensor:
    """Mean L1 distance between motions (B, n, 4, 4), over the `known` (B, n) ones when given:
    rotation (`_rotation_error`) plus translation (in the reference's unit)."""
    translation = (predicted[..., :3, 3] - reference[..., :3, 3]).abs().sum(-1)
    error = _rotation_error(predicted, reference) + translation
    if known is None:
        return error.mean()
    return (error * known).sum() / known.sum().clamp_min(1)
