"""Camera motion from the images alone agrees with odometry on a simulated drive, including
turns either way, and refuses pairs that cannot show it, saying why."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lumde_ros.data.image_motion import ImageMotionConfig, image_motion
from lumde_ros.data.recording import Recording
from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.training.config import load_section

CONFIG = load_section("image_motion", ImageMotionConfig)


def _angle_deg(rotation: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)))


def _yaw_deg(rotation: np.ndarray) -> float:
    """Turn about the camera's y axis (down in the optical frame)."""
    return math.degrees(math.atan2(rotation[0, 2], rotation[0, 0]))


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
        yaws.append((_yaw_deg(truth[:3, :3]), _yaw_deg(found.rotation)))
    assert len(errors) >= 4, "too few frame pairs gave a motion"
    assert np.median(errors) < 1.5 and np.median(cosines) > 0.9, (errors, cosines)
    true_yaw, found_yaw = np.array(yaws).T
    off = np.abs(found_yaw - true_yaw)
    # The turn, of the right sign; a pair now and then fits a wrong motion to few tracks, so
    # whoever uses these must be robust to an outlier.
    assert np.median(off) < 0.5 and (off < 1.0).mean() >= 0.7, yaws


def test_pairs_without_texture_or_motion_are_refused_with_the_reason(sim_bag):
    with Recording(sim_bag) as recording:
        frame = next(recording.frames())
    k = frame.intrinsics.matrix()
    blank = np.full_like(frame.rgb, 128)
    found, why = image_motion(blank, blank, k, CONFIG)
    assert found is None and "too little texture" in why
    found, why = image_motion(frame.rgb, frame.rgb, k, CONFIG)
    assert found is None and "barely moved" in why, why
