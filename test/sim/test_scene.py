"""The simulator's depth is exact for every kind of geometry and camera it draws, and its
poses are consistent with its images."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lumde_ros.data import Recording
from lumde_ros.geometry import (OPTICAL_FROM_LINK_RPY, backproject, pose_matrix, project,
                                quaternion_from_rpy)
from lumde_ros.sim.recording import SimulateOptions, simulate
from lumde_ros.sim.scene import Part, Quad, SceneRenderer, box_faces, camera_intrinsics
from lumde_ros.sim.textures import Texture, texture_file

# (x0, y0, z0, x1, y1, z1): axis-aligned boxes of the test scene: a table top on four 2.5 cm
# legs and a cabinet behind it, so legs and edges fall in the middle of the image.
TABLE = [(2.0, 0.6, 0.70, 3.0, 1.4, 0.74)] + [
    (x, y, 0.0, x + 0.025, y + 0.025, 0.70) for x in (2.0, 2.975) for y in (0.6, 1.375)]
CABINET = [(4.0, 0.2, 0.0, 4.6, 1.8, 1.6)]


def _scene() -> SceneRenderer:
    texture = Texture(texture_file("granite", 0, 1.0), "granite", 0.5)
    floor = Part((Quad((-20, -20, 0), (40, 0, 0), (0, 40, 0)),), texture, (1, 1, 1))
    boxes = [Part(box_faces(((a + d) / 2, (b + e) / 2, (c + f) / 2),
                            ((d - a) / 2, (e - b) / 2, (f - c) / 2)), texture, (0.8, 0.6, 0.5))
             for a, b, c, d, e, f in TABLE + CABINET]
    return SceneRenderer((floor, *boxes), None)


def _ray_cast(origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Distance along each direction to the nearest of the floor and the boxes (slabs)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(directions[:, 2] < 0, -origin[2] / directions[:, 2], np.inf)
        for box in TABLE + CABINET:
            lo, hi = np.array(box[:3]), np.array(box[3:])
            t0, t1 = (lo - origin) / directions, (hi - origin) / directions
            near = np.nanmax(np.minimum(t0, t1), axis=1)
            far = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (near <= far) & (near > 0)
            best = np.where(hit & (near < best), near, best)
    return best


@pytest.mark.parametrize("width, height, hfov, cam_height, pitch_deg, roll_deg", [
    (320, 240, 70.0, 0.9, -12.0, 0.0), (256, 256, 100.0, 0.15, 8.0, 4.0),
    (320, 180, 50.0, 1.55, -25.0, -3.0), (240, 180, 85.0, 0.5, -5.0, 2.0)])
def test_depth_is_exact_on_thin_legs_edges_and_floor(width, height, hfov, cam_height,
                                                      pitch_deg, roll_deg):
    intrinsics = camera_intrinsics(width, height, hfov)
    world_from_camera = pose_matrix(np.array([0.3, 1.0, cam_height]), quaternion_from_rpy(
        math.radians(roll_deg), -math.radians(pitch_deg), 0.05)) @ \
        pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    renderer = _scene()
    try:
        _, depth = renderer.render(intrinsics, world_from_camera, 0.05, 60.0)
    finally:
        renderer.close()
    rays = backproject(np.ones((height, width)), intrinsics).reshape(-1, 3)   # z = 1
    distance = _ray_cast(world_from_camera[:3, 3], rays @ world_from_camera[:3, :3].T)
    expected = distance.reshape(height, width)            # along a z = 1 ray: depth itself
    # pixels whose neighbourhood holds one surface: an edge pixel may show either side
    finite = np.where(np.isfinite(expected), expected, 1e3)
    lo = cv2.erode(finite.astype(np.float32), np.ones((3, 3)))
    hi = cv2.dilate(finite.astype(np.float32), np.ones((3, 3)))
    smooth = (hi < 1.1 * lo) & (finite < 15)
    assert smooth.mean() > 0.3
    np.testing.assert_allclose(depth[smooth], expected[smooth], rtol=3e-3)
    # the 2.5 cm legs are really there: pixels whose ray meets only a leg
    legs = np.zeros_like(smooth)
    for box in TABLE[1:]:
        lo_b, hi_b = np.array(box[:3]), np.array(box[3:])
        points = world_from_camera[:3, 3] + expected.reshape(-1, 1) * (
            rays @ world_from_camera[:3, :3].T)
        legs |= np.all((points > lo_b - 1e-3) & (points < hi_b + 1e-3), axis=1).reshape(
            height, width)
    assert legs.sum() > 100
    assert np.mean(np.abs(depth[legs] - expected[legs]) < 0.01 * expected[legs]) > 0.7


def _warp_errors(bag) -> tuple[list[float], list[float], list[float]]:
    """Per frame pair: photometric error of frame t+1 warped onto t by ground-truth depth
    and odometry, the same without warping, and the visible fraction."""
    with Recording(bag) as rec:
        frames = list(rec.frames())
    errors, unwarped, visible_share = [], [], []
    for a, b in zip(frames[:-1], frames[1:]):
        points = backproject(np.nan_to_num(a.depth, nan=1e3), a.intrinsics).reshape(-1, 3)
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
        moved = np.linalg.norm(b_from_a[:3, 3]) > 0.02 or np.trace(b_from_a[:3, :3]) < 2.999
        if visible.mean() > 0.3 and moved:
            errors.append(np.abs(warped - a.rgb)[visible].mean() / 255)
            unwarped.append(np.abs(b.rgb.astype(float) - a.rgb)[visible].mean() / 255)
            visible_share.append(visible.mean())
    return errors, unwarped, visible_share


@pytest.mark.parametrize("motion", ["drive", "handheld"])
def test_odometry_and_ground_truth_reproject_frame_t1_onto_t(tmp_path, motion):
    bag = tmp_path / motion
    simulate(SimulateOptions(out=bag, seed=3, frames=14, motion=motion), progress=False)
    errors, unwarped, visible = _warp_errors(bag)
    assert len(errors) >= 6
    # sensor noise and exposure steps stay; everything else is explained by the motion
    assert np.median(errors) < 0.06
    assert np.median(errors) < 0.6 * np.median(unwarped)


def test_every_layout_renders_depth_from_near_to_far(tmp_path):
    """Across a few scenes of both splits, depth spans the range a robot meets, and objects
    stand in the middle of the image (occlusion edges away from the borders)."""
    near, far, inner_edges = [], [], []
    for seed in (2, 3, 1002, 1003):
        bag = tmp_path / str(seed)
        simulate(SimulateOptions(out=bag, seed=seed, frames=6), progress=False)
        with Recording(bag) as rec:
            for f in rec.frames():
                d = f.depth[np.isfinite(f.depth)]
                near.append(np.percentile(d, 1))
                far.append(np.percentile(d, 99))
                grad = np.abs(np.diff(np.log(np.nan_to_num(f.depth, nan=60.0)), axis=1))
                h, w = grad.shape
                inner_edges.append(np.mean(grad[h // 4:3 * h // 4, w // 4:3 * w // 4] > 0.2))
    assert min(near) < 1.0 and max(far) > 5.0
    assert np.mean(np.array(inner_edges) > 0) > 0.3


def test_a_later_visit_is_the_same_place_and_camera_on_another_path(tmp_path):
    """`--visit N`: what a robot coming back records (the in-place fine-tune benchmark's
    held-out frames); the seed's own recording is visit 0 and stays as it was."""
    summaries, frames = [], []
    for name, visit in (("first", 0), ("second", 1), ("again", 1)):
        summaries.append(simulate(SimulateOptions(out=tmp_path / name, seed=1003, frames=8,
                                                  visit=visit), progress=False))
        with Recording(tmp_path / name) as rec:
            frames.append(list(rec.frames()))
    first, second, again = frames
    for key in ("layout", "objects", "texture_families", "width", "height", "hfov_deg",
                "camera_height_m"):
        assert summaries[0][key] == summaries[1][key], key
    assert (summaries[0]["visit"], summaries[1]["visit"]) == (0, 1)
    assert first[0].intrinsics == second[0].intrinsics
    assert np.allclose(first[0].floor_from_camera, second[0].floor_from_camera,
                       atol=1e-6)                                          # same mount
    travelled = [np.linalg.norm(f[-1].odom_from_camera[:3, 3] - f[0].odom_from_camera[:3, 3])
                 for f in (first, second)]
    assert not np.allclose(first[-1].odom_from_camera, second[-1].odom_from_camera)
    assert min(travelled) > 0.05
    assert np.abs(first[0].rgb.astype(int) - second[0].rgb).mean() > 5     # another view
    for a, b in zip(second, again):                                         # deterministic
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
        assert np.array_equal(a.odom_from_camera, b.odom_from_camera)
