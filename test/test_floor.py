"""Metric scale from the camera's height over the floor: it recovers a known scale from depth
that is right only up to scale, takes the floor and not a table top, tolerates a camera tilted
against what tf says, and refuses a frame without a floor in one line."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lumde_ros.data.recording import Recording
from lumde_ros.floor import (FloorConfig, FloorScale, fit_floor, mount_of, mounted_camera,
                             up_in_camera)
from lumde_ros.geometry import Intrinsics, pixel_rays, quaternion_from_rpy, pose_matrix
from lumde_ros.training.config import load_section

CONFIG = load_section("floor", FloorConfig)
INTRINSICS = Intrinsics.from_hfov(160, 120, 70.0)
UP = np.array([0.0, -1.0, 0.0])  # optical frame: y points down


def _synthetic(camera_height_m: float, table: tuple[float, float] | None = None) -> np.ndarray:
    """Depth of a camera looking level over a floor `camera_height_m` below it, a wall 8 m
    ahead, and optionally a table top `table` = (height below the camera, width in m) from
    1 to 3 m ahead, centred."""
    rx, ry = pixel_rays(INTRINSICS)
    rx, ry = np.meshgrid(rx, ry)
    depth = np.full(rx.shape, 8.0)
    down = ry > 0
    depth[down] = np.minimum(camera_height_m / ry[down], 8.0)
    if table is not None:
        below, width = table
        with np.errstate(divide="ignore"):
            z = np.where(down, below / ry, np.inf)
        on_top = (z >= 1.0) & (z <= 3.0) & (np.abs(rx * z) <= width / 2) & (z < depth)
        depth[on_top] = z[on_top]
    return depth.astype(np.float32)


def test_recovers_a_known_scale_from_simulated_ground_truth(floor_bag):
    """Ground truth divided by 2.5 is depth right up to scale: the floor's scale is 2.5."""
    floor = FloorScale(CONFIG)
    with Recording(floor_bag) as recording:
        for frame in recording.frames():
            up, height_m = up_in_camera(frame.odom_from_camera)
            depth = np.where(frame.depth < 10.0, frame.depth, np.nan) / 2.5
            floor.update(depth, frame.intrinsics, up, height_m)
    assert floor.value == pytest.approx(2.5, rel=0.02)
    assert floor.fits == 3 and floor.refused == 0  # frames 1, 4 and 7 of 8


def test_the_floor_and_not_a_larger_table_top():
    """A table top is level too, and here covers more of the image than the floor does;
    the floor is the level plane with nothing under it."""
    depth = _synthetic(1.2, table=(0.5, 1.5))  # 22 % of the image; the floor 13 %
    fit, why = fit_floor(depth, INTRINSICS, UP, CONFIG)
    assert why == ""
    assert fit.height == pytest.approx(1.2, rel=0.01)


def test_the_plane_is_fitted_so_a_tilt_against_tf_does_not_bias_the_scale():
    """tf says level while the camera pitches 8 degrees down: the floor found is the same."""
    tilt = pose_matrix(np.zeros(3), quaternion_from_rpy(math.radians(8.0), 0.0, 0.0))[:3, :3]
    fit, why = fit_floor(_synthetic(0.4), INTRINSICS, tilt @ UP, CONFIG)
    assert why == ""
    assert fit.height == pytest.approx(0.4, rel=0.01)


@pytest.mark.parametrize("what", ["only what lies above the camera", "tf says upside down"])
def test_no_floor_in_view_is_refused_in_one_line(what):
    depth, up = _synthetic(0.4), UP
    if what == "tf says upside down":
        up = -UP
    else:
        depth[INTRINSICS.height // 2:] = np.nan
    fit, why = fit_floor(depth, INTRINSICS, up, CONFIG)
    assert fit is None, what
    assert why.startswith("no floor in view") and "\n" not in why


def test_a_wall_alone_is_refused_and_the_running_scale_keeps_its_last_value():
    floor = FloorScale(replace(CONFIG, fit_every=1))
    assert floor.update(_synthetic(0.4) / 4.0, INTRINSICS, UP, 0.4) == pytest.approx(4.0,
                                                                                   rel=0.01)
    wall = np.full((INTRINSICS.height, INTRINSICS.width), 2.0, np.float32)
    assert floor.update(wall, INTRINSICS, UP, 0.4) == pytest.approx(4.0, rel=0.01)
    assert floor.refused == 1 and floor.last_refusal.startswith("no floor in view")


@pytest.mark.parametrize("height_m, tilt_deg", [(0.5, 10.0), (1.2, -7.0), (0.15, 60.0)])
def test_a_mount_is_a_rotation_whose_up_and_height_are_the_parameters(height_m, tilt_deg):
    pose = mounted_camera(height_m, tilt_deg)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    up, height = up_in_camera(pose)
    tilt = math.radians(tilt_deg)  # up leans towards the image's top and, tilted down, back
    np.testing.assert_allclose(up, [0.0, -math.cos(tilt), -math.sin(tilt)], atol=1e-12)
    assert height == height_m
    assert mount_of(pose) == pytest.approx((height_m, tilt_deg))
