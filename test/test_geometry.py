import cv2
import numpy as np
import pytest
import torch

from lumde_ros.geometry import Intrinsics, backproject, disp_to_depth, pixel_rays, project


def test_backproject_then_project_is_identity(intrinsics):
    depth = np.random.default_rng(1).uniform(0.5, 8.0, (intrinsics.height, intrinsics.width))
    points = backproject(depth, intrinsics).reshape(-1, 3)
    uv = project(points, intrinsics)
    us, vs = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    np.testing.assert_allclose(uv, np.stack([us.ravel(), vs.ravel()], 1), atol=1e-3)
    np.testing.assert_allclose(points[:, 2], depth.ravel(), rtol=1e-6)


@pytest.mark.parametrize("size", [(320, 240), (320, 256), (160, 120), (1280, 960)])
def test_resized_intrinsics_match_opencv_resize(intrinsics, size):
    """A blob drawn at a 3-D point's projection lands, after cv2.resize, where the resized
    intrinsics project the same point (pixel-centre convention)."""
    point = np.array([[0.4, -0.3, 3.0]])
    u, v = project(point, intrinsics)[0]
    us, vs = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    blob = np.exp(-((us - u) ** 2 + (vs - v) ** 2) / (2 * 12.0 ** 2)).astype(np.float32)
    small = cv2.resize(blob, size, interpolation=cv2.INTER_AREA if size[0] < 640
                       else cv2.INTER_LINEAR)
    ys, xs = np.mgrid[:size[1], :size[0]]
    centroid = np.array([(small * xs).sum(), (small * ys).sum()]) / small.sum()
    expected = project(point, intrinsics.resized(*size))[0]
    np.testing.assert_allclose(centroid, expected, atol=0.05)


def test_crop_shifts_principal_point(intrinsics):
    crop = intrinsics.cropped(100, 50, 200, 100)
    point = np.array([[0.1, 0.2, 2.0]])
    np.testing.assert_allclose(project(point, crop), project(point, intrinsics) - [100, 50])
    assert (crop.width, crop.height) == (200, 100)


def test_pixel_rays_with_stride_sample_every_nth_pixel(intrinsics):
    rx, ry = pixel_rays(intrinsics, stride=4)
    assert rx.shape == (160,) and ry.shape == (120,)
    assert rx[1] == pytest.approx((4 - intrinsics.cx) / intrinsics.fx)


def test_from_hfov_gives_the_field_of_view():
    i = Intrinsics.from_hfov(640, 480, 90.0)
    assert i.fx == pytest.approx(320.0) and i.is_valid()
    assert not Intrinsics(0.0, 1.0, 0, 0, 10, 10).is_valid()
    assert not Intrinsics(float("nan"), 1.0, 0, 0, 10, 10).is_valid()


def test_disp_to_depth_spans_near_to_far():
    depth = disp_to_depth(torch.tensor([0.0, 1.0]), near_m=0.1, far_m=20.0)
    torch.testing.assert_close(depth, torch.tensor([20.0, 0.1]))


def test_pose_round_trip_and_optical_convention():
    from lumde_ros.geometry import (OPTICAL_FROM_LINK_RPY, matrix_quaternion, pose_matrix,
                                    quaternion_from_rpy)
    q = quaternion_from_rpy(0.3, -0.2, 1.1)
    m = pose_matrix(np.array([1.0, 2.0, 3.0]), q)
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(pose_matrix(m[:3, 3], matrix_quaternion(m)), m, atol=1e-12)
    optical = pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    # optical z is link x (forward), optical x is link -y (right), optical y is link -z (down)
    np.testing.assert_allclose(optical[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
