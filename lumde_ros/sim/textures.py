"""Textures for the simulator from the real photographs and textures scikit-image ships,
written once as PNG files (pybullet loads textures from files)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from skimage import data, io

from lumde_ros.config import cache_dir
from lumde_ros.sim.scene import Texture

# name -> (scikit-image loader, physical size in metres one copy of the image covers).
SURFACES = {"brick": (data.brick, 0.9), "gravel": (data.gravel, 0.7),
            "grass": (data.grass, 0.8), "camera": (data.camera, 1.2)}
PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea,
          "rocket": data.rocket, "motorcycle": data.stereo_motorcycle}


# Texels per texture side. TinyRenderer samples textures nearest-neighbour with no mipmaps, so
# texels much finer than a pixel alias into noise that changes from frame to frame and breaks
# view synthesis; area-averaging to this size keeps the grain visible and stable.
TEXTURE_SIZE = 96


def _rgb(image: np.ndarray) -> np.ndarray:
    if isinstance(image, tuple):          # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return cv2.resize(image[:, :, :3].astype(np.uint8), (TEXTURE_SIZE, TEXTURE_SIZE),
                      interpolation=cv2.INTER_AREA)


def prepare_textures(folder: Path | None = None) -> tuple[dict[str, Texture], list[Texture]]:
    """Surface textures by role (floor, wall, ceiling, furniture) and wall photographs."""
    folder = folder or cache_dir() / f"textures-{TEXTURE_SIZE}"
    folder.mkdir(parents=True, exist_ok=True)

    def texture(name: str, loader, tile_m: float) -> Texture:
        path = folder / f"{name}.png"
        if not path.exists():  # written atomically: parallel runs may share the cache
            tmp = folder / f".{name}.{os.getpid()}.png"
            io.imsave(tmp, _rgb(loader()), check_contrast=False)
            os.replace(tmp, path)
        return Texture(path, tile_m)

    surfaces = {name: texture(name, loader, tile) for name, (loader, tile) in SURFACES.items()}
    roles = {"floor": surfaces["gravel"], "wall": surfaces["brick"],
             "ceiling": surfaces["grass"], "furniture": surfaces["camera"]}
    photos = [texture(name, loader, 1.0) for name, loader in PHOTOS.items()]
    return roles, photos
