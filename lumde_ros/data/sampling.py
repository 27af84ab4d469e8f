"""Training samples from a recording: (previous, target, next) frame triplets. With odometry
only keyframes count, each at least `min_baseline_m` from the one before, so a robot standing
still adds no samples (no motion, no depth signal) and every pair has parallax."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lumde_ros.data.recording import RecordedFrame


def camera_motion(target: RecordedFrame, source: RecordedFrame) -> np.ndarray:
    """4x4 transform of points from the target camera's frame to the source camera's (what
    geometry.warp takes), from odometry poses."""
    return np.linalg.inv(source.odom_from_camera) @ target.odom_from_camera


def keyframes(frames: Sequence[RecordedFrame], min_baseline_m: float) -> list[int]:
    """Indices of frames each at least `min_baseline_m` from the previous keyframe."""
    kept: list[int] = []
    for k, frame in enumerate(frames):
        position = frame.odom_from_camera[:3, 3]
        if not kept or np.linalg.norm(position - frames[kept[-1]].odom_from_camera[:3, 3]) \
                >= min_baseline_m * (1 - 1e-9):
            kept.append(k)
    return kept


def triplets(frames: Sequence[RecordedFrame], min_baseline_m: float) -> list[tuple[int, int, int]]:
    """Index triplets (previous, target, next) of consecutive keyframes. Frames without a pose
    fall back to direct neighbours (the pose network must then supply the motion)."""
    if any(f.odom_from_camera is None for f in frames):
        chosen = list(range(len(frames)))
    else:
        chosen = keyframes(frames, min_baseline_m)
    return [(chosen[i - 1], chosen[i], chosen[i + 1]) for i in range(1, len(chosen) - 1)]
