"""How the camera moves through a world: a wheeled robot driving segments (straight runs,
arcs both ways, turns on the spot, stops, reversing) that turns away before it meets an
obstacle, or a hand-held camera moving smoothly in all six degrees of freedom.

Both integrate at >= 50 Hz and sample at the camera rate; the poses are exact, the twists are
what wheel odometry would report.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.sim.world import GRID_M, uniform

MOTIONS = ("drive", "handheld")
INTEGRATION_HZ = 50.0


@dataclass(frozen=True)
class Sample:
    """The rig at one camera frame: world_from_base (4x4), and its velocity in base_link
    (linear m/s, angular rad/s)."""

    world_from_base: np.ndarray
    linear: tuple[float, float, float]
    angular: tuple[float, float, float]


class Clearance:
    """Distance (metres) from a floor point to the nearest obstacle or wall."""

    def __init__(self, occupancy: np.ndarray) -> None:
        self._distance = ndimage.distance_transform_edt(~occupancy) * GRID_M

    def __call__(self, x: float, y: float) -> float:
        row, col = int(round(y / GRID_M)) + 1, int(round(x / GRID_M)) + 1
        if not (0 <= row < self._distance.shape[0] and 0 <= col < self._distance.shape[1]):
            return 0.0
        return float(self._distance[row, col])

    def free_run(self, x: float, y: float, heading: float, radius: float,
                 limit_m: float = 4.0) -> float:
        """How far the rig can go along `heading` before it comes within `radius`."""
        step = GRID_M
        for k in range(1, int(limit_m / step) + 1):
            if self(x + k * step * math.cos(heading), y + k * step * math.sin(heading)) < radius:
                return (k - 1) * step
        return limit_m

    def start(self, rng: np.random.Generator, radius: float) -> tuple[float, float]:
        """A random floor point with the most room around it among a few candidates."""
        rows, cols = np.nonzero(self._distance > radius)
        if not len(rows):
            raise ValueError("the world has no floor where the camera's rig fits")
        picks = rng.integers(len(rows), size=8)
        best = max(picks, key=lambda k: self._distance[rows[k], cols[k]])
        return (cols[best] - 1) * GRID_M, (rows[best] - 1) * GRID_M


def _steps(rate_hz: float) -> tuple[int, float]:
    """Integration sub-steps per camera frame and their length."""
    per_frame = max(1, math.ceil(INTEGRATION_HZ / rate_hz))
    return per_frame, 1.0 / (rate_hz * per_frame)


def _ou(rng: np.random.Generator, value: float, mean: float, sigma: float, tau: float,
        dt: float) -> float:
    """One step of an Ornstein-Uhlenbeck process: smooth random wandering around `mean`
    with stationary deviation `sigma` and correlation time `tau`."""
    return value + (mean - value) * dt / tau + sigma * math.sqrt(2 * dt / tau) * rng.normal()


def drive(rng: np.random.Generator, clearance: Clearance, frames: int, rate_hz: float,
          config: dict[str, Any]) -> list[Sample]:
    """A wheeled robot's path: random segments, each replaced by a turn on the spot towards
    the most open direction when the way ahead closes."""
    c, radius = config["drive"], config["clearance_m"]
    top = uniform(rng, c["top_speed_mps"])
    names = list(c["segments"])
    weights = np.array([c["segments"][n] for n in names], float)
    x, y = clearance.start(rng, radius)
    yaw = rng.uniform(-math.pi, math.pi)
    accel, yaw_accel = c["accel_mps2"], math.radians(c["yaw_accel_dps2"])
    wobble = math.radians(c["wobble_deg"])
    per_frame, dt = _steps(rate_hz)

    def random_segment() -> list[float]:
        kind = names[rng.choice(len(names), p=weights / weights.sum())]
        side = 1.0 if rng.random() < 0.5 else -1.0
        speed = rng.uniform(0.1, top)
        target = {"straight": (speed, 0.0),
                  "arc": (speed, side * speed / uniform(rng, c["turn_radius_m"])),
                  "spin": (0.0, side * math.radians(uniform(rng, c["spin_rate_dps"]))),
                  "stop": (0.0, 0.0),
                  "reverse": (-uniform(rng, c["reverse_speed_mps"]), 0.0)}[kind]
        return [*target, uniform(rng, c["segment_s"]) * (0.4 if kind == "stop" else 1.0)]

    # segments to come, [target v, target w, seconds]; never empty. A recording starts
    # mid-drive: moving ahead at the first segment's speed.
    queue = [[rng.uniform(0.1, top), 0.0, uniform(rng, c["segment_s"])]]
    v, w, roll, pitch = queue[0][0], 0.0, 0.0, 0.0
    samples = []
    for _ in range(frames):
        samples.append(Sample(pose_matrix(np.array([x, y, 0.0]),
                                          quaternion_from_rpy(roll, pitch, yaw)),
                              (v, 0.0, 0.0), (0.0, 0.0, w)))
        for _ in range(per_frame):
            if queue[0][2] <= 0:
                queue = queue[1:] or [random_segment()]
            target_v, target_w = queue[0][0], queue[0][1]
            v += float(np.clip(target_v - v, -accel * dt, accel * dt))
            w += float(np.clip(target_w - w, -yaw_accel * dt, yaw_accel * dt))
            nx, ny = x + v * math.cos(yaw) * dt, y + v * math.sin(yaw) * dt
            ahead = math.copysign(0.15 + abs(v) * 0.5, v)
            if v != 0 and (clearance(nx, ny) < radius or clearance(
                    nx + ahead * math.cos(yaw), ny + ahead * math.sin(yaw)) < radius):
                # stop, turn on the spot towards the most open direction, drive off that way
                v = 0.0
                turns = [k * math.pi / 6 for k in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6)]
                best = max(turns, key=lambda a: (clearance.free_run(x, y, yaw + a, radius),
                                                 rng.random()))
                rate = math.radians(uniform(rng, c["spin_rate_dps"]))
                queue = [[0.0, math.copysign(rate, best), abs(best) / rate],
                         [rng.uniform(0.1, top), 0.0, uniform(rng, c["segment_s"])]]
                continue
            x, y, yaw = nx, ny, yaw + w * dt
            roll = _ou(rng, roll, 0.0, wobble, 0.5, dt)
            pitch = _ou(rng, pitch, 0.0, wobble, 0.5, dt)
            queue[0][2] -= dt
    return samples


def handheld(rng: np.random.Generator, clearance: Clearance, frames: int, rate_hz: float,
             config: dict[str, Any]) -> list[Sample]:
    """A camera carried by hand: smooth random translation in all directions (turned back
    from walls and furniture), yaw, pitch and roll wandering around a forward look."""
    c, radius = config["handheld"], config["clearance_m"]
    speed = uniform(rng, c["speed_mps"])
    height = uniform(rng, c["height_m"])
    x, y = clearance.start(rng, radius)
    z, yaw = height, rng.uniform(-math.pi, math.pi)
    vel = np.zeros(3)
    yaw_rate, pitch, roll = 0.0, math.radians(-10.0), 0.0
    sigma_yaw = math.radians(c["yaw_rate_dps"])
    per_frame, dt = _steps(rate_hz)
    samples = []
    previous = None
    for _ in range(frames):
        pose = pose_matrix(np.array([x, y, z]), quaternion_from_rpy(roll, pitch, yaw))
        linear = pose[:3, :3].T @ vel
        angular = (0.0, 0.0, yaw_rate) if previous is None else _body_rate(previous, pose,
                                                                           rate_hz)
        samples.append(Sample(pose, tuple(linear), tuple(angular)))
        previous = pose
        for _ in range(per_frame):
            for k, sigma in ((0, speed / math.sqrt(2)), (1, speed / math.sqrt(2)), (2, 0.15)):
                vel[k] = _ou(rng, vel[k], 0.0, sigma, 1.5, dt)
            nx, ny = x + vel[0] * dt, y + vel[1] * dt
            if clearance(nx, ny) < radius:          # turn back towards open floor
                away = yaw + math.pi
                best = max((away + a for a in np.linspace(-math.pi, math.pi, 12,
                                                          endpoint=False)),
                           key=lambda h: clearance.free_run(x, y, h, radius))
                norm = max(math.hypot(vel[0], vel[1]), 0.1)
                vel[0], vel[1] = norm * math.cos(best), norm * math.sin(best)
                continue
            x, y = nx, ny
            z = float(np.clip(z + vel[2] * dt, height - 0.3, height + 0.3))
            yaw_rate = _ou(rng, yaw_rate, 0.0, sigma_yaw, 1.0, dt)
            yaw += yaw_rate * dt
            pitch = _ou(rng, pitch, math.radians(-10.0), math.radians(c["pitch_deg"]), 1.5, dt)
            roll = _ou(rng, roll, 0.0, math.radians(c["roll_deg"]), 1.5, dt)
    return samples


def _body_rate(before: np.ndarray, after: np.ndarray, rate_hz: float) -> tuple[float, ...]:
    """Angular velocity (rad/s, in the later frame) that turns `before` into `after`."""
    relative = before[:3, :3].T @ after[:3, :3]
    angle = math.acos(float(np.clip((np.trace(relative) - 1) / 2, -1.0, 1.0)))
    if angle < 1e-9:
        return (0.0, 0.0, 0.0)
    axis = np.array([relative[2, 1] - relative[1, 2], relative[0, 2] - relative[2, 0],
                     relative[1, 0] - relative[0, 1]]) / (2 * math.sin(angle))
    return tuple(axis * angle * rate_hz)
