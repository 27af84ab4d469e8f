"""What a simulated scene is made of (textured quads and polygons grouped into parts, a light)
and the pybullet TinyRenderer that draws it with exact depth.

World frame: z up, metres. Textures are tiled at their physical size (each tile is one mesh
cell mapped to the whole image), never stretched over a wall, so every surface shows grain at
the scale a camera sees it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet

from lumde_ros.geometry import Intrinsics
from lumde_ros.sim.textures import Texture

# pybullet copies a mesh's vertices into a fixed-size buffer; parts are split below this.
MAX_VERTICES_PER_BODY = 4000


@dataclass(frozen=True)
class Quad:
    """A rectangle from `origin` spanning edge vectors u and v (metres); it faces u x v."""

    origin: tuple[float, float, float]
    u: tuple[float, float, float]
    v: tuple[float, float, float]


@dataclass(frozen=True)
class Polygon:
    """A flat convex polygon (vertices counter-clockwise seen from the side it faces)."""

    vertices: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class Part:
    """Faces sharing one texture and tint: a wall, a table, a stack of boxes."""

    faces: tuple[Quad | Polygon, ...]
    texture: Texture
    tint: tuple[float, float, float]


@dataclass(frozen=True)
class Light:
    """pybullet's directional light: where it comes from, its colour and the shading mix."""

    direction: tuple[float, float, float]
    colour: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    shadows: bool


def box_faces(center: tuple[float, float, float], half: tuple[float, float, float],
              yaw: float = 0.0) -> tuple[Quad, ...]:
    """The six outward faces of a box rotated by `yaw` about z."""
    c, s = math.cos(yaw), math.sin(yaw)
    ex = np.array([c, s, 0.0]) * 2 * half[0]
    ey = np.array([-s, c, 0.0]) * 2 * half[1]
    ez = np.array([0.0, 0.0, 1.0]) * 2 * half[2]
    lo = np.asarray(center) - (ex + ey + ez) / 2
    faces = [(lo, ez, ey), (lo + ex, ey, ez), (lo, ex, ez), (lo + ey, ez, ex),
             (lo, ey, ex), (lo + ez, ex, ey)]            # -x +x -y +y bottom top
    return tuple(Quad(tuple(o), tuple(u), tuple(v)) for o, u, v in faces)


def prism_faces(center_xy: tuple[float, float], radius: float, z0: float, z1: float,
                sides: int = 16) -> tuple[Quad | Polygon, ...]:
    """A cylinder approximated by a `sides`-sided prism (outward faces, both caps)."""
    angles = np.linspace(0, 2 * math.pi, sides + 1)
    ring = [(center_xy[0] + radius * math.cos(a), center_xy[1] + radius * math.sin(a))
            for a in angles]
    faces: list[Quad | Polygon] = [
        Quad((x0, y0, z0), (x1 - x0, y1 - y0, 0.0), (0.0, 0.0, z1 - z0))
        for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:])]
    faces.append(Polygon(tuple((x, y, z1) for x, y in ring[:-1])))
    faces.append(Polygon(tuple((x, y, z0) for x, y in reversed(ring[:-1]))))
    return tuple(faces)


def _quad_mesh(quad: Quad, tile_m: float) -> tuple[list, list, list]:
    """Vertices, uvs and the normal of a quad cut into cells of `tile_m`, each cell mapped
    to the whole texture (image top at the cell's +v edge)."""
    origin, u, v = (np.asarray(a, float) for a in (quad.origin, quad.u, quad.v))
    size_u, size_v = np.linalg.norm(u), np.linalg.norm(v)
    du, dv = u / size_u, v / size_v
    vertices, uvs = [], []
    for i in range(math.ceil(size_u / tile_m - 1e-9)):
        for j in range(math.ceil(size_v / tile_m - 1e-9)):
            u0, u1 = i * tile_m, min((i + 1) * tile_m, size_u)
            v0, v1 = j * tile_m, min((j + 1) * tile_m, size_v)
            for a, b in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
                vertices.append(list(origin + du * a + dv * b))
                uvs.append([(a - u0) / tile_m, 1.0 - (b - v0) / tile_m])
    normal = np.cross(du, dv)
    return vertices, uvs, list(normal / np.linalg.norm(normal))


def part_meshes(part: Part):
    """(vertices, indices, uvs, normals) chunks of at most MAX_VERTICES_PER_BODY vertices."""
    chunk: list[list] = [[], [], [], []]
    for face in part.faces:
        if isinstance(face, Quad):
            vertices, uvs, normal = _quad_mesh(face, part.texture.tile_m)
            fans = [(k, k + 1, k + 2, k, k + 2, k + 3) for k in range(0, len(vertices), 4)]
        else:
            vertices = [list(p) for p in face.vertices]
            pts = np.asarray(vertices)
            normal = np.cross(pts[1] - pts[0], pts[2] - pts[0])
            normal = list(normal / np.linalg.norm(normal))
            lo, span = pts.min(axis=0), np.ptp(pts, axis=0).max()
            flat = [k for k in range(3) if np.ptp(pts[:, k]) > 1e-9][:2]   # one texture copy
            uvs = [[(p[flat[0]] - lo[flat[0]]) / span, 1 - (p[flat[1]] - lo[flat[1]]) / span]
                   for p in pts]
            fans = [tuple(x for k in range(1, len(vertices) - 1) for x in (0, k, k + 1))]
        if len(chunk[0]) + len(vertices) > MAX_VERTICES_PER_BODY and chunk[0]:
            yield tuple(chunk)
            chunk = [[], [], [], []]
        base = len(chunk[0])
        chunk[0] += vertices
        chunk[1] += [base + i for fan in fans for i in fan]
        chunk[2] += uvs
        chunk[3] += [normal] * len(vertices)
    if chunk[0]:
        yield tuple(chunk)


class SceneRenderer:
    """A pybullet DIRECT client holding one scene's parts (and URDF props: file, position,
    yaw, scale), rendering camera views with TinyRenderer under the scene's light (None:
    TinyRenderer's default)."""

    def __init__(self, parts: tuple[Part, ...], light: Light | None,
                 props: tuple[tuple, ...] = ()) -> None:
        self.light = light
        self.client = pybullet.connect(pybullet.DIRECT)
        self._textures: dict[str, int] = {}
        for part in parts:
            self._add(part)
        for urdf, position, yaw, scale in props:
            pybullet.loadURDF(urdf, position, pybullet.getQuaternionFromEuler([0, 0, yaw]),
                              useFixedBase=True, globalScaling=scale,
                              physicsClientId=self.client)

    def close(self) -> None:
        pybullet.disconnect(self.client)

    def _add(self, part: Part) -> None:
        key = str(part.texture.path)
        if key not in self._textures:
            self._textures[key] = pybullet.loadTexture(key, physicsClientId=self.client)
        for vertices, indices, uvs, normals in part_meshes(part):
            shape = pybullet.createVisualShape(pybullet.GEOM_MESH, vertices=vertices,
                                               indices=indices, uvs=uvs, normals=normals,
                                               physicsClientId=self.client)
            body = pybullet.createMultiBody(baseVisualShapeIndex=shape,
                                            physicsClientId=self.client)
            pybullet.changeVisualShape(body, -1, textureUniqueId=self._textures[key],
                                       rgbaColor=[*part.tint, 1.0], physicsClientId=self.client)

    def render(self, intrinsics: Intrinsics, world_from_optical: np.ndarray, near_m: float,
               far_m: float) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3) and depth (H, W) metres along optical Z (NaN: no surface) of
        a pinhole camera with square pixels and the principal point camera_intrinsics gives."""
        w, h = intrinsics.width, intrinsics.height
        r, eye = world_from_optical[:3, :3], world_from_optical[:3, 3]
        view = pybullet.computeViewMatrix(eye.tolist(), (eye + r[:, 2]).tolist(),
                                          (-r[:, 1]).tolist())
        fov_deg = math.degrees(2 * math.atan((h / 2) / intrinsics.fy))
        projection = pybullet.computeProjectionMatrixFOV(fov_deg, w / h, near_m, far_m)
        light = self.light
        lighting = {} if light is None else dict(
            lightDirection=list(light.direction), lightColor=list(light.colour),
            lightDistance=100.0, shadow=int(light.shadows), lightAmbientCoeff=light.ambient,
            lightDiffuseCoeff=light.diffuse, lightSpecularCoeff=light.specular)
        _, _, rgba, buffer, _ = pybullet.getCameraImage(
            w, h, view, projection, renderer=pybullet.ER_TINY_RENDERER,
            physicsClientId=self.client, **lighting)
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
