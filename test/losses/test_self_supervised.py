"""The self-supervised loss's depth-hint term: it pulls the depth towards a hint only where the
hint explains the frame better than the predicted depth does (Depth Hints)."""
from __future__ import annotations

import torch

from lumde_ros.data.triplets import Batch
from lumde_ros.geometry import warp
from lumde_ros.losses.self_supervised import (ViewSynthesisLoss, hint_error, reprojection_error,
                                              view_synthesis)

PLANE_M = 2.5
K = torch.tensor([[[90.0, 0.0, 63.5], [0.0, 90.0, 47.5], [0.0, 0.0, 1.0]]])
LOSS = ViewSynthesisLoss(ssim_weight=0.85, smoothness_weight=0.0, pose_weight=0.0,
                         automask=False, hint_weight=1.0)


def _plane_batch(hint_m: float | None) -> Batch:
    """A textured plane PLANE_M in front of the camera, seen again from 0.15 m to each side;
    hints of `hint_m` everywhere (None: no hints)."""
    generator = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 3, 24, 32, generator=generator)
    target = torch.nn.functional.interpolate(texture, (96, 128), mode="bilinear")
    motions = torch.eye(4).repeat(1, 2, 1, 1)  # target -> source: the source sits at x = +-0.15
    motions[0, 0, 0, 3], motions[0, 1, 0, 3] = -0.15, 0.15
    plane = torch.full((1, 1, 96, 128), PLANE_M)
    # Each source is the target warped with the source -> target motion at the plane's depth
    # (sideways moves keep the plane at the same depth in every view).
    sources = [warp(target, plane, torch.linalg.inv(motions[:, j]), K)[0] for j in (0, 1)]
    hints = None if hint_m is None else torch.full_like(plane, hint_m)
    return Batch(target, sources, K, motions, hints)


def _disp(depth_m: float) -> list[torch.Tensor]:
    """One-scale disparity (near 0.1 m, far 20 m) that gives `depth_m` everywhere."""
    near, far = 1 / 20.0, 1 / 0.1
    disp = (1 / depth_m - near) / (far - near)
    return [torch.full((1, 1, 96, 128), disp, requires_grad=True)]


def test_a_right_hint_pulls_a_wrong_depth_towards_it():
    batch = _plane_batch(PLANE_M)
    hints_explain = reprojection_error(batch.hints, batch, batch.motions, 0.85)
    wrong = reprojection_error(torch.full_like(batch.hints, 5.0), batch, batch.motions, 0.85)
    inner = (slice(None), slice(None), slice(16, -16), slice(24, -24))
    assert (hints_explain[inner] < wrong[inner]).float().mean() > 0.95

    disps = _disp(5.0)
    loss, terms = view_synthesis(disps, batch, batch.motions, 0.1, 20.0, LOSS)
    assert terms["hint"] > 0.3  # |log 5 - log 2.5| = 0.69 where trusted
    loss.backward()
    # Lower disparity means farther: the hint (nearer) raises the disparity.
    assert disps[0].grad.sum() < 0
    plain, _ = view_synthesis(_disp(5.0), _plane_batch(None), batch.motions, 0.1, 20.0, LOSS)
    assert loss > plain + 0.3


def test_a_wrong_hint_teaches_nothing_where_the_depth_explains_the_frame():
    batch = _plane_batch(5.0)
    _, terms = view_synthesis(_disp(PLANE_M), batch, batch.motions, 0.1, 20.0, LOSS)
    # A few border pixels, where neither depth sees into the views, may trust the hint.
    assert terms["hint"] < 0.05


def test_pixels_without_a_hint_carry_no_term():
    depth = torch.full((1, 1, 8, 8), 3.0)
    hints = torch.zeros_like(depth)
    hints[..., :4, :] = 1.5
    trusted = torch.ones_like(depth, dtype=torch.bool)
    expected = torch.log(torch.tensor(2.0)) / 2  # half the pixels are off by a factor of 2
    torch.testing.assert_close(hint_error(depth, hints, trusted), expected)
    assert hint_error(depth, hints, ~trusted) == 0
