"""Indoor worlds drawn from a seed and config/sim.yaml: the layout (room, corridor, aisles
between shelving, open hall, office with partitions), free-standing furniture and clutter
anywhere on the floor, each surface's texture family, tint and contrast, and the light.

A seed's split (training below split.eval_seed_start, evaluation from it) decides which
layouts, object types and texture families it may draw; the two splits share none.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np
from scipy import ndimage

from lumde_ros.config import config_path, load_yaml
from lumde_ros.sim.scene import Light, Part, Polygon, Quad, box_faces, prism_faces
from lumde_ros.sim.textures import TILE_M, Texture, texture_file

SIM_CONFIG = "sim.yaml"
# Floor map resolution (metres per cell) for placing objects and steering the robot.
GRID_M = 0.05
# Walls, floor and ceiling reach this far past each other (metres): TinyRenderer leaves
# pixel-wide cracks where surfaces merely meet.
SEAM_M = 0.02


def load_sim_config() -> dict[str, Any]:
    """config/sim.yaml as a mapping."""
    return load_yaml(config_path(SIM_CONFIG))


def split_name(seed: int, config: dict[str, Any]) -> str:
    """'training' or 'evaluation': which families the seed's scene draws from."""
    return "evaluation" if seed >= config["split"]["eval_seed_start"] else "training"


def uniform(rng: np.random.Generator, bounds: list[float]) -> float:
    """A draw from a config range [low, high]."""
    return float(rng.uniform(bounds[0], bounds[1]))


@dataclass(frozen=True)
class World:
    """A scene ready to render and drive through. footprints: floor polygons (N, 2) the
    robot must keep clear of; objects and families record what the scene drew."""

    layout: str
    length_m: float
    width_m: float
    height_m: float
    ceiling: bool
    parts: tuple[Part, ...]
    footprints: tuple[np.ndarray, ...]
    light: Light | None
    objects: tuple[str, ...]
    families: tuple[str, ...]

    def occupancy(self) -> np.ndarray:
        """The world's floor map (see floor_map)."""
        return floor_map(self.length_m, self.width_m, self.footprints)


def floor_map(length_m: float, width_m: float, footprints) -> np.ndarray:
    """Boolean floor map (rows: y, columns: x, GRID_M cells): True where an obstacle or the
    outside of the walls is."""
    rows, cols = math.ceil(width_m / GRID_M), math.ceil(length_m / GRID_M)
    grid = np.zeros((rows + 2, cols + 2), np.uint8)   # one cell of wall around
    grid[[0, -1], :] = grid[:, [0, -1]] = 1
    for polygon in footprints:
        cells = np.round(polygon / GRID_M).astype(np.int32) + 1
        cv2.fillPoly(grid, [cells], 1)
    return grid.astype(bool)


class _Drawer:
    """Draws surfaces and objects of one split, recording what it used."""

    def __init__(self, rng: np.random.Generator, split: dict[str, list[str]],
                 config: dict[str, Any]) -> None:
        self.rng, self.split, self.config = rng, split, config
        self.families: set[str] = set()
        self.clutter_kinds = [k for k in split["objects"] if k in CLUTTER]

    def surface(self) -> tuple[Texture, tuple[float, float, float]]:
        """A texture of one of the split's families at a drawn scale, and a tint."""
        rng, look = self.rng, self.config["appearance"]
        family = str(rng.choice(self.split["textures"]))
        self.families.add(family)
        contrast = round(uniform(rng, look["contrast"]) * 20) / 20
        path = texture_file(family, int(rng.integers(look["texture_variants"])), contrast)
        texture = Texture(path, family, uniform(rng, list(TILE_M[family])))
        tint = colorsys.hsv_to_rgb(rng.random(), uniform(rng, look["tint_saturation"]),
                                   uniform(rng, look["tint_value"]))
        return texture, tint

    def part(self, faces: tuple[Quad | Polygon, ...]) -> Part:
        texture, tint = self.surface()
        return Part(faces, texture, tint)


def _rectangle(cx: float, cy: float, hx: float, hy: float, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return corners @ np.array([[c, s], [-s, c]]) + [cx, cy]


# An object builder: (drawer, x, y, yaw) -> (parts, floor footprint, height of its top).
Builder = Callable[[_Drawer, float, float, float], tuple[list[Part], np.ndarray, float]]


def _box(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    hx, hy, h = r.uniform(0.1, 0.6), r.uniform(0.1, 0.5), r.uniform(0.2, 1.5)
    return ([d.part(box_faces((x, y, h / 2), (hx, hy, h / 2), yaw))],
            _rectangle(x, y, hx, hy, yaw), h)


def _stack(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    faces, z = [], 0.0
    hx, hy = r.uniform(0.2, 0.5), r.uniform(0.2, 0.45)
    base = _rectangle(x, y, hx, hy, yaw)
    for _ in range(int(r.integers(2, 5))):
        h = r.uniform(0.15, 0.5)
        faces += box_faces((x, y, z + h / 2), (hx, hy, h / 2), yaw + r.uniform(-0.3, 0.3))
        z += h
        hx, hy = hx * r.uniform(0.6, 0.95), hy * r.uniform(0.6, 0.95)
    return [d.part(tuple(faces))], base, z


def _legs(x: float, y: float, yaw: float, hx: float, hy: float, leg: float,
          height: float) -> list[Quad]:
    """Four square legs of side `leg` under the corners of a (hx, hy) top."""
    faces: list[Quad] = []
    for lx, ly in _rectangle(x, y, hx - leg / 2, hy - leg / 2, yaw):
        faces += box_faces((lx, ly, height / 2), (leg / 2, leg / 2, height / 2), yaw)
    return faces


def _table(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    hx, hy = r.uniform(0.3, 0.9), r.uniform(0.25, 0.5)
    height, thick, leg = r.uniform(0.45, 0.95), r.uniform(0.03, 0.06), r.uniform(0.025, 0.06)
    top = box_faces((x, y, height - thick / 2), (hx, hy, thick / 2), yaw)
    legs = _legs(x, y, yaw, hx, hy, leg, height - thick)
    return [d.part(top), d.part(tuple(legs))], _rectangle(x, y, hx, hy, yaw), height


def _shelf(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    hx, hy, height = r.uniform(0.4, 1.0), r.uniform(0.15, 0.25), r.uniform(0.8, 2.0)
    board = 0.025
    c, s = math.cos(yaw), math.sin(yaw)
    faces = []
    for side in (-1, 1):   # side panels
        sx, sy = x + side * (hx - board / 2) * c, y + side * (hx - board / 2) * s
        faces += box_faces((sx, sy, height / 2), (board / 2, hy, height / 2), yaw)
    bx, by = x - (hy - board / 2) * -s, y - (hy - board / 2) * c     # back panel
    faces += box_faces((bx, by, height / 2), (hx, board / 2, height / 2), yaw)
    levels = int(r.integers(3, 6))
    for k in range(levels):
        z = board / 2 + k * (height - board) / (levels - 1)
        faces += box_faces((x, y, z), (hx - board, hy, board / 2), yaw)
    return [d.part(tuple(faces))], _rectangle(x, y, hx, hy, yaw), height


def _chair(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    half, height = r.uniform(0.19, 0.25), r.uniform(0.42, 0.5)
    thick, leg = r.uniform(0.025, 0.05), r.uniform(0.02, 0.04)
    seat = box_faces((x, y, height - thick / 2), (half, half, thick / 2), yaw)
    legs = _legs(x, y, yaw, half, half, leg, height - thick)
    back_h = r.uniform(0.3, 0.5)
    bx, by = x - (half - thick / 2) * math.cos(yaw), y - (half - thick / 2) * math.sin(yaw)
    back = box_faces((bx, by, height + back_h / 2), (thick / 2, half, back_h / 2), yaw)
    return ([d.part(seat + back), d.part(tuple(legs))], _rectangle(x, y, half, half, yaw),
            height)


def _cylinder(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    radius, height = r.uniform(0.1, 0.45), r.uniform(0.3, 1.6)
    outline = _rectangle(x, y, radius, radius, yaw)
    return [d.part(prism_faces((x, y), radius, 0.0, height))], outline, height


def _bench(d: _Drawer, x: float, y: float, yaw: float):
    r = d.rng
    hx, hy, height = r.uniform(0.5, 1.0), r.uniform(0.15, 0.23), r.uniform(0.4, 0.5)
    thick = r.uniform(0.04, 0.08)
    seat = box_faces((x, y, height - thick / 2), (hx, hy, thick / 2), yaw)
    slabs = []
    for side in (-1, 1):
        sx = x + side * (hx - 0.1) * math.cos(yaw)
        sy = y + side * (hx - 0.1) * math.sin(yaw)
        slabs += box_faces((sx, sy, (height - thick) / 2), (0.03, hy * 0.9,
                                                             (height - thick) / 2), yaw)
    return [d.part(seat), d.part(tuple(slabs))], _rectangle(x, y, hx, hy, yaw), height


OBJECTS: dict[str, Builder] = {"box": _box, "stack": _stack, "table": _table,
                               "shelf": _shelf, "chair": _chair, "cylinder": _cylinder,
                               "bench": _bench}
# Objects that also serve as small clutter on the floor and on furniture.
CLUTTER = ("box", "cylinder")


def _shell(d: _Drawer, length: float, width: float, height: float,
           ceiling: bool) -> list[Part]:
    """Floor, walls (facing inward, image up) and ceiling, each overlapping its neighbours by
    SEAM_M so that no crack between them lets the camera see out."""
    L, W, H, e = length, width, height, SEAM_M
    parts = [d.part((Quad((-e, -e, 0), (L + 2 * e, 0, 0), (0, W + 2 * e, 0)),))]
    walls = (Quad((L + e, 0, -e), (-L - 2 * e, 0, 0), (0, 0, H + 2 * e)),
             Quad((-e, W, -e), (L + 2 * e, 0, 0), (0, 0, H + 2 * e)),
             Quad((0, -e, -e), (0, W + 2 * e, 0), (0, 0, H + 2 * e)),
             Quad((L, W + e, -e), (0, -W - 2 * e, 0), (0, 0, H + 2 * e)))
    if d.rng.random() < 0.5:
        parts.append(d.part(walls))
    else:   # every wall its own look
        parts += [d.part((wall,)) for wall in walls]
    if ceiling:
        parts.append(d.part((Quad((-e, -e, H), (0, W + 2 * e, 0), (L + 2 * e, 0, 0)),)))
    return parts


def _fixtures(d: _Drawer, layout: str, length: float, width: float,
              height: float) -> tuple[list[Part], list[np.ndarray]]:
    """What a layout has besides its shell: shelving rows, pillars, partitions."""
    r, parts, footprints = d.rng, [], []
    if layout == "aisles":
        depth, aisle = r.uniform(0.4, 0.6), r.uniform(1.2, 2.2)
        shelf_h, end_gap = r.uniform(1.5, min(2.6, height - 0.3)), r.uniform(1.2, 2.0)
        y = aisle
        while y + depth < width - aisle:
            x0, x1 = end_gap, length - end_gap
            faces = list(box_faces(((x0 + x1) / 2, y + depth / 2, shelf_h / 2),
                                   ((x1 - x0) / 2, 0.02, shelf_h / 2)))       # back
            for k in range(int(r.integers(3, 6))):
                z = 0.1 + k * (shelf_h - 0.1) / 4
                faces += box_faces(((x0 + x1) / 2, y + depth / 2, min(z, shelf_h - 0.02)),
                                   ((x1 - x0) / 2, depth / 2, 0.02))
            parts.append(d.part(tuple(faces)))
            footprints.append(np.array([[x0, y], [x1, y], [x1, y + depth], [x0, y + depth]]))
            for _ in range(int((x1 - x0) * 1.5)):      # goods on the shelves
                gx, gh = r.uniform(x0 + 0.2, x1 - 0.2), r.uniform(0.1, 0.3)
                level = int(r.integers(0, 3)) * (shelf_h - 0.1) / 4 + 0.12
                parts.append(d.part(box_faces((gx, y + depth / 2, level + gh / 2),
                                              (r.uniform(0.1, 0.3), depth * 0.4, gh / 2))))
            y += depth + aisle
    elif layout == "hall":
        spacing = r.uniform(3.0, 5.0)
        radius = r.uniform(0.15, 0.35)
        for px in np.arange(spacing, length - 1.0, spacing):
            for py in np.arange(spacing, width - 1.0, spacing):
                parts.append(d.part(prism_faces((px, py), radius, 0.0, height, 12)))
                footprints.append(_rectangle(px, py, radius, radius, 0.0))
    elif layout == "office":
        for _ in range(int(r.integers(1, 4))):
            along_x = r.random() < 0.5
            span = r.uniform(1.5, 4.0)
            h = r.uniform(1.1, 1.8)
            x, y = r.uniform(1.0, length - 1.0), r.uniform(1.0, width - 1.0)
            hx, hy = (span / 2, 0.03) if along_x else (0.03, span / 2)
            x = min(max(x, hx + 0.01), length - hx - 0.01)
            y = min(max(y, hy + 0.01), width - hy - 0.01)
            parts.append(d.part(box_faces((x, y, h / 2), (hx, hy, h / 2))))
            footprints.append(_rectangle(x, y, hx, hy, 0.0))
    return parts, footprints


def _free_area(world_grid: np.ndarray, clearance_m: float) -> float:
    """Area (m^2) of the largest connected floor region where the robot fits."""
    clear = ndimage.distance_transform_edt(~world_grid) * GRID_M > clearance_m
    labels, count = ndimage.label(clear)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max()) * GRID_M ** 2


def random_world(rng: np.random.Generator, split: str, config: dict[str, Any]) -> World:
    """Draw a whole scene of `split` ('training' or 'evaluation')."""
    families = config["split"][split]
    d = _Drawer(rng, families, config)
    layout = str(rng.choice(families["layouts"]))
    size = config["layouts"][layout]
    length, width = uniform(rng, size["length_m"]), uniform(rng, size["width_m"])
    height = uniform(rng, size["height_m"])
    ceiling = layout not in ("hall", "aisles") or rng.random() >= config["open_ceiling"]
    parts = _shell(d, length, width, height, ceiling)
    fixtures, footprints = _fixtures(d, layout, length, width, height)
    parts += fixtures
    clearance = config["motion"]["clearance_m"]
    light = _light(rng, ceiling, config["light"])
    floor_free = _free_area(floor_map(length, width, footprints), clearance)
    area = length * width
    placed: list[str] = []
    for _ in range(int(round(uniform(rng, config["objects_per_10m2"]) * area / 10))):
        kind = str(rng.choice(families["objects"]))
        x, y = rng.uniform(0.3, length - 0.3), rng.uniform(0.3, width - 0.3)
        yaw = rng.uniform(0, 2 * math.pi) if rng.random() < 0.6 else \
            float(rng.integers(4)) * math.pi / 2
        new_parts, footprint, top = OBJECTS[kind](d, x, y, yaw)
        inside = (footprint.min() > 0.02 and footprint[:, 0].max() < length - 0.02
                  and footprint[:, 1].max() < width - 0.02)
        # keep at least 40 % of the floor reachable so the robot has somewhere to go
        if (inside and not _overlaps(footprints, footprint)
                and _free_area(floor_map(length, width, [*footprints, footprint]),
                               clearance) > 0.4 * floor_free):
            parts += new_parts
            footprints.append(footprint)
            placed.append(kind)
            if top < 1.2 and rng.random() < 0.5:
                parts += _clutter(d, footprint, top)
    for _ in range(int(round(uniform(rng, config["clutter_per_10m2"]) * area / 10))):
        if not d.clutter_kinds:
            break
        x, y = rng.uniform(0.2, length - 0.2), rng.uniform(0.2, width - 0.2)
        spot = _rectangle(x, y, 0.15, 0.15, 0.0)
        if not _overlaps(footprints, spot):
            parts += _clutter(d, spot, 0.0)
            footprints.append(spot)
    return World(layout, length, width, height, ceiling, tuple(parts), tuple(footprints),
                 light, tuple(placed), tuple(sorted(d.families)))


def _overlaps(footprints: list[np.ndarray], candidate: np.ndarray, margin: float = 0.05) -> bool:
    """Whether `candidate`'s bounding box, grown by `margin`, meets any footprint's."""
    lo, hi = candidate.min(axis=0) - margin, candidate.max(axis=0) + margin
    return any(np.all(f.max(axis=0) > lo) and np.all(f.min(axis=0) < hi) for f in footprints)


def _clutter(d: _Drawer, footprint: np.ndarray, z: float) -> list[Part]:
    """One to three small objects of the split's clutter kinds standing on `footprint`."""
    r, kinds = d.rng, d.clutter_kinds
    parts: list[Part] = []
    lo, hi = footprint.min(axis=0), footprint.max(axis=0)
    for _ in range(int(r.integers(1, 4)) if kinds else 0):
        size = r.uniform(0.04, 0.15)
        if hi[0] - lo[0] < 2 * size or hi[1] - lo[1] < 2 * size:
            continue
        x, y = r.uniform(lo[0] + size, hi[0] - size), r.uniform(lo[1] + size, hi[1] - size)
        h = r.uniform(0.05, 0.3)
        if str(r.choice(kinds)) == "box":
            faces = box_faces((x, y, z + h / 2), (size, size * r.uniform(0.5, 1), h / 2),
                              r.uniform(0, math.pi))
        else:
            faces = prism_faces((x, y), size, z, z + h, 10)
        parts.append(d.part(faces))
    return parts


def _light(rng: np.random.Generator, ceiling: bool, config: dict[str, Any]) -> Light:
    elevation = math.radians(uniform(rng, config["elevation_deg"]))
    azimuth = rng.uniform(0, 2 * math.pi)
    warm = uniform(rng, config["colour_temperature"])
    return Light(direction=(math.cos(elevation) * math.cos(azimuth),
                            math.cos(elevation) * math.sin(azimuth), math.sin(elevation)),
                 colour=(1.0, (1.0 + warm) / 2, warm), ambient=uniform(rng, config["ambient"]),
                 diffuse=uniform(rng, config["diffuse"]),
                 specular=uniform(rng, config["specular"]),
                 shadows=not ceiling and rng.random() < config["shadows"])
