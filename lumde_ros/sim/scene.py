"""Indoor scenes for pybullet's CPU renderer: rooms and corridors with textured walls, floor
and ceiling, furniture along the walls, and a robot path through the free middle.

World frame: z up, metres. Textures are tiled at a physical size (each tile is one mesh cell
mapped to the whole image), never stretched over a wall, so every surface shows grain at the
scale a camera sees it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet
import pybullet_data

from lumde_ros.geometry import Intrinsics

KINDS = ("room", "corridor")
# Furniture stands in a band this deep along the walls; the robot keeps this much more clear.
FURNITURE_DEPTH_M = 0.55
CLEARANCE_M = 0.45


@dataclass(frozen=True)
class Texture:
    """An image file and the physical size (metres) one copy of it covers."""

    path: Path
    tile_m: float


@dataclass(frozen=True)
class Box:
    """An axis-aligned textured box: centre (x, y, z), half extents, texture, tint."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    texture: Texture
    tint: tuple[float, float, float]


@dataclass(frozen=True)
class Stadium:
    """A closed robot path: two straights of length 2*half_length joined by half circles of
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
        if s < 2 * a:                                   # bottom straight, +x
            return self.cx - a + s, self.cy - r, 0.0, 0.0
        s -= 2 * a
        if s < math.pi * r:                             # right half circle
            t = s / r
            return (self.cx + a + r * math.sin(t), self.cy - r * math.cos(t), t, 1.0 / r)
        s -= math.pi * r
        if s < 2 * a:                                   # top straight, -x
            return self.cx + a - s, self.cy + r, math.pi, 0.0
        t = (s - 2 * a) / r                             # left half circle
        return (self.cx - a - r * math.sin(t), self.cy + r * math.cos(t), math.pi + t, 1.0 / r)


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to rebuild a scene; drawn from a seed by `random_scene`."""

    kind: str
    width_m: float      # along world y
    length_m: float     # along world x
    height_m: float
    floor: Texture
    wall: Texture
    ceiling: Texture
    wall_tint: tuple[float, float, float]
    path: Stadium
    boxes: tuple[Box, ...] = ()
    # (photo, centre on a long wall, width, height)
    posters: tuple[tuple[Texture, tuple[float, float, float], float, float], ...] = ()
    # (pybullet_data URDF, position, yaw, scale)
    props: tuple[tuple[str, tuple[float, float, float], float, float], ...] = ()


def random_scene(rng: np.random.Generator, kind: str, textures: dict[str, Texture],
                 photos: list[Texture]) -> SceneSpec:
    """Draw a room or corridor, its furniture and its robot path."""
    if kind == "room":
        length, width = rng.uniform(4.5, 8.0), rng.uniform(3.8, 6.5)
        height = rng.uniform(2.5, 3.0)
    elif kind == "corridor":
        length, width = rng.uniform(14.0, 22.0), rng.uniform(2.2, 2.8)
        height = rng.uniform(2.4, 2.8)
    else:
        raise ValueError(f"scene kind '{kind}' is not one of {KINDS}")
    tint = tuple(rng.uniform(0.55, 1.0, 3))
    boxes, props = _furniture(rng, kind, length, width, textures)
    posters = []
    for _ in range(rng.integers(2, 6)):
        photo = photos[rng.integers(len(photos))]
        wall_y = width if rng.random() < 0.5 else 0.0
        posters.append((photo, (rng.uniform(0.8, length - 0.8), wall_y, rng.uniform(1.2, 1.8)),
                        rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.7)))
    inset = FURNITURE_DEPTH_M + CLEARANCE_M if kind == "room" else CLEARANCE_M + 0.35
    free_w, free_l = width - 2 * inset, length - 2 * inset
    radius = max(0.3, min(free_w / 2, 1.2))
    path = Stadium(cx=length / 2, cy=width / 2, half_length=max(0.0, free_l / 2 - radius),
                   radius=radius)
    return SceneSpec(kind, width, length, height, textures["floor"], textures["wall"],
                     textures["ceiling"], tint, path, tuple(boxes), tuple(posters), tuple(props))


def _furniture(rng: np.random.Generator, kind: str, length: float, width: float,
               textures: dict[str, Texture]) -> tuple[list[Box], list]:
    """Cabinets and shelves along both long walls, tables with objects on some of them."""
    boxes, props = [], []
    count = rng.integers(3, 7) if kind == "room" else rng.integers(3, 8)
    for _ in range(count):
        w, d = rng.uniform(0.5, 1.4), rng.uniform(0.3, FURNITURE_DEPTH_M)
        h = rng.uniform(0.5, 2.0)
        x = rng.uniform(w / 2 + 0.1, length - w / 2 - 0.1)
        y = d / 2 + 0.01 if rng.random() < 0.5 else width - d / 2 - 0.01
        tex = textures["furniture"] if rng.random() < 0.6 else textures["wall"]
        boxes.append(Box((x, y, h / 2), (w / 2, d / 2, h / 2), tex,
                         tuple(rng.uniform(0.4, 1.0, 3))))
        if h < 1.0 and rng.random() < 0.7:
            model = ["objects/mug.urdf", "duck_vhacd.urdf", "teddy_vhacd.urdf",
                     "sphere2.urdf", "cube_small.urdf"][rng.integers(5)]
            scale = {"sphere2.urdf": 0.2, "cube_small.urdf": 3.0, "teddy_vhacd.urdf": 2.5,
                     "duck_vhacd.urdf": 1.5}.get(model, 1.5)
            props.append((model, (x, y, h + 0.01), float(rng.uniform(0, 2 * math.pi)), scale))
    if kind == "room" and rng.random() < 0.8:
        # a table in a corner of the furniture band (pybullet_data's table, 1.5 x 1.0 m top)
        x = rng.uniform(1.0, length - 1.0)
        y = FURNITURE_DEPTH_M if rng.random() < 0.5 else width - FURNITURE_DEPTH_M
        props.append(("table/table.urdf", (x, y, 0.0), math.pi / 2, 0.45))
    return boxes, props


def _tiled_quad(origin: np.ndarray, u_axis: np.ndarray, v_axis: np.ndarray, size_u: float,
                size_v: float, tile_u: float, tile_v: float) -> tuple[list, list, list, list]:
    """Mesh of a rectangle cut into tile_u x tile_v cells, each mapped to the whole texture
    (image top at the cell's +v edge)."""
    normal = np.cross(u_axis, v_axis)
    vertices, uvs, indices = [], [], []
    for i in range(math.ceil(size_u / tile_u - 1e-9)):
        for j in range(math.ceil(size_v / tile_v - 1e-9)):
            u0, u1 = i * tile_u, min((i + 1) * tile_u, size_u)
            v0, v1 = j * tile_v, min((j + 1) * tile_v, size_v)
            base = len(vertices)
            for a, b in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
                vertices.append(list(origin + u_axis * a + v_axis * b))
                uvs.append([(a - u0) / tile_u, 1.0 - (b - v0) / tile_v])
            indices += [base, base + 1, base + 2, base, base + 2, base + 3]
    return vertices, indices, uvs, [list(normal)] * len(vertices)


class SceneRenderer:
    """A pybullet DIRECT client holding one scene, rendering camera views with TinyRenderer."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self.client = pybullet.connect(pybullet.DIRECT)
        self._textures: dict[Path, int] = {}
        self._build()

    def close(self) -> None:
        pybullet.disconnect(self.client)

    def _texture(self, texture: Texture) -> int:
        if texture.path not in self._textures:
            self._textures[texture.path] = pybullet.loadTexture(str(texture.path),
                                                                physicsClientId=self.client)
        return self._textures[texture.path]

    def _quad(self, origin, u_axis, v_axis, size_u: float, size_v: float, texture: Texture,
              tint, tile: tuple[float, float] | None = None) -> None:
        """A textured rectangle facing u x v, tiled at the texture's size (or `tile`)."""
        tile_u, tile_v = tile or (texture.tile_m, texture.tile_m)
        vertices, indices, uvs, normals = _tiled_quad(
            np.asarray(origin, float), np.asarray(u_axis, float), np.asarray(v_axis, float),
            size_u, size_v, tile_u, tile_v)
        shape = pybullet.createVisualShape(pybullet.GEOM_MESH, vertices=vertices,
                                           indices=indices, uvs=uvs, normals=normals,
                                           physicsClientId=self.client)
        body = pybullet.createMultiBody(baseVisualShapeIndex=shape, physicsClientId=self.client)
        pybullet.changeVisualShape(body, -1, textureUniqueId=self._texture(texture),
                                   rgbaColor=[*tint, 1.0], physicsClientId=self.client)

    def _box(self, box: Box) -> None:
        (cx, cy, cz), (hx, hy, hz) = box.center, box.half
        lo = np.array([cx - hx, cy - hy, cz - hz])
        ex, ey, ez = np.eye(3)
        size = 2 * np.array(box.half)
        faces = [(lo, ey, ez, size[1], size[2]),                          # -x
                 (lo + ex * size[0], ez, ey, size[2], size[1]),           # +x
                 (lo, ez, ex, size[2], size[0]),                          # -y
                 (lo + ey * size[1], ex, ez, size[0], size[2]),           # +y
                 (lo + ez * size[2], ex, ey, size[0], size[1])]           # top
        for origin, u, v, su, sv in faces:
            self._quad(origin, u, v, su, sv, box.texture, box.tint)

    def _build(self) -> None:
        s = self.spec
        ex, ey, ez = np.eye(3)
        L, W, H = s.length_m, s.width_m, s.height_m
        grey = (1.0, 1.0, 1.0)
        self._quad((0, 0, 0), ex, ey, L, W, s.floor, grey)                   # floor, up
        self._quad((0, 0, H), ey, ex, W, L, s.ceiling, (0.95, 0.95, 0.9))    # ceiling, down
        self._quad((0, 0, 0), ez, ex, H, L, s.wall, s.wall_tint)             # y = 0 wall
        self._quad((0, W, 0), ex, ez, L, H, s.wall, s.wall_tint)             # y = W wall
        self._quad((0, 0, 0), ey, ez, W, H, s.wall, s.wall_tint)             # x = 0 wall
        self._quad((L, 0, 0), ez, ey, H, W, s.wall, s.wall_tint)             # x = L wall
        for box in s.boxes:
            self._box(box)
        for photo, (x, y, z), w, h in s.posters:
            inward = 0.01 if y == 0.0 else -0.01
            u_axis = ex if y == 0.0 else -ex
            origin = (x - w / 2 * u_axis[0], y + inward, z - h / 2)
            self._quad(origin, u_axis, ez, w, h, photo, grey, tile=(w, h))  # whole photo once
        for model, position, yaw, scale in s.props:
            pybullet.loadURDF(str(Path(pybullet_data.getDataPath()) / model), position,
                              pybullet.getQuaternionFromEuler([0, 0, yaw]), useFixedBase=True,
                              globalScaling=scale, physicsClientId=self.client)

    def render(self, intrinsics: Intrinsics, world_from_optical: np.ndarray, near_m: float,
               far_m: float) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3) and depth (H, W) metres along optical Z (NaN: no surface) of
        a pinhole camera with square pixels and a centred principal point."""
        w, h = intrinsics.width, intrinsics.height
        r, eye = world_from_optical[:3, :3], world_from_optical[:3, 3]
        view = pybullet.computeViewMatrix(eye.tolist(), (eye + r[:, 2]).tolist(),
                                          (-r[:, 1]).tolist())
        fov_deg = math.degrees(2 * math.atan((h / 2) / intrinsics.fy))  # (cx, cy): see below
        projection = pybullet.computeProjectionMatrixFOV(fov_deg, w / h, near_m, far_m)
        _, _, rgba, buffer, _ = pybullet.getCameraImage(
            w, h, view, projection, renderer=pybullet.ER_TINY_RENDERER,
            physicsClientId=self.client)
        rgb = np.asarray(rgba, np.uint8).reshape(h, w, 4)[:, :, :3].copy()
        buffer = np.asarray(buffer, np.float64).reshape(h, w)
        depth = far_m * near_m / (far_m - (far_m - near_m) * buffer)
        depth[buffer >= 1.0] = np.nan
        return rgb, depth.astype(np.float32)


def camera_intrinsics(width: int, height: int, hfov_deg: float) -> Intrinsics:
    """The pinhole model TinyRenderer actually renders with: square pixels, and a principal
    point at (W/2, H/2 - 1) in ROS's pixel-centre convention, not ((W-1)/2, (H-1)/2): its
    rasteriser samples half a pixel off the centres (measured against the analytic floor
    plane at three sizes, test/sim/test_scene.py, residual 3e-6)."""
    centred = Intrinsics.from_hfov(width, height, hfov_deg)
    return Intrinsics(centred.fx, centred.fy, width / 2.0, height / 2.0 - 1.0, width, height)
