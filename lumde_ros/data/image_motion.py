"""Camera motion between two frames from the images alone: corners tracked across the pair
(Lucas-Kanade, checked both ways), the essential matrix by RANSAC, the rotation and direction
of translation it implies, and how far the camera went measured in the scene's own depth
(the tracks triangulated: metres stay unknown, but not distance against depth). Recordings
without odometry (#21) get from it what odometry gives the others: a motion the pose network
must reproduce, so it can neither explain a turn by sliding sideways nor shrink its
translation until depth no longer matters.
A pair now and then fits a wrong motion to few tracks (a 3-degree turn read as 13 on a
simulated drive), so whoever uses these must be robust to an outlier.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ImageMotionConfig:
    """How image motion is found (section `image_motion` of config/train.yaml)."""

    features: int
    min_distance_px: float
    forward_backward_px: float
    ransac_px: float
    min_inliers: int
    min_parallax_px: float
    keyframe_parallax: float


@dataclass(frozen=True)
class ImageMotion:
    """Motion of points from the first frame's camera to the second's: rotation (3, 3) and
    unit translation direction (3,); `inliers` matches agree with it; `parallax_px` is their
    median image motion left once the rotation is undone (what the direction rests on);
    `depth_baselines` is their median depth in the first camera in units of the distance
    travelled, so direction / depth_baselines is the translation in units of the scene's
    median depth; `depth_change` is their median depth in the second camera over that in the
    first (below 1 when the camera approached them), what keeps a chain of motions in one
    unit (`keyframe_poses`)."""

    rotation: np.ndarray
    direction: np.ndarray
    inliers: int
    parallax_px: float
    depth_baselines: float
    depth_change: float

    def matrix(self, inverse: bool = False) -> np.ndarray:
        """4x4 motion first -> second camera (or its inverse), the translation in units of
        the scene's median depth (see `depth_baselines`)."""
        translation = self.direction / self.depth_baselines
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = (self.rotation.T, -self.rotation.T @ translation) \
            if inverse else (self.rotation, translation)
        return matrix


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def tracked_points(first: np.ndarray, second: np.ndarray,
                   config: ImageMotionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Corners of the first gray frame (N, 2) and where they are in the second, tracked by
    pyramidal Lucas-Kanade both ways: a point is kept only when tracking it back lands
    within `forward_backward_px` of where it started (occlusions and repetitive texture
    fail that)."""
    corners = cv2.goodFeaturesToTrack(first, config.features, 0.01, config.min_distance_px)
    if corners is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    ahead, found, _ = cv2.calcOpticalFlowPyrLK(first, second, corners, None)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(second, first, ahead, None)
    error = np.linalg.norm((back - corners).reshape(-1, 2), axis=1)
    keep = (found.ravel() > 0) & (found_back.ravel() > 0) & \
        (error < config.forward_backward_px)
    return corners.reshape(-1, 2)[keep].astype(np.float64), \
        ahead.reshape(-1, 2)[keep].astype(np.float64)


def image_motion(first: np.ndarray, second: np.ndarray, k: np.ndarray,
                 config: ImageMotionConfig) -> tuple[ImageMotion | None, str]:
    """The motion between two RGB frames (H, W, 3) uint8 of one camera with matrix k (3, 3),
    and ''; or None and why not (too little texture, too few consistent tracks, no
    parallax: the direction of translation is then unknown)."""
    return motion_of_tracks(*tracked_points(_gray(first), _gray(second), config), k, config)


def is_keyframe(tracked: int, found: ImageMotion | None, width: int,
                config: ImageMotionConfig) -> bool:
    """Whether a frame is the next keyframe after one it shares `tracked` points with, moved
    by `found`: once the camera has travelled far enough for `keyframe_parallax` image widths
    of parallax (a turn alone adds none, and gives depth no signal), or once tracking is lost
    (the chain of keyframes must go on)."""
    return tracked < config.min_inliers or \
        found is not None and found.parallax_px >= config.keyframe_parallax * width


def motion_of_tracks(a: np.ndarray, b: np.ndarray, k: np.ndarray,
                     config: ImageMotionConfig) -> tuple[ImageMotion | None, str]:
    """`image_motion` from points tracked from the first frame (N, 2) to the second."""
    if len(a) < config.min_inliers:
        return None, (f"{len(a)} points tracked between the frames (need "
                      f"{config.min_inliers}): too little texture or too much motion")
    moved = float(np.median(np.linalg.norm(b - a, axis=1)))
    if moved < config.min_parallax_px:  # also what the essential-matrix solver cannot take
        return None, (f"the image barely moved ({moved:.2f} px, need "
                      f"{config.min_parallax_px}): the camera stood still or sees only far "
                      "things")
    try:
        essential, mask = cv2.findEssentialMat(a, b, k, method=cv2.RANSAC, prob=0.999,
                                               threshold=config.ransac_px)
    except cv2.error as err:  # degenerate point sets (all on a line, a plane seen edge-on)
        return None, f"no essential matrix fits the tracks ({err.err})"
    if essential is None or essential.shape != (3, 3):
        return None, "no essential matrix fits the tracks"
    inliers, rotation, translation, mask = cv2.recoverPose(essential, a, b, k, mask=mask)
    if inliers < config.min_inliers:
        return None, f"{inliers} tracks agree on one motion (need {config.min_inliers})"
    keep = mask.ravel() > 0
    parallax = _parallax(a[keep], b[keep], rotation, k)
    if parallax < config.min_parallax_px:
        return None, (f"{parallax:.2f} px of parallax once the rotation is undone (need "
                      f"{config.min_parallax_px}): the camera turned or stood, it did not move")
    direction = translation.ravel() / np.linalg.norm(translation)
    first, second = _depths(a[keep], b[keep], rotation, direction, k)
    front = (first > 0) & (second > 0)
    if front.sum() < config.min_inliers:
        return None, (f"{front.sum()} tracks triangulate in front of the cameras (need "
                      f"{config.min_inliers})")
    depth = float(np.median(first[front]))
    return ImageMotion(rotation, direction, int(inliers), parallax, depth,
                       float(np.median(second[front])) / depth), ""


def keyframe_poses(steps: Sequence[ImageMotion | None]
                   ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Camera poses (N, 4, 4) of consecutive keyframes chained from the motions between them
    (`steps[i]`: keyframe i-1 -> i, None where none was found), each keyframe's median depth
    (N,) in the same unit, and the index where each chain starts. A chain's unit is the
    median depth at its first keyframe; every step's length is measured against the depth
    where it starts (`depth_baselines`) and carries that depth on (`depth_change`), so the
    unit holds along the chain as the camera nears or leaves things. A missing motion starts
    a new chain: how far apart the two chains are is unknown."""
    poses, scales, starts = np.tile(np.eye(4), (len(steps), 1, 1)), np.ones(len(steps)), []
    for i, step in enumerate(steps):
        if step is None or i == 0:
            starts.append(i)
            continue
        motion = step.matrix()
        motion[:3, 3] *= scales[i - 1]  # from the previous keyframe's median depth to the unit
        poses[i] = poses[i - 1] @ np.linalg.inv(motion)
        scales[i] = scales[i - 1] * step.depth_change
    return poses, scales, starts


def _depths(a: np.ndarray, b: np.ndarray, rotation: np.ndarray, direction: np.ndarray,
            k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth (N,) of each track in the first camera and in the second, triangulated with the
    camera having moved one unit along `direction`."""
    first = k @ np.hstack([np.eye(3), np.zeros((3, 1))])
    second = np.hstack([rotation, direction[:, None]])
    points = cv2.triangulatePoints(first, k @ second, a.T, b.T)
    points = points[:3] / points[3]
    return points[2], (second @ np.vstack([points, np.ones(points.shape[1])]))[2]


def _parallax(a: np.ndarray, b: np.ndarray, rotation: np.ndarray, k: np.ndarray) -> float:
    """Median distance (pixels) between the second frame's points and the first frame's
    rotated into it: a pure rotation moves every point exactly there, so what is left is
    parallax from translation."""
    rays = np.linalg.inv(k) @ np.vstack([a.T, np.ones(len(a))])
    rotated = k @ (rotation @ rays)
    return float(np.median(np.linalg.norm(rotated[:2] / rotated[2] - b.T, axis=0)))
