"""Metric scale from the floor: a robot that knows how high its camera sits above the floor
(tf) can turn any depth that is right up to scale into metres, by fitting the floor plane in
the predicted depth and comparing its distance from the camera with the known height.

Only the direction of "up" in the camera comes from tf, and only to pick which plane is the
floor (within `max_tilt_deg`); the plane itself is fitted to the depth, so a camera rocking on
its mount or a slightly sloped floor does not bias the scale. Scaling depth scales the
plane's distance by the same factor, so the fit works in the network's own units.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lumde_ros.geometry import Intrinsics, backproject


@dataclass(frozen=True)
class FloorConfig:
    """How the floor is found (section `floor` of config/train.yaml)."""

    points: int            # depth pixels sampled for the fit
    iterations: int        # RANSAC plane hypotheses
    max_tilt_deg: float    # the floor's normal is within this angle of tf's up
    inlier_fraction: float  # a point is on the plane within this fraction of the camera height
    min_coverage: float    # the floor must cover this fraction of the valid pixels
    max_below: float       # at most this fraction of them may lie under the floor (noise)
    fit_every: int         # frames between fits (a fit costs about 15 ms on one core)
    window: int            # fits whose scales the running estimate takes the median of
    calibration_frames: int      # a relative run's frames fitted for its metric scale (0: none)
    calibration_min_fits: int    # fits that must find the floor for that scale
    calibration_max_spread: float  # their scales' interquartile range over the median, at most
    gate_max_error: float  # a fine-tune's gate: how far off the held-out floor may put metres
    gate_min_fits: int     # ...judged only when the floor is found in this many held-out frames


@dataclass(frozen=True)
class FloorFit:
    """The floor plane in camera coordinates: unit normal pointing up, the camera's height
    above it (in the depth's units) and the fraction of valid pixels on it."""

    normal: np.ndarray
    height: float
    coverage: float


def up_in_camera(floor_from_camera: np.ndarray) -> tuple[np.ndarray, float]:
    """The floor's up direction in the optical frame and the camera's height above the floor,
    from the camera's pose in a frame whose z is up and whose origin lies on the floor (odom
    by REP 105, base_footprint by REP 120)."""
    rotation = floor_from_camera[:3, :3]
    return rotation.T @ np.array([0.0, 0.0, 1.0]), float(floor_from_camera[2, 3])


def mounted_camera(height_m: float, tilt_deg: float) -> np.ndarray:
    """The pose over the floor (as up_in_camera takes it) of an optical frame (x right, y
    down, z ahead) `height_m` above the floor, looking `tilt_deg` below the horizontal: what
    a robot's fixed mount gives where its tf is not at hand."""
    tilt = math.radians(tilt_deg)
    pose = np.eye(4)
    pose[:3, 0] = (0.0, -1.0, 0.0)
    pose[:3, 1] = (-math.sin(tilt), 0.0, -math.cos(tilt))
    pose[:3, 2] = (math.cos(tilt), 0.0, -math.sin(tilt))
    pose[2, 3] = height_m
    return pose


def mount_of(floor_from_camera: np.ndarray) -> tuple[float, float]:
    """The camera_height_m and camera_tilt_deg (the depth node's parameters) of a pose over
    the floor: the inverse of mounted_camera, roll left out."""
    ahead = floor_from_camera[:3, 2]
    return float(floor_from_camera[2, 3]), math.degrees(math.asin(-np.clip(ahead[2], -1, 1)))


def _plane(sample: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Unit normal n and offset h of the plane n.x + h = 0 through three points, or None when
    they are (nearly) on one line."""
    normal = np.cross(sample[1] - sample[0], sample[2] - sample[0])
    length = np.linalg.norm(normal)
    if length < 1e-12:
        return None
    normal = normal / length
    return normal, float(-normal @ sample[0])


def fit_floor(depth: np.ndarray, intrinsics: Intrinsics, up: np.ndarray, config: FloorConfig,
              seed: int = 0) -> tuple[FloorFit | None, str]:
    """The floor in `depth` (H, W, any units, NaN = none; `intrinsics` of that size), or None
    and why not. RANSAC over planes whose normal is within max_tilt_deg of `up`; the best is
    refined by least squares over its inliers."""
    points = backproject(depth, intrinsics).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1) & (points[:, 2] > 0)]
    if len(points) < 3:
        return None, "no valid depth in the frame"
    rng = np.random.default_rng(seed)
    if len(points) > config.points:
        points = points[rng.choice(len(points), config.points, replace=False)]
    up = up / np.linalg.norm(up)
    below = points[points @ up < 0]
    needed = config.min_coverage * len(points)
    if len(below) < max(needed, 3):
        return None, (f"no floor in view: {len(below) / len(points):.0%} of the depth lies "
                      f"below the camera, {config.min_coverage:.0%} needed")
    min_cos = math.cos(math.radians(config.max_tilt_deg))
    best, best_count = None, 0
    for _ in range(config.iterations):
        plane = _plane(below[rng.choice(len(below), 3, replace=False)])
        if plane is None:
            continue
        normal, offset = plane
        if normal @ up < 0:
            normal, offset = -normal, -offset
        if normal @ up < min_cos or offset <= 0:
            continue  # a wall, a slope steeper than the floor may be, or a plane above
        signed = points @ normal + offset
        count = int((np.abs(signed) < config.inlier_fraction * offset).sum())
        under = int((signed < -config.inlier_fraction * offset).sum())
        if count > best_count and under <= config.max_below * len(points):
            best, best_count = (normal, offset), count  # a table top has the floor under it
    if best is None or best_count < needed:
        found = best_count / len(points)
        return None, (f"no floor in view: the largest level plane covers {found:.0%} of the "
                      f"depth, {config.min_coverage:.0%} needed")
    normal, offset = best
    on_plane = points[np.abs(points @ normal + offset) < config.inlier_fraction * offset]
    centre = on_plane.mean(axis=0)
    refined = np.linalg.svd(on_plane - centre, full_matrices=False)[2][2]
    refined = refined if refined @ up > 0 else -refined
    if refined @ up >= min_cos and -refined @ centre > 0:
        normal, offset = refined, float(-refined @ centre)
    return FloorFit(normal, offset, len(on_plane) / len(points)), ""


def floor_scale(depth: np.ndarray, intrinsics: Intrinsics, up: np.ndarray,
                camera_height_m: float, config: FloorConfig,
                seed: int = 0) -> tuple[float | None, str]:
    """Metres per depth unit from one frame's floor (see fit_floor), or None and why."""
    if camera_height_m <= 0:
        return None, (f"the camera is {camera_height_m:.2f} m above the floor frame: tf does "
                      "not place it over the floor")
    fit, why = fit_floor(depth, intrinsics, up, config, seed)
    return (None, why) if fit is None else (camera_height_m / fit.height, "")


class FloorScale:
    """Metres per depth unit from the floor, as a running median over the last
    `config.window` fits that found the floor, fitted every `config.fit_every`-th frame:
    one frame's fit moves with what the floor shows of itself, the camera's height does not."""

    def __init__(self, config: FloorConfig) -> None:
        self.config = config
        self._scales: deque[float] = deque(maxlen=config.window)
        self._frames = 0
        self.value: float | None = None  # set whole, so another thread may read it any time
        self.fits = 0
        self.refused = 0
        self.last_refusal = ""

    def update(self, depth: np.ndarray, intrinsics: Intrinsics, up: np.ndarray,
               camera_height_m: float) -> float | None:
        """Fit the floor in this frame when it is due and return the running scale (None
        before any fit found a floor)."""
        self._frames += 1
        if (self._frames - 1) % self.config.fit_every:
            return self.value
        self.fits += 1
        scale, why = floor_scale(depth, intrinsics, up, camera_height_m, self.config)
        if scale is None:
            self.refused += 1
            self.last_refusal = why
        else:
            self._scales.append(scale)
            self.value = float(np.median(self._scales))
        return self.value


@dataclass(frozen=True)
class FloorCalibration:
    """One model's metres per depth unit over many frames: the median of the scales of the
    fits that found the floor, or None and why. spread: those scales' interquartile range
    over their median (how much the model's floor moves from frame to frame)."""

    scale: float | None
    fits: int
    refused: int
    spread: float
    reason: str

    def as_dict(self) -> dict[str, float | int | str]:
        return {"metres_per_unit": self.scale, "fits": self.fits, "refused": self.refused,
                "spread": None if math.isnan(self.spread) else round(self.spread, 4),
                **({"reason": self.reason} if self.reason else {})}


def floor_scales(frames: Iterable[tuple[np.ndarray, Intrinsics, np.ndarray]],
                 config: FloorConfig) -> tuple[list[float], int, str]:
    """One floor fit per frame (depth in any units, its intrinsics, floor_from_camera as
    `up_in_camera` takes it): the metres per unit of every fit that found the floor, how many
    did not and the last one's reason."""
    scales, refused, last_refusal = [], 0, ""
    for k, (depth, intrinsics, floor_from_camera) in enumerate(frames):
        scale, why = floor_scale(depth, intrinsics, *up_in_camera(floor_from_camera), config,
                                 seed=k)
        if scale is None:
            refused, last_refusal = refused + 1, why
        else:
            scales.append(scale)
    return scales, refused, last_refusal


def calibrate(frames: Iterable[tuple[np.ndarray, Intrinsics, np.ndarray]],
              config: FloorConfig) -> FloorCalibration:
    """A fixed metric scale for a model whose depth is right only up to scale, from
    `floor_scales` of its frames. The scale is refused, with the reason, when fewer than
    calibration_min_fits frames show a floor or their scales disagree by more than
    calibration_max_spread: a scale marked metric must hold for the whole model."""
    scales, refused, last_refusal = floor_scales(frames, config)
    fits = len(scales) + refused
    if not fits:
        return FloorCalibration(None, 0, 0, math.nan, (
            "tf places the camera over the floor in no frame (odometry with the camera's "
            "mount in /tf_static, or the mount alone, is needed)"))
    if len(scales) < config.calibration_min_fits:
        return FloorCalibration(None, fits, refused, math.nan, (
            f"the floor was found in {len(scales)} of {fits} frames, "
            f"{config.calibration_min_fits} needed" + (f" (last: {last_refusal})"
                                                       if last_refusal else "")))
    q25, median, q75 = np.percentile(scales, [25, 50, 75])
    spread = float((q75 - q25) / median)
    if spread > config.calibration_max_spread:
        return FloorCalibration(None, fits, refused, spread, (
            f"the floor's scale varies by {spread:.0%} between frames (interquartile range "
            f"over the median), at most {config.calibration_max_spread:.0%} accepted: the "
            "model's floor is not where its other depths put it"))
    return FloorCalibration(float(median), fits, refused, spread, "")
