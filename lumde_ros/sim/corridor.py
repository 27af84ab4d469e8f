"""A built-in moving test sequence: a camera weaving down a textured corridor, ray-cast
analytically so every pixel's depth is exact. Used by `lumde demo` and the tests until the
pybullet simulator renders richer scenes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from lumde_ros.geometry import Intrinsics, pixel_rays


@dataclass(frozen=True)
class Corridor:
    """Corridor geometry (metres) in a level frame with x right, y down, z along the corridor;
    the camera's optical centre sits at y = 0."""

    half_width_m: float = 1.2
    camera_height_m: float = 0.8
    ceiling_height_m: float = 2.6
    length_m: float = 14.0
    texel_m: float = 0.01


@dataclass(frozen=True)
class Frame:
    """One rendered frame: RGB uint8 (H, W, 3), depth (H, W) metres along optical Z, time."""

    rgb: np.ndarray
    depth: np.ndarray
    time_s: float


def _texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Tileable grain at several scales (brightness 0..1), so every surface has texture."""
    tex = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):
        coarse = rng.random((cells, cells)).astype(np.float32)
        tiled = np.tile(coarse, (3, 3))
        up = cv2.resize(tiled, (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)
        tex += weight * up[size:2 * size, size:2 * size]
    return np.clip(tex, 0.0, 1.0)


class CorridorSequence:
    """Frames of a camera moving at `speed_mps` down a corridor, weaving gently, at `rate_hz`."""

    # Surface tints (RGB): floor, ceiling, left wall, right wall, end wall.
    TINTS = np.array([[0.55, 0.45, 0.35], [0.9, 0.9, 0.85], [0.4, 0.6, 0.8],
                      [0.8, 0.55, 0.4], [0.5, 0.8, 0.5]], np.float32)

    def __init__(self, intrinsics: Intrinsics, frames: int = 30, rate_hz: float = 10.0,
                 speed_mps: float = 0.5, seed: int = 0, corridor: Corridor = Corridor()) -> None:
        self.intrinsics, self.frames, self.rate_hz = intrinsics, frames, rate_hz
        self.speed_mps, self.corridor = speed_mps, corridor
        self._texture = _texture(np.random.default_rng(seed))
        self._rays = pixel_rays(intrinsics)

    def pose(self, time_s: float) -> tuple[float, float, float]:
        """Camera (x, z, yaw) at `time_s`: forward motion with a slow sideways weave."""
        z = 0.5 + self.speed_mps * time_s
        x = 0.3 * math.sin(0.4 * time_s)
        yaw = math.atan2(0.3 * 0.4 * math.cos(0.4 * time_s), self.speed_mps)
        return x, z, yaw

    def render(self, time_s: float) -> Frame:
        c = self.corridor
        x0, z0, yaw = self.pose(time_s)
        rx, ry = self._rays
        h, w = len(ry), len(rx)
        cos, sin = math.cos(yaw), math.sin(yaw)
        dx = cos * rx[None, :] + sin * np.ones((h, 1), np.float32)   # world x of each ray
        dz = -sin * rx[None, :] + cos * np.ones((h, 1), np.float32)  # world z of each ray
        dy = np.broadcast_to(ry[:, None], (h, w))
        with np.errstate(divide="ignore", invalid="ignore"):
            hits = np.stack([
                np.where(dy > 0, c.camera_height_m / dy, np.inf),                        # floor
                np.where(dy < 0, (c.camera_height_m - c.ceiling_height_m) / dy, np.inf),  # ceiling
                np.where(dx < 0, (-c.half_width_m - x0) / dx, np.inf),                   # left
                np.where(dx > 0, (c.half_width_m - x0) / dx, np.inf),                    # right
                np.where(dz > 0, (c.length_m - z0) / dz, np.inf)])                      # end
        surface = np.argmin(hits, axis=0)
        depth = np.take_along_axis(hits, surface[None], 0)[0].astype(np.float32)
        px, py, pz = x0 + depth * dx, depth * dy, z0 + depth * dz
        # 2-D surface coordinates (metres) for texture lookup, per surface kind.
        a = np.choose(surface, [px, px, pz, pz, px])
        b = np.choose(surface, [pz, pz, py, py, py])
        size = self._texture.shape[0]
        grain = self._texture[(b / c.texel_m).astype(np.int64) % size,
                              (a / c.texel_m).astype(np.int64) % size]
        shade = 1.0 / (1.0 + 0.04 * depth)
        rgb = self.TINTS[surface] * (0.35 + 0.65 * grain * shade)[:, :, None]
        return Frame(rgb=(np.clip(rgb, 0, 1) * 255).astype(np.uint8), depth=depth, time_s=time_s)

    def __iter__(self) -> Iterator[Frame]:
        for k in range(self.frames):
            yield self.render(k / self.rate_hz)
