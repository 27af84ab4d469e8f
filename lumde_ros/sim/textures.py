"""Surface textures for the simulator, in families a network could otherwise memorise one look
from: procedural tiles, wood, checker, stripes, granite, paint, fabric, plus scikit-image's
photographs and its texture images. Each family has a few variants drawn from a fixed seed and
written once as PNG files (pybullet loads textures from files).

The Middlebury motorcycle (skimage's stereo_motorcycle) is the real-image evaluation: it is
never a texture.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from skimage import data, io

from lumde_ros.config import cache_dir

# Texels per texture side. TinyRenderer samples textures nearest-neighbour with no mipmaps, so
# texels much finer than a pixel alias into noise that changes from frame to frame and breaks
# view synthesis; this size keeps the grain visible and stable at a metre or more.
TEXTURE_SIZE = 96
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "page", "clock", "coins")
SKIMAGE_TEXTURES = ("brick", "grass", "gravel", "moon")
# Physical size (metres) one copy of a family's texture covers: (smallest, largest).
TILE_M = {"tiles": (0.3, 1.2), "wood": (0.6, 1.5), "checker": (0.2, 1.0),
          "stripes": (0.3, 1.5), "granite": (0.4, 1.2), "paint": (0.5, 1.0),
          "fabric": (0.2, 0.6), "photo": (0.6, 1.5), "skimage": (0.5, 1.2)}


@dataclass(frozen=True)
class Texture:
    """An image file, its family, and the physical size (metres) one copy of it covers."""

    path: Path
    family: str
    tile_m: float


def _noise(rng: np.random.Generator, size: int, cutoff: float, channels: int = 1) -> np.ndarray:
    """Tileable noise (zero mean, unit deviation) with frequencies up to `cutoff` cycles per
    texture side: white noise low-passed in the Fourier domain, so it wraps seamlessly."""
    f = np.fft.fftfreq(size) * size
    radius = np.hypot(f[:, None], f[None, :])
    spectrum = np.exp(-(radius / cutoff) ** 2)[..., None]
    white = rng.standard_normal((size, size, channels))
    field = np.real(np.fft.ifft2(np.fft.fft2(white, axes=(0, 1)) * spectrum, axes=(0, 1)))
    return (field - field.mean()) / max(field.std(), 1e-9)


def _colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` random RGB colours in [0.15, 1]."""
    return rng.uniform(0.15, 1.0, (count, 3))


def _tiles(rng: np.random.Generator, n: int) -> np.ndarray:
    cells = int(rng.integers(1, 5))
    grout = int(rng.integers(1, 5))
    base = _colours(rng, 1)[0]
    tone = base * rng.uniform(0.8, 1.2, (cells, cells, 1))
    ij = np.arange(n) * cells // n
    img = tone[ij[:, None], ij[None, :]] + 0.04 * _noise(rng, n, 24)
    pos = np.arange(n) % (n // cells)
    line = (pos < grout)
    img[line[:, None] | line[None, :]] = rng.uniform(0.1, 0.9)
    return img


def _wood(rng: np.random.Generator, n: int) -> np.ndarray:
    planks = int(rng.integers(2, 7))
    y = np.arange(n)[:, None] / n
    x = np.arange(n)[None, :] / n
    warp = 0.03 * _noise(rng, n, 3)[..., 0]
    rings = np.sin(2 * np.pi * (rng.integers(4, 12) * (y + warp) + 0.3 * x))
    tone = rng.uniform(0.75, 1.25, planks)[(np.arange(n) * planks // n)][None, :]
    brown = np.array([0.55, 0.38, 0.22]) * rng.uniform(0.6, 1.4)
    img = brown * (tone * (0.8 + 0.15 * rings))[..., None] + 0.03 * _noise(rng, n, 30)
    seams = (np.arange(n) % (n // planks)) == 0
    img[:, seams] *= 0.5
    return img


def _checker(rng: np.random.Generator, n: int) -> np.ndarray:
    cells = int(rng.choice([2, 4, 6, 8]))
    a, b = _colours(rng, 2)
    ij = np.arange(n) * cells // n
    odd = (ij[:, None] + ij[None, :]) % 2 == 1
    return np.where(odd[..., None], a, b) + 0.02 * _noise(rng, n, 30)


def _stripes(rng: np.random.Generator, n: int) -> np.ndarray:
    bands = int(rng.choice([2, 3, 4, 6, 8, 12]))
    colours = _colours(rng, int(rng.integers(2, 5)))
    y, x = np.mgrid[0:n, 0:n]
    along = [y, x, (x + y) % n][int(rng.integers(3))]
    return colours[(along * bands // n) % len(colours)] + 0.02 * _noise(rng, n, 30)


def _granite(rng: np.random.Generator, n: int) -> np.ndarray:
    base = _colours(rng, 1)[0]
    field = 0.5 * _noise(rng, n, 4) + 0.35 * _noise(rng, n, 12) + 0.25 * _noise(rng, n, 40, 3)
    img = base * (1 + 0.25 * field)
    specks = rng.random((n, n)) < 0.03
    img[specks] = rng.uniform(0.0, 1.0, (int(specks.sum()), 1))
    return img


def _paint(rng: np.random.Generator, n: int) -> np.ndarray:
    return _colours(rng, 1)[0] * (1 + 0.06 * _noise(rng, n, 40) + 0.04 * _noise(rng, n, 6))


def _fabric(rng: np.random.Generator, n: int) -> np.ndarray:
    threads = int(rng.choice([8, 12, 16, 24]))
    a, b = _colours(rng, 2)
    y, x = np.mgrid[0:n, 0:n] * (2 * np.pi * threads / n)
    over = (np.sin(x) * np.sin(y) > 0)[..., None]
    shade = (0.75 + 0.25 * np.abs(np.sin(np.where(over[..., 0], x, y))))[..., None]
    return np.where(over, a, b) * shade + 0.03 * _noise(rng, n, 30)


def _skimage_image(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    side = min(image.shape[:2])
    return image[:side, :side, :3].astype(np.float64) / 255.0


PROCEDURAL: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "tiles": _tiles, "wood": _wood, "checker": _checker, "stripes": _stripes,
    "granite": _granite, "paint": _paint, "fabric": _fabric}
FAMILIES = (*PROCEDURAL, "photo", "skimage")


def texture_image(family: str, variant: int, contrast: float) -> np.ndarray:
    """RGB uint8 (TEXTURE_SIZE, TEXTURE_SIZE, 3) of one variant of a family, its contrast
    around the mean scaled by `contrast`. The same (family, variant, contrast) always gives
    the same image."""
    if family not in FAMILIES:
        raise ValueError(f"texture family '{family}' is not one of {', '.join(FAMILIES)}")
    rng = np.random.default_rng([FAMILIES.index(family), variant])
    if family == "photo":
        img = _skimage_image(PHOTOS[variant % len(PHOTOS)])
    elif family == "skimage":
        img = _skimage_image(SKIMAGE_TEXTURES[variant % len(SKIMAGE_TEXTURES)])
    else:
        img = PROCEDURAL[family](rng, 4 * TEXTURE_SIZE)
    img = cv2.resize(np.clip(img, 0.0, 1.0).astype(np.float32), (TEXTURE_SIZE, TEXTURE_SIZE),
                     interpolation=cv2.INTER_AREA)
    mean = img.mean(axis=(0, 1))
    img = np.clip(mean + contrast * (img - mean), 0.0, 1.0)
    return (img * 255 + 0.5).astype(np.uint8)


def texture_file(family: str, variant: int, contrast: float, folder: Path | None = None) -> Path:
    """The PNG of `texture_image`, written once (atomically: parallel runs share the cache)."""
    folder = folder or cache_dir() / f"textures-{TEXTURE_SIZE}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{family}-{variant}-c{round(contrast * 100):03d}.png"
    if not path.exists():
        tmp = folder / f".{path.stem}.{os.getpid()}.png"
        io.imsave(tmp, texture_image(family, variant, contrast), check_contrast=False)
        os.replace(tmp, path)
    return path
