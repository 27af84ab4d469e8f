import math

import pytest
import torch
from torch import nn

from lumde_ros.geometry import pose_from_vector, turned_view
from lumde_ros.models import PoseNet, StudentDepthNet, TeacherDepthNet, count_macs
from lumde_ros.models.pose import cell_rays, correlation, matched_flow, rotation_from_flow

# A 64x96 image's camera (80-pixel focal length, centred), and a 96x128 one's (100 pixels).
K_64X96 = torch.tensor([[80.0, 0, 47.5], [0, 80.0, 31.5], [0, 0, 1]])
K_96X128 = torch.tensor([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])


def test_teacher_outputs_four_scales_full_resolution_first():
    net = TeacherDepthNet(num_layers=18, enc_channels=(16, 16, 32, 64, 128),
                          dec_channels=(8, 16, 16, 32, 64)).eval()
    out = net(torch.rand(2, 3, 64, 96))
    assert [tuple(d.shape) for d in out.disps] == [(2, 1, 64, 96), (2, 1, 32, 48),
                                                   (2, 1, 16, 24), (2, 1, 8, 12)]
    assert [f.shape[1] for f in out.features] == [16, 16, 32, 64, 128]
    deeper = TeacherDepthNet(num_layers=34, enc_channels=(16, 16, 32, 64, 128),
                             dec_channels=(8, 16, 16, 32, 64))
    assert sum(p.numel() for p in deeper.parameters()) > sum(p.numel() for p in net.parameters())


def test_student_costs_at_most_five_percent_of_the_default_teacher():
    ratio = count_macs(StudentDepthNet(), 320, 256) / count_macs(TeacherDepthNet(), 320, 256)
    assert ratio <= 0.05


def test_pose_net_starts_near_identity_and_learns():
    net = PoseNet()
    a, b = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    k = K_64X96.expand(2, 3, 3)
    out = net(a, b, k)
    assert out.axis_angle.shape == (2, 3) and out.translation.shape == (2, 3)
    # near the identity, but not exactly: there auto-masking would hide every pixel
    assert 0 < out.translation.abs().max() < 0.01
    (out.translation.sum() + out.axis_angle.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("seed", range(4))
def test_the_same_frame_twice_is_no_turn(seed: int):
    """Every cell matches where it is. On the full cells that gives no rotation (below 8e-5
    rad over 40 seeds). An untrained coarse fit, on the 4 x 6 coarse cells inside the
    border, whose features all look about alike, reads up to 0.046 rad over 40 seeds: each
    cell's mean leans toward the neighbour it happens to resemble more. What a trained one
    reads, `benchmarks/pose_network.py` prints."""
    torch.manual_seed(seed)
    image = torch.rand(2, 3, 96, 128)
    k = K_96X128.expand(2, 3, 3)
    with torch.no_grad():
        fine, coarse = (PoseNet(coarse=c).eval()(image, image, k).axis_angle for c in (1, 4))
    assert fine.abs().max() < 1e-4
    assert coarse.abs().max() < 0.05


def test_a_known_turn_is_read_at_its_size():
    """Textured images turned about the vertical by a known angle (no parallax), read by
    untrained networks (8 seeds; 3, 5 and 8 degrees, 5 to 14 pixels): each within 40 % of the
    turn, and their median within 10 % (measured 0.80-1.13, median 0.95; over 40 seeds the
    lowest was 0.67). The border cells, which zero padding marks, match themselves where
    they are; left in the fit, they pulled the same readings to 0.51-0.99, median 0.81."""
    ratios = []
    for seed in range(8):
        torch.manual_seed(seed)
        image = nn.functional.interpolate(torch.rand(1, 3, 24, 32), size=(96, 128),
                                          mode="bilinear", align_corners=False)
        net = PoseNet().eval()
        for degrees in (3.0, 5.0, 8.0):
            # viewed through the opposite turn: what a camera turned by `degrees` sees
            turned = turned_view(image, torch.tensor([[0.0, -math.radians(degrees), 0.0]]),
                                 K_96X128[None])
            with torch.no_grad():
                read = net(image, turned, K_96X128[None]).axis_angle[0, 1]
            ratios.append(math.degrees(read) / degrees)
    assert min(ratios) > 0.6 and max(ratios) < 1.4
    assert abs(sorted(ratios)[len(ratios) // 2] - 1) < 0.1


def _motion_field(axis_angle: torch.Tensor, translation: torch.Tensor, depth: torch.Tensor,
                  rays: torch.Tensor) -> torch.Tensor:
    """Each cell's exact flow (B, h, w, 2), normalised image units, for points at `depth`
    (B, h, w) on `rays` (B, 2, h, w) under the motion."""
    x, y = rays[:, 0], rays[:, 1]
    points = torch.stack([x * depth, y * depth, depth], 1).flatten(2)
    motion = pose_from_vector(axis_angle, translation)
    moved = motion[:, :3, :3] @ points + motion[:, :3, 3:]
    seen = (moved[:, :2] / moved[:, 2:]).view_as(rays)
    return (seen - rays).permute(0, 2, 3, 1)


def test_the_rotation_fitted_to_the_flow_does_not_depend_on_the_depth():
    """Forward and sideways driving with turns of up to 3 degrees about every axis: the
    rotation comes out of the flow within the small-motion model's few percent, whether the
    scene is near or far, as it must to carry over to scenes never seen."""
    torch.manual_seed(0)
    k = torch.tensor([[70.0, 0, 63.5], [0, 70.0, 47.5], [0, 0, 1]]).expand(6, 3, 3)
    rays = cell_rays(k, (96, 128), (24, 32))
    rotation = torch.randn(6, 3) * torch.tensor([0.01, 0.05, 0.01])
    translation = torch.tensor([[0.0, 0.0, 0.08], [0.03, 0.0, 0.07], [0.0, 0.0, 0.0]]).repeat(2, 1)
    covariance = torch.eye(2).expand(6, 24, 32, 2, 2) * 1e-4
    found = [rotation_from_flow(_motion_field(rotation, translation, depth, rays), covariance,
                                rays, translation)
             for depth in (0.5 + 4 * torch.rand(6, 24, 32), 1.0 + 0.5 * torch.rand(6, 24, 32))]
    for fit in found:
        assert (fit - rotation).norm(dim=1).max() < 0.05 * rotation.norm(dim=1).max() + 2e-4
    # Without the translation's line taken out, the parallax of driving sideways (pairs 1
    # and 4) reads as a turn.
    depth = 0.5 + 4 * torch.rand(6, 24, 32)
    flow = _motion_field(rotation, translation, depth, rays)
    taken_out, ignored = (rotation_from_flow(flow, covariance, rays, t) - rotation
                          for t in (translation, torch.zeros_like(translation)))
    sideways = torch.tensor([1, 4])
    assert (ignored[sideways].norm(dim=1) > 4 * taken_out[sideways].norm(dim=1)).all()


def test_matched_flow_is_where_the_match_peaks_and_how_sure_it_is():
    radius, side = 3, 7
    matches = torch.full((1, side * side, 2, 2), -0.5)
    # cell (0, 0) matches best 2 cells right and 1 up; cell (0, 1) equally well anywhere
    # along the row 1 down (a horizontal stripe: the aperture problem)
    matches[0, (radius - 1) * side + radius + 2, 0, 0] = 1.0
    matches[0, (radius + 1) * side:(radius + 2) * side, 0, 1] = 1.0
    flow, covariance = matched_flow(matches, torch.tensor(50.0))
    assert torch.allclose(flow[0, 0, 0], torch.tensor([2.0, -1.0]), atol=1e-3)
    assert covariance[0, 0, 0].abs().max() < 1e-3
    assert torch.allclose(flow[0, 0, 1], torch.tensor([0.0, 1.0]), atol=1e-3)
    assert covariance[0, 0, 1, 0, 0] == pytest.approx(4.0, abs=1e-2)  # offsets -3..3: var 4
    assert covariance[0, 0, 1, 1, 1] < 1e-3


def test_correlation_peaks_at_the_shift_whatever_the_brightness():
    first = torch.rand(1, 8, 12, 16)
    # `second` is `first` moved 2 cells right and 1 down, brighter and with more contrast
    second = 3 * torch.roll(first, shifts=(1, 2), dims=(2, 3)) + 5
    matches = correlation(first, second, radius=3)
    assert matches.shape == (1, 49, 12, 16)
    inner = matches[0, :, 3:-3, 3:-3]  # cells whose match stays inside the image
    best = inner.argmax(0)
    assert (best == (3 + 1) * 7 + (3 + 2)).all()  # offset (dy, dx) = (1, 2), row by row
    assert torch.allclose(inner.amax(0), torch.ones_like(best, dtype=torch.float), atol=1e-5)
    # An offset off the image is the worst match, never a neutral 0 that outscores unlike
    # cells: the top-left cell cannot have moved up or left.
    corner = matches[0, :, 0, 0].view(7, 7)  # (dy, dx) from -3 to 3
    assert (corner[:3] == -1).all() and (corner[:, :3] == -1).all()
    assert (corner[3:, 3:] > -1).all()


def test_pose_net_refuses_settings_it_cannot_use():
    with pytest.raises(ValueError, match="radius"):
        PoseNet(features=(), radius=4)
    with pytest.raises(ValueError, match="refinements"):
        PoseNet(refinements=-1)
    with pytest.raises(ValueError, match="coarse"):
        PoseNet(coarse=0)
    # 64x96 pixels are 16x24 cells of 4: they pool by 4 and 8, not by 3 (nor 5)
    k = K_64X96.expand(1, 3, 3)
    image = torch.rand(1, 3, 64, 96)
    with pytest.raises(ValueError, match="divides by 12 pixels"):
        PoseNet(coarse=3).eval()(image, image, k)
    # by 8 they pool into 2 x 3 cells: none inside the border, where the rotation is fitted
    with pytest.raises(ValueError, match="at least 96 pixels each way"):
        PoseNet(coarse=8).eval()(image, image, k)
    assert PoseNet(coarse=4).eval()(image, image, k).axis_angle.shape == (1, 3)
    # 8 x 12 pixels are 2 x 3 cells of 4: none inside the border even without pooling
    small = torch.rand(1, 3, 8, 12)
    with pytest.raises(ValueError, match="at least 12 pixels each way"):
        PoseNet(coarse=1).eval()(small, small, k)


def test_cell_rays_are_the_directions_through_the_cells_centres():
    k = torch.tensor([[[100.0, 0, 63.5], [0, 50.0, 47.5], [0, 0, 1]]])
    rays = cell_rays(k, (96, 128), (12, 16))  # 8-pixel cells
    assert rays.shape == (1, 2, 12, 16)
    # cell (row 0, column 0) is centred on pixel (3.5, 3.5)
    assert torch.allclose(rays[0, :, 0, 0], torch.tensor([(3.5 - 63.5) / 100, (3.5 - 47.5) / 50]))
    # the same pixel shift is twice the angle through half the focal length
    wide = cell_rays(k * torch.tensor([[0.5], [0.5], [1.0]]), (96, 128), (12, 16))
    step, wide_step = (r[0, 0, 0, 1] - r[0, 0, 0, 0] for r in (rays, wide))
    assert torch.allclose(wide_step, 2 * step)
