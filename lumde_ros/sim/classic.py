"""The first simulator's scenes (`lumde simulate --world classic`): rooms and corridors with
brick walls, a gravel floor and cabinets along the walls, a 320x240 camera on a robot
circling a stadium-shaped path (left turns only).

Kept only because the weights in weights/ were trained on them: their tests check the
weights on what they learned. The varied worlds (world.py) replace these once the shipped
models are retrained on them (issue #20); then this module goes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet_data

from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.sim.motion import Sample
from lumde_ros.sim.scene import Part, Quad, box_faces
from lumde_ros.sim.textures import PHOTOS, SKIMAGE_TEXTURES, Texture, texture_file
from lumde_ros.sim.world import World

LAYOUTS = ("room", "corridor")
FURNITURE_DEPTH_M, CLEARANCE_M = 0.55, 0.45
WIDTH, HEIGHT, HFOV_DEG = 320, 240, 70.0
# pybullet_data models standing on low furniture, with the scale that makes them life-size.
PROPS = {"objects/mug.urdf": 1.5, "duck_vhacd.urdf": 1.5, "teddy_vhacd.urdf": 2.5,
         "sphere2.urdf": 0.2, "cube_small.urdf": 3.0}


@dataclass(frozen=True)
class Stadium:
    """A closed path: two straights of length 2*half_length joined by half circles of
    `radius`, centred at (cx, cy), straights along x."""

    cx: float
    cy: float
    half_length: float
    radius: float

    @property
    def perimeter(self) -> float:
        return 4 * self.half_length + 2 * math.pi * self.radius

    def pose(self, s: float) -> tuple[float, float, float, float]:
        """(x, y, yaw, curvature) at arc length s (counter-clockwise, wrapping)."""
        a, r = self.half_length, self.radius
        s %= self.perimeter
        if s < 2 * a:
            return self.cx - a + s, self.cy - r, 0.0, 0.0
        s -= 2 * a
        if s < math.pi * r:
            t = s / r
            return self.cx + a + r * math.sin(t), self.cy - r * math.cos(t), t, 1.0 / r
        s -= math.pi * r
        if s < 2 * a:
            return self.cx + a - s, self.cy + r, math.pi, 0.0
        t = (s - 2 * a) / r
        return self.cx - a - r * math.sin(t), self.cy + r * math.cos(t), math.pi + t, 1.0 / r


def _texture(family: str, name: str, tile_m: float) -> Texture:
    names = SKIMAGE_TEXTURES if family == "skimage" else PHOTOS
    return Texture(texture_file(family, names.index(name), 1.0), family, tile_m)


def classic_world(rng: np.random.Generator, layout: str) -> tuple[World, list[tuple], Stadium]:
    """The scene, its pybullet_data props (model, position, yaw, scale) and its path."""
    if layout == "room":
        length, width, height = rng.uniform(4.5, 8.0), rng.uniform(3.8, 6.5), \
            rng.uniform(2.5, 3.0)
    else:
        length, width, height = rng.uniform(14.0, 22.0), rng.uniform(2.2, 2.8), \
            rng.uniform(2.4, 2.8)
    floor, wall = _texture("skimage", "gravel", 0.7), _texture("skimage", "brick", 0.9)
    ceiling, furniture = _texture("skimage", "grass", 0.8), _texture("photo", "camera", 1.2)
    tint = tuple(rng.uniform(0.55, 1.0, 3))
    L, W, H = length, width, height
    parts = [Part((Quad((0, 0, 0), (L, 0, 0), (0, W, 0)),), floor, (1.0, 1.0, 1.0)),
             Part((Quad((0, 0, H), (0, W, 0), (L, 0, 0)),), ceiling, (0.95, 0.95, 0.9)),
             Part((Quad((L, 0, 0), (-L, 0, 0), (0, 0, H)), Quad((0, W, 0), (L, 0, 0), (0, 0, H)),
                   Quad((0, 0, 0), (0, W, 0), (0, 0, H)), Quad((L, W, 0), (0, -W, 0), (0, 0, H))),
                  wall, tint)]
    props = []
    for _ in range(rng.integers(3, 7) if layout == "room" else rng.integers(3, 8)):
        w, d, h = rng.uniform(0.5, 1.4), rng.uniform(0.3, FURNITURE_DEPTH_M), rng.uniform(0.5, 2.0)
        x = rng.uniform(w / 2 + 0.1, length - w / 2 - 0.1)
        y = d / 2 + 0.01 if rng.random() < 0.5 else width - d / 2 - 0.01
        texture = furniture if rng.random() < 0.6 else wall
        parts.append(Part(box_faces((x, y, h / 2), (w / 2, d / 2, h / 2)), texture,
                          tuple(rng.uniform(0.4, 1.0, 3))))
        if h < 1.0 and rng.random() < 0.7:
            model = list(PROPS)[rng.integers(len(PROPS))]
            props.append((model, (x, y, h + 0.01), float(rng.uniform(0, 2 * math.pi)),
                          PROPS[model]))
    for _ in range(rng.integers(2, 6)):
        photo = _texture("photo", ["astronaut", "coffee", "chelsea", "rocket"][
            rng.integers(4)], 1.0)
        on_far_wall = rng.random() < 0.5
        x, z = rng.uniform(0.8, length - 0.8), rng.uniform(1.2, 1.8)
        w, h = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.7)
        photo = Texture(photo.path, photo.family, max(w, h))
        quad = (Quad((x - w / 2, width - 0.01, z - h / 2), (w, 0, 0), (0, 0, h)) if on_far_wall
                else Quad((x + w / 2, 0.01, z - h / 2), (-w, 0, 0), (0, 0, h)))
        parts.append(Part((quad,), photo, (1.0, 1.0, 1.0)))
    if layout == "room" and rng.random() < 0.8:
        x = rng.uniform(1.0, length - 1.0)
        y = FURNITURE_DEPTH_M if rng.random() < 0.5 else width - FURNITURE_DEPTH_M
        props.append(("table/table.urdf", (x, y, 0.0), math.pi / 2, 0.45))
    inset = FURNITURE_DEPTH_M + CLEARANCE_M if layout == "room" else CLEARANCE_M + 0.35
    free_w, free_l = width - 2 * inset, length - 2 * inset
    radius = max(0.3, min(free_w / 2, 1.2))
    path = Stadium(length / 2, width / 2, max(0.0, free_l / 2 - radius), radius)
    world = World(layout, length, width, height, True, tuple(parts), (), None, ("box",),
                  ("skimage", "photo"))
    return world, [(str(Path(pybullet_data.getDataPath()) / m), *rest) for m, *rest in props], path


def classic_motion(rng: np.random.Generator, path: Stadium, frames: int,
                   rate_hz: float) -> list[Sample]:
    """Round the stadium at a constant drawn speed from a drawn start."""
    speed, start = rng.uniform(0.3, 1.0), rng.uniform(0.0, path.perimeter)
    samples = []
    for k in range(frames):
        x, y, yaw, curvature = path.pose(start + speed * k / rate_hz)
        samples.append(Sample(pose_matrix(np.array([x, y, 0.0]),
                                          quaternion_from_rpy(0.0, 0.0, yaw)),
                              (speed, 0.0, 0.0), (0.0, 0.0, speed * curvature)))
    return samples


def classic_mount(rng: np.random.Generator) -> np.ndarray:
    """base_link -> camera_link: 0.45-1.1 m high, pitched 0-12 degrees down."""
    height, pitch = rng.uniform(0.45, 1.1), rng.uniform(0.0, math.radians(12))
    return pose_matrix(np.array([0.1, 0.0, height]), quaternion_from_rpy(0.0, pitch, 0.0))
