"""Distillation losses: the student learns from the frozen teacher pixel by pixel (depth),
pair by pair (feature affinities, structured knowledge distillation) and as a whole (an
adversarial game against a discriminator that tells teacher depth from student depth)."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from lumde_ros.geometry import disp_to_depth


def pixel_loss(student_disps: list[torch.Tensor], student_range: tuple[float, float],
               teacher_disp: torch.Tensor, teacher_range: tuple[float, float],
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean L1 between student and teacher log depth at every student scale (the teacher's
    full-resolution depth area-averaged down), so scales and distances count alike; `weight`
    (B, 1, H, W) at full resolution (e.g. the teacher's photometric confidence) or None."""
    target = disp_to_depth(teacher_disp, *teacher_range).log()
    total = teacher_disp.new_zeros(())
    for disp in student_disps:
        size = disp.shape[-2:]
        reference = target if target.shape[-2:] == size else F.interpolate(target, size,
                                                                           mode="area")
        error = (disp_to_depth(disp, *student_range).log() - reference).abs()
        if weight is None:
            total = total + error.mean()
        else:
            w = weight if weight.shape[-2:] == size else F.interpolate(weight, size, mode="area")
            total = total + (error * w).sum() / w.sum().clamp_min(1e-6)
    return total / len(student_disps)


def affinity(features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Cosine similarity between every pair of spatial nodes (B, N, N) of features
    (B, C, H, W) average-pooled to `grid` (rows, columns), N = rows * columns."""
    nodes = F.normalize(F.adaptive_avg_pool2d(features, grid).flatten(2), dim=1)
    return nodes.transpose(1, 2) @ nodes


def pairwise_loss(student_features: torch.Tensor, teacher_features: torch.Tensor,
                  grid: tuple[int, int]) -> torch.Tensor:
    """Mean squared difference of the two affinity matrices: channel counts may differ, the
    relations between image regions must not."""
    return (affinity(student_features, grid) - affinity(teacher_features, grid)).pow(2).mean()


def discriminator_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: scores above 1 for real, below -1 for fake."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def generator_hinge(fake: torch.Tensor) -> torch.Tensor:
    """The student's adversarial loss: raise the discriminator's score of its depth."""
    return -fake.mean()
