"""Camera motion from the images alone agrees with odometry on a simulated drive, including
turns either way, and refuses pairs that cannot show it, saying why."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lumde_ros.data.image_motion import (ImageMotionConfig, image_motion, keyframe_poses,
                                         motion_of_tracks, tracked_points)
from lumde_ros.data.recording import Recording
from lumde_ros.evaluation import yaw_deg
from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.training.config import load_section

CONFIG = load_section("image_motion", ImageMotionConfig)


def _angle_deg(rotation: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)))


@pytest.mark.parametrize("turn_deg", [0.0, 3.0, -3.0])
def test_rotation_and_direction_agree_with_odometry_turning_either_way(sim_bag, turn_deg):
    """Each pair is two frames of the drive with the second camera turned further by
    `turn_deg` about its y axis: a turn changes only where pixels go (the homography
    K R K^-1), so the turned view is exact and the truth is the turn after the odometry."""
    with Recording(sim_bag) as recording:
        frames = [f for f in recording.frames() if f.odom_from_camera is not None]
    turn = pose_matrix(np.zeros(3), quaternion_from_rpy(0.0, math.radians(turn_deg), 0.0))
    errors, cosines, yaws = [], [], []
    for first, second in zip(frames, frames[2:]):
        k = first.intrinsics.matrix()
        homography = k @ turn[:3, :3] @ np.linalg.inv(k)
        turned = cv2.warpPerspective(second.rgb, homography, second.rgb.shape[1::-1])
        found, _ = image_motion(first.rgb, turned, k, CONFIG)
        if found is None:
            continue
        truth = turn @ np.linalg.inv(second.odom_from_camera) @ first.odom_from_camera
        errors.append(_angle_deg(found.rotation.T @ truth[:3, :3]))
        cosines.append(float(found.direction @ truth[:3, 3]) / np.linalg.norm(truth[:3, 3]))
        yaws.append((yaw_deg(truth[:3, :3]), yaw_deg(found.rotation)))
    assert len(errors) >= 4, "too few frame pairs gave a motion"
    assert np.median(errors) < 1.5 and np.median(cosines) > 0.9, (errors, cosines)
    true_yaw, found_yaw = np.array(yaws).T
    off = np.abs(found_yaw - true_yaw)
    # The turn, of the right sign; a pair now and then fits a wrong motion to few tracks, so
    # whoever uses these must be robust to an outlier.
    assert np.median(off) < 0.5 and (off < 1.0).mean() >= 0.7, yaws


def test_the_distance_travelled_is_measured_in_the_scenes_depth(sim_bag):
    """How far the camera went against how far the tracked points are: the median ground-truth
    depth of the tracks divided by the odometry's baseline, which is what makes the learned
    route's translation a target with a size."""
    with Recording(sim_bag) as recording:
        frames = [f for f in recording.frames() if f.odom_from_camera is not None]
    found_ratios, true_ratios, found_changes, true_changes = [], [], [], []
    for first, second in zip(frames, frames[2:]):
        gray = [cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY) for f in (first, second)]
        a, b = tracked_points(*gray, CONFIG)
        found, _ = motion_of_tracks(a, b, first.intrinsics.matrix(), CONFIG)
        if found is None:
            continue
        column, row = np.round(a).astype(int).T
        depth = np.median(first.depth[row, column])
        column, row = np.clip(np.round(b).astype(int), 0, np.array(gray[1].shape[::-1]) - 1).T
        baseline = np.linalg.norm(second.odom_from_camera[:3, 3] - first.odom_from_camera[:3, 3])
        found_ratios.append(found.depth_baselines)
        true_ratios.append(depth / baseline)
        found_changes.append(found.depth_change)
        true_changes.append(np.median(second.depth[row, column]) / depth)
        translation = found.matrix()[:3, 3]
        assert np.linalg.norm(translation) == pytest.approx(1 / found.depth_baselines)
        inverse = found.matrix(inverse=True) @ found.matrix()
        assert np.allclose(inverse, np.eye(4), atol=1e-9)
    assert len(found_ratios) >= 4
    error = np.abs(np.log(np.array(found_ratios) / np.array(true_ratios)))
    assert np.median(error) < np.log(1.15), (found_ratios, true_ratios)
    # the drive goes forwards: the tracks come nearer, by as much as the truth says
    assert np.median(true_changes) < 0.99
    error = np.abs(np.log(np.array(found_changes) / np.array(true_changes)))
    assert np.median(error) < np.log(1.02), (found_changes, true_changes)


def test_keyframe_poses_chain_the_motions_in_one_unit(sim_bag):
    """Chained over every other frame (the next one is too near for a motion), the camera
    positions are odometry's up to one scale, that scale is the first frame's median depth,
    and a missing motion starts a new chain."""
    with Recording(sim_bag) as recording:
        frames = [f for f in recording.frames() if f.odom_from_camera is not None][::2]
    steps = [None] + [image_motion(a.rgb, b.rgb, a.intrinsics.matrix(), CONFIG)[0]
                      for a, b in zip(frames, frames[1:])]
    assert all(step is not None for step in steps[1:])
    poses, scales, starts = keyframe_poses(steps)
    assert starts == [0] and scales[0] == 1.0 and np.allclose(poses[0], np.eye(4))
    truth = np.stack([np.linalg.inv(frames[0].odom_from_camera) @ f.odom_from_camera
                      for f in frames])[:, :3, 3]
    found = poses[:, :3, 3]
    metres = float(np.sum(found * truth) / np.sum(found * found))  # the unit, fitted
    assert np.linalg.norm(found * metres - truth, axis=1).max() < 0.1 * np.linalg.norm(truth[-1])
    a = tracked_points(*[cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY) for f in frames[:2]], CONFIG)[0]
    column, row = np.round(a).astype(int).T
    assert metres == pytest.approx(np.median(frames[0].depth[row, column]), rel=0.15)
    poses, scales, starts = keyframe_poses([*steps[:3], None, *steps[4:]])
    assert starts == [0, 3] and scales[3] == 1.0 and np.allclose(poses[3], np.eye(4))


def test_pairs_without_texture_or_motion_are_refused_with_the_reason(sim_bag):
    with Recording(sim_bag) as recording:
        frame = next(recording.frames())
    k = frame.intrinsics.matrix()
    blank = np.full_like(frame.rgb, 128)
    found, why = image_motion(blank, blank, k, CONFIG)
    assert found is None and "too little texture" in why
    found, why = image_motion(frame.rgb, frame.rgb, k, CONFIG)
    assert found is None and "barely moved" in why, why
