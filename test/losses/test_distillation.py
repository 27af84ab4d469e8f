"""Distillation losses and the Transformer discriminator."""
from __future__ import annotations

import torch

from lumde_ros.losses.distillation import (affinity, discriminator_hinge, generator_hinge,
                                           pairwise_loss, pixel_loss)
from lumde_ros.models.discriminator import TransformerDiscriminator

RANGE = (0.1, 20.0)


def test_pixel_loss_is_zero_only_for_the_teachers_depth_at_every_scale():
    coarse = torch.rand(2, 1, 16, 24) * 0.5 + 0.1
    teacher = torch.nn.functional.interpolate(coarse, scale_factor=2.0, mode="nearest")
    scales = [teacher, coarse]  # 2x2 blocks: area-averaging is exact at the coarse scale
    assert pixel_loss(scales, RANGE, teacher, RANGE) < 1e-6
    farther = [s * 0.5 for s in scales]  # half the disparity: about twice the depth
    assert pixel_loss(farther, RANGE, teacher, RANGE) > 0.3
    # a zero weight hides a region completely
    wrong = [teacher.clone()]
    wrong[0][..., :24] = 0.9
    weight = torch.ones_like(teacher)
    weight[..., :24] = 0
    assert pixel_loss(wrong, RANGE, teacher, RANGE, weight) < 1e-6
    assert pixel_loss(wrong, RANGE, teacher, RANGE) > 0.1


def test_pairwise_compares_relations_not_channels():
    teacher = torch.rand(2, 64, 12, 16)
    student = torch.cat([teacher, teacher], dim=1) * 3  # other width, same relations
    assert pairwise_loss(student, teacher, (6, 8)) < 1e-10
    assert affinity(teacher, (6, 8)).shape == (2, 48, 48)
    assert pairwise_loss(torch.rand(2, 16, 12, 16), teacher, (6, 8)) > 1e-4


def test_hinge_losses():
    assert discriminator_hinge(torch.tensor([2.0]), torch.tensor([-2.0])) == 0
    assert discriminator_hinge(torch.tensor([0.0]), torch.tensor([0.0])) == 2
    assert generator_hinge(torch.tensor([1.0, 3.0])) == -2


def test_discriminator_scores_any_size_and_learns_to_tell_real_from_fake():
    net = TransformerDiscriminator(patch=8, dim=32, layers=2, heads=4, input_size=(32, 48))
    image = torch.rand(4, 3, 32, 48)
    assert net(torch.rand(4, 1, 32, 48), image).shape == (4,)
    assert net(torch.rand(1, 1, 64, 64), torch.rand(1, 3, 64, 64)).shape == (1,)
    smooth = torch.linspace(0.1, 0.9, 48).expand(4, 1, 32, 48).contiguous()   # "teacher"
    noisy = torch.rand(4, 1, 32, 48) * 0.8 + 0.1                             # "student"
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(40):
        loss = discriminator_hinge(net(smooth, image), net(noisy, image))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert net(smooth, image).mean() > net(noisy, image).mean() + 0.5
