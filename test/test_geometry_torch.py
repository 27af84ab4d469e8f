"""Batched torch geometry used by view synthesis."""
from __future__ import annotations

import math

import numpy as np
import torch

from lumde_ros.data import Recording
from lumde_ros.geometry import (Intrinsics, axis_angle_to_matrix, backproject_depth,
                                matrix_quaternion, pose_from_vector, pose_matrix,
                                project_points, quaternion_from_rpy, warp)
from lumde_ros.losses.photometric import photometric_error

K = Intrinsics(60.0, 60.0, 31.5, 23.5, 64, 48)
# The exactness tests run in float64: their point is the geometry, and in float32 the sampling
# position of an exact reprojection is off by a few ulp of the pixel coordinate (~1e-5 px at
# u = 63). Times a texture gradient of up to 1 per pixel, that is rounding of the size of any
# tolerance tight enough to catch a geometric error, and which kernels the CPU gets decide it.
# In float64 the same rounding is ~1e-13, far below ATOL.
DTYPE = torch.float64
ATOL = 1e-9


def _k(batch: int = 1) -> torch.Tensor:
    return torch.tensor(K.matrix(), dtype=DTYPE).expand(batch, 3, 3)


def _texture(h: int = 48, w: int = 64) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.tensor(rng.random((1, 3, h, w)), dtype=DTYPE)


def test_axis_angle_matches_quaternion_rotation():
    rpy = (0.2, -0.4, 1.0)
    expected = pose_matrix(np.zeros(3), quaternion_from_rpy(*rpy))[:3, :3]
    q = matrix_quaternion(expected)
    angle = 2 * math.acos(q[3])
    axis = q[:3] / math.sin(angle / 2)
    got = axis_angle_to_matrix(torch.tensor([axis * angle], dtype=torch.float64))[0]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-10)
    pose = pose_from_vector(torch.zeros(2, 3), torch.tensor([[1.0, 2, 3], [0, 0, 0]]))
    assert torch.equal(pose[0, :3, 3], torch.tensor([1.0, 2, 3])) and pose.shape == (2, 4, 4)


def test_backproject_project_round_trip():
    depth = torch.rand(2, 1, 48, 64, dtype=DTYPE) * 5 + 0.5
    grid, z = project_points(backproject_depth(depth, _k(2)), _k(2), 48, 64)
    v, u = torch.meshgrid(torch.arange(48, dtype=DTYPE), torch.arange(64, dtype=DTYPE),
                          indexing="ij")
    torch.testing.assert_close(grid[0, ..., 0], u / 63 * 2 - 1, atol=ATOL, rtol=0)
    torch.testing.assert_close(grid[1, ..., 1], v / 47 * 2 - 1, atol=ATOL, rtol=0)
    torch.testing.assert_close(z, depth, atol=ATOL, rtol=0)


def test_identity_pose_and_constant_depth_return_the_image():
    image = _texture()
    warped, mask = warp(image, torch.full((1, 1, 48, 64), 2.0, dtype=DTYPE),
                        torch.eye(4, dtype=DTYPE)[None], _k())
    torch.testing.assert_close(warped, image, atol=ATOL, rtol=0)
    assert mask.all()


def test_known_translation_reprojects_a_textured_plane_exactly():
    depth_m, shift_px = 3.0, 3
    tx = shift_px * depth_m / K.fx                      # the source camera is tx to the right
    target = _texture()
    source = torch.roll(target, -shift_px, dims=3)      # the plane moved left in the source
    target_to_source = torch.eye(4, dtype=DTYPE)[None].clone()
    target_to_source[0, 0, 3] = -tx
    warped, mask = warp(source, torch.full((1, 1, 48, 64), depth_m, dtype=DTYPE),
                        target_to_source, _k())
    inner = (slice(None), slice(None), slice(None), slice(shift_px, -shift_px))
    torch.testing.assert_close(warped[inner], target[inner], atol=ATOL, rtol=0)
    assert not mask[0, 0, :, :shift_px].any() and mask[0, 0, :, shift_px:].all()


def test_torch_warp_explains_simulated_motion(sim_bag):
    with Recording(sim_bag) as rec:
        a, b = list(rec.frames())[3:5]
    t = torch.tensor
    image_b = t(b.rgb, dtype=torch.float32).permute(2, 0, 1)[None] / 255
    image_a = t(a.rgb, dtype=torch.float32).permute(2, 0, 1)[None] / 255
    a_to_b = t(np.linalg.inv(b.odom_from_camera) @ a.odom_from_camera, dtype=torch.float32)
    k = t(a.intrinsics.matrix(), dtype=torch.float32)[None]
    depth = t(a.depth)[None, None]
    warped, mask = warp(image_b, depth, a_to_b[None], k)
    unwarped = photometric_error(image_b, image_a, 0.85)[mask.bool()].mean()
    synthesised = photometric_error(warped, image_a, 0.85)[mask.bool()].mean()
    assert synthesised < 0.5 * unwarped

