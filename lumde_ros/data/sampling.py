"""Training samples from a recording: (previous, target, next) frame triplets. With odometry
only keyframes count, each at least `min_baseline_m` from the one before, so a robot standing
still adds no samples (no motion, no depth signal) and every pair has parallax."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lumde_ros.data.recording import RecordedFrame


def keyframes(frames: Sequence[RecordedFrame], min_baseline_m: float) -> list[int]:
    """Indices of frames each at least `min_baseline_m` from the previous keyframe."""
    kept: list[int] = []
    for k, frame in enumerate(frames):
        position = frame.odom_from_camera[:3, 3]
        if not kept or np.linalg.norm(position - frames[kept[-1]].odom_from_camera[:3, 3]) \
                >= min_baseline_m * (1 - 1e-9):
            kept.append(k)
    return kept


# How a recorder keeps frames: every one, one per period, or one per distance travelled.
KEYFRAME_MODES = ("all", "time", "baseline")


@dataclass
class KeyframeChooser:
    """Online keyframe choice while recording, so a bag holds frames worth training on and not
    a robot standing still at 30 Hz. `baseline` keeps a frame once the robot has moved
    `baseline_m` since the last kept one, and falls back to `time` while there is no odometry."""

    mode: str
    period_s: float
    baseline_m: float
    _time_s: float | None = None
    _position: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mode not in KEYFRAME_MODES:
            raise ValueError(f"keyframes '{self.mode}' is not one of {', '.join(KEYFRAME_MODES)}")

    def keep(self, time_s: float, position: np.ndarray | None) -> bool:
        """Whether the frame at `time_s` (seconds), with the robot at `position` (odometry,
        metres, or None when unknown), is a keyframe; if so it becomes the reference."""
        if self.mode == "baseline" and position is not None and self._position is not None:
            kept = np.linalg.norm(position - self._position) >= self.baseline_m
        elif self.mode == "all" or self._time_s is None:
            kept = True
        else:
            kept = time_s - self._time_s >= self.period_s * (1 - 1e-6)
        if kept:
            self._time_s, self._position = time_s, position
        return kept


def triplets(frames: Sequence[RecordedFrame], min_baseline_m: float) -> list[tuple[int, int, int]]:
    """Index triplets (previous, target, next) of consecutive keyframes. Frames without a pose
    fall back to direct neighbours (the pose network must then supply the motion)."""
    if any(f.odom_from_camera is None for f in frames):
        chosen = list(range(len(frames)))
    else:
        chosen = keyframes(frames, min_baseline_m)
    return [(chosen[i - 1], chosen[i], chosen[i + 1]) for i in range(1, len(chosen) - 1)]
