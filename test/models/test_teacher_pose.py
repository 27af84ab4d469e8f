import pytest
import torch

from lumde_ros.models import PoseNet, StudentDepthNet, TeacherDepthNet, count_macs
from lumde_ros.models.pose import cell_rays, correlation


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
    k = torch.tensor([[80.0, 0, 47.5], [0, 80.0, 31.5], [0, 0, 1]]).expand(2, 3, 3)
    out = net(a, b, k)
    assert out.axis_angle.shape == (2, 3) and out.translation.shape == (2, 3)
    # near the identity, but not exactly: there auto-masking would hide every pixel
    assert 0 < out.translation.abs().max() < 0.01 and 0 < out.axis_angle.abs().max() < 0.01
    out.translation.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


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


def test_pose_net_refuses_an_empty_layer_list():
    with pytest.raises(ValueError, match="radius"):
        PoseNet(features=(), radius=4)


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
