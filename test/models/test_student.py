import pytest
import torch

from lumde_ros.models.blocks import BilinearUp2
from lumde_ros.models import MetricDepth, StudentDepthNet, count_macs, fuse_for_inference


def test_multiscale_outputs_and_features():
    net = StudentDepthNet().eval()
    out = net(torch.rand(2, 3, 128, 160))
    assert [tuple(d.shape) for d in out.disps] == [(2, 1, 128, 160), (2, 1, 64, 80),
                                                   (2, 1, 32, 40), (2, 1, 16, 20)]
    assert all(((d >= 0) & (d <= 1)).all() for d in out.disps)
    assert [f.shape[-1] for f in out.features] == [80, 40, 20, 10, 5]


def test_light_enough_for_a_robot_cpu():
    net = StudentDepthNet()
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    assert count_macs(net, 320, 256) < 0.5e9


def test_fusing_batchnorm_keeps_outputs():
    torch.manual_seed(0)
    net = StudentDepthNet()
    net.train()
    net(torch.rand(4, 3, 64, 64))  # move BN statistics away from identity
    net.eval()
    x = torch.rand(1, 3, 64, 96)
    before = MetricDepth(net, 1.0)(x)
    after = MetricDepth(fuse_for_inference(net), 1.0)(x)
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_gradients_reach_every_parameter():
    net = StudentDepthNet()
    out = net(torch.rand(1, 3, 64, 64))
    sum(d.mean() for d in out.disps).backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("shape", [(1, 1, 128, 160), (2, 3, 5, 7), (1, 4, 1, 2)])
def test_bilinear_up2_equals_torch_bilinear_interpolation(shape):
    x = torch.randn(shape, dtype=torch.float64)
    expected = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear",
                                               align_corners=False)
    up = BilinearUp2(shape[1]).double()
    torch.testing.assert_close(up(x), expected, rtol=0, atol=1e-12)
    assert not up.state_dict()  # not part of checkpoints: older ones load unchanged
