"""Photometric building blocks (Monodepth2-style): SSIM + L1 error, the per-pixel minimum over
source views with auto-masking, and edge-aware smoothness."""
from __future__ import annotations

import torch
from torch.nn import functional as F

# SSIM stabilisers for images in [0, 1]: (0.01 * L)^2 and (0.03 * L)^2 with L = 1 (Wang 2004).
SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) over 3x3 windows (reflection padded); 1 where equal."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    # One pooling call for all five local means: on a CPU the calls, not the arithmetic,
    # are what SSIM costs in training.
    mu_x, mu_y, xx, yy, xy = F.avg_pool2d(torch.cat([x, y, x * x, y * y, x * y]), 3, 1).chunk(5)
    sigma_x, sigma_y, sigma_xy = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return numerator / denominator


def photometric_error(pred: torch.Tensor, target: torch.Tensor,
                      ssim_weight: float) -> torch.Tensor:
    """Per-pixel error (B, 1, H, W): ssim_weight * (1 - SSIM) / 2 + (1 - ssim_weight) * L1,
    averaged over channels (0.85 is the usual weight)."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    structure = ((1 - ssim(pred, target)) / 2).clamp(0, 1).mean(1, keepdim=True)
    return ssim_weight * structure + (1 - ssim_weight) * l1


def unmoved_error(sources: list[torch.Tensor], target: torch.Tensor,
                  ssim_weight: float) -> torch.Tensor:
    """Per-pixel minimum photometric error (B, 1, H, W) of the sources left unwarped: what
    auto-masking compares against. It does not depend on depth, so compute it once per batch."""
    errors = torch.cat([photometric_error(s, target, ssim_weight) for s in sources], 1)
    return errors.min(dim=1, keepdim=True)[0]


def min_reprojection(warped: list[torch.Tensor], target: torch.Tensor, ssim_weight: float,
                     unmoved: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum of the photometric error over warped source views (handles
    occlusion), and, given `unmoved` (see unmoved_error; None: no auto-masking), the mask of
    pixels where some warped view beats every unwarped source (pixels that do not move with
    the camera carry no depth signal). Returns the error map (B, 1, H, W), not yet masked (a
    depth hint is judged by it everywhere), and the mask (B, 1, H, W)."""
    reprojection = torch.cat([photometric_error(w, target, ssim_weight) for w in warped], 1)
    best, _ = reprojection.min(dim=1, keepdim=True)
    if unmoved is None:
        return best, torch.ones_like(best)
    return best, (best < unmoved).to(best.dtype)


def smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness (scalar) of mean-normalised disparity (B, 1, H, W): gradients
    are penalised less where the image (B, 3, H, W) has edges."""
    disp = disp / disp.mean(dim=(2, 3), keepdim=True).clamp_min(1e-7)
    dx = (disp[:, :, :, :-1] - disp[:, :, :, 1:]).abs()
    dy = (disp[:, :, :-1, :] - disp[:, :, 1:, :]).abs()
    wx = torch.exp(-(image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(1, keepdim=True))
    wy = torch.exp(-(image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(1, keepdim=True))
    return (dx * wx).mean() + (dy * wy).mean()

