"""The simulator's depth is exact and its poses are consistent with its images."""
from __future__ import annotations

import math

import cv2
import numpy as np

from lumde_ros.data import Recording
from lumde_ros.geometry import (OPTICAL_FROM_LINK_RPY, backproject, pose_matrix, project,
                                quaternion_from_rpy)
from lumde_ros.sim.scene import SceneRenderer, SceneSpec, Stadium, camera_intrinsics
from lumde_ros.sim.textures import prepare_textures


def test_floor_depth_matches_the_analytic_plane():
    roles, _ = prepare_textures()
    spec = SceneSpec("room", 6.0, 8.0, 2.8, roles["floor"], roles["wall"], roles["ceiling"],
                     (1.0, 1.0, 1.0), Stadium(4.0, 3.0, 1.0, 1.0))
    renderer = SceneRenderer(spec)
    height, pitch = 0.9, math.radians(15)
    intrinsics = camera_intrinsics(320, 240, 70.0)
    world_from_camera = pose_matrix(np.array([1.0, 3.0, height]),
                                    quaternion_from_rpy(0.0, pitch, 0.2)) @ \
        pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    try:
        _, depth = renderer.render(intrinsics, world_from_camera, 0.05, 60.0)
    finally:
        renderer.close()
    rays = backproject(np.ones((240, 320)), intrinsics).reshape(-1, 3)   # depth-1 rays
    directions = rays @ world_from_camera[:3, :3].T
    with np.errstate(divide="ignore"):
        t = np.where(directions[:, 2] < 0, -height / directions[:, 2], np.inf)
    hit = world_from_camera[:3, 3] + t[:, None] * directions
    inside = (np.isfinite(t) & (hit[:, 0] > 0.3) & (hit[:, 0] < 7.7) & (hit[:, 1] > 0.3)
              & (hit[:, 1] < 5.7)).reshape(240, 320)
    assert inside.mean() > 0.2
    np.testing.assert_allclose(depth[inside], t.reshape(240, 320)[inside], rtol=2e-3)


def test_odometry_and_ground_truth_reproject_frame_t1_onto_t(sim_bag):
    with Recording(sim_bag) as rec:
        frames = list(rec.frames())
    errors, unwarped = [], []
    for a, b in zip(frames[:-1], frames[1:]):
        # pixels of frame a, seen from frame b's camera
        points = backproject(a.depth, a.intrinsics).reshape(-1, 3)
        b_from_a = np.linalg.inv(b.odom_from_camera) @ a.odom_from_camera
        in_b = points @ b_from_a[:3, :3].T + b_from_a[:3, 3]
        uv = project(in_b, b.intrinsics).reshape(*a.depth.shape, 2).astype(np.float32)
        warped = cv2.remap(b.rgb, uv[..., 0], uv[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(float)
        seen = cv2.remap(b.depth, uv[..., 0], uv[..., 1], cv2.INTER_NEAREST,
                         borderValue=np.nan)
        visible = (np.abs(seen - in_b[:, 2].reshape(seen.shape)) < 0.02 * seen)
        visible &= (uv[..., 0] > 1) & (uv[..., 0] < a.intrinsics.width - 2)
        visible &= (uv[..., 1] > 1) & (uv[..., 1] < a.intrinsics.height - 2)
        assert visible.mean() > 0.5
        errors.append(np.abs(warped - a.rgb)[visible].mean() / 255)
        unwarped.append(np.abs(b.rgb.astype(float) - a.rgb)[visible].mean() / 255)
    assert np.median(errors) < 0.05
    assert np.median(errors) < 0.5 * np.median(unwarped)  # the motion is real and explained
