import torch

from lumde_ros.losses.photometric import (min_reprojection, photometric_error, smoothness, ssim,
                                          unmoved_error)


def test_ssim_of_an_image_with_itself_is_one():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 20, generator=generator)
    torch.testing.assert_close(ssim(x, x), torch.ones_like(x))
    unrelated = torch.rand(2, 3, 16, 20, generator=generator)
    assert ssim(x, unrelated).mean().abs() < 0.1  # independent noise: no structure shared


def test_photometric_error_weights_structure_and_l1():
    x = torch.rand(1, 3, 8, 8)
    assert photometric_error(x, x, 0.85).abs().max() < 1e-6
    shifted = (x + 0.1).clamp(0, 1)
    l1_only = photometric_error(shifted, x, 0.0)
    torch.testing.assert_close(l1_only, (shifted - x).abs().mean(1, keepdim=True))


def test_min_reprojection_takes_the_best_view_and_masks_static_pixels():
    target = torch.rand(1, 3, 12, 12)
    good, bad = target.clone(), torch.rand_like(target)
    unmoved = unmoved_error([torch.rand_like(target)] * 2, target, 0.85)
    error, mask = min_reprojection([bad, good], target, 0.85, unmoved)
    assert error.abs().max() < 1e-6 and mask.mean() > 0.9
    # a source identical to the target (no motion) masks every pixel out
    error, mask = min_reprojection([bad], target, 0.85, unmoved_error([target], target, 0.85))
    assert mask.sum() == 0 and torch.equal(error, photometric_error(bad, target, 0.85))
    error, mask = min_reprojection([bad], target, 0.85, None)   # no auto-masking
    assert mask.all() and torch.equal(error, photometric_error(bad, target, 0.85))


def test_smoothness_ignores_scale_and_follows_image_edges():
    image = torch.zeros(1, 3, 8, 8)
    flat = torch.full((1, 1, 8, 8), 0.3)
    assert smoothness(flat, image) == 0
    step = flat.clone()
    step[..., 4:] = 0.6
    edge_image = image.clone()
    edge_image[..., 4:] = 1.0
    assert smoothness(step, edge_image) < smoothness(step, image)
    torch.testing.assert_close(smoothness(step * 5, image), smoothness(step, image))
