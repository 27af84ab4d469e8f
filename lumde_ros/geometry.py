"""Camera geometry shared by inference, point clouds and (later) training.

Pixel convention: integer pixel coordinates address pixel centres, as in ROS CameraInfo and
OpenCV, so resizing an image by s maps a coordinate u to (u + 0.5) * s - 0.5. Writing the
intrinsics scaling once here keeps `depth/camera_info`, the point cloud and training consistent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of `width` x `height` pixels (fx, fy, cx, cy in pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def resized(self, width: int, height: int) -> Intrinsics:
        """The intrinsics of this image resized (any aspect ratio) to `width` x `height`."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(fx=self.fx * sx, fy=self.fy * sy,
                          cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5,
                          width=width, height=height)

    def cropped(self, x_offset: int, y_offset: int, width: int, height: int) -> Intrinsics:
        """The intrinsics of the `width` x `height` window starting at (x_offset, y_offset)."""
        return Intrinsics(fx=self.fx, fy=self.fy, cx=self.cx - x_offset, cy=self.cy - y_offset,
                          width=width, height=height)

    def matrix(self) -> np.ndarray:
        """3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def is_valid(self) -> bool:
        """Finite, positive focal lengths and a non-empty image."""
        values = (self.fx, self.fy, self.cx, self.cy)
        return (all(math.isfinite(v) for v in values) and self.fx > 0 and self.fy > 0
                and self.width > 0 and self.height > 0)

    @staticmethod
    def from_matrix(k: np.ndarray, width: int, height: int) -> Intrinsics:
        """The intrinsics of a 3x3 camera matrix K for a `width` x `height` image."""
        return Intrinsics(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]),
                          cy=float(k[1, 2]), width=width, height=height)

    @staticmethod
    def from_hfov(width: int, height: int, hfov_deg: float) -> Intrinsics:
        """Square pixels, centred principal point, horizontal field of view `hfov_deg`."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return Intrinsics(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                          width=width, height=height)


def pixel_rays(intrinsics: Intrinsics, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ray coordinates of every `stride`-th pixel: x/z per column (W',), y/z per row
    (H',), float32. A pinhole ray grid is separable, so back-projection is two broadcasts."""
    us = np.arange(0, intrinsics.width, stride, dtype=np.float64)
    vs = np.arange(0, intrinsics.height, stride, dtype=np.float64)
    return (((us - intrinsics.cx) / intrinsics.fx).astype(np.float32),
            ((vs - intrinsics.cy) / intrinsics.fy).astype(np.float32))


def project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Project camera-frame points (N, 3), z forward, to pixel coordinates (N, 2)."""
    z = points[:, 2]
    return np.stack([intrinsics.fx * points[:, 0] / z + intrinsics.cx,
                     intrinsics.fy * points[:, 1] / z + intrinsics.cy], axis=1)


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Depth (H, W) metres along optical Z to camera-frame points (H, W, 3); NaN stays NaN."""
    rx, ry = pixel_rays(intrinsics)
    return np.stack([depth * rx[None, :], depth * ry[:, None], depth], axis=-1)


def disp_to_depth(disp: torch.Tensor, near_m: float, far_m: float) -> torch.Tensor:
    """Map a sigmoid disparity in [0, 1] linearly onto inverse depth in [1/far_m, 1/near_m] and
    return depth in metres (before any metric scale), as in Monodepth2's `disp_to_depth`."""
    min_inv, max_inv = 1.0 / far_m, 1.0 / near_m
    return 1.0 / (min_inv + (max_inv - min_inv) * disp)


def quaternion_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of fixed-axis roll, pitch, yaw (REP 103 order: R = Rz Ry Rx)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


def pose_matrix(translation: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """4x4 rigid transform from a translation (3,) and a unit quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(quaternion, float) / np.linalg.norm(quaternion)
    matrix = np.eye(4)
    matrix[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    matrix[:3, 3] = translation
    return matrix


def matrix_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of the rotation part of a 4x4 (or 3x3) matrix."""
    r = matrix[:3, :3]
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    return np.array([x, y, z, w])


# camera_link (x forward, y left, z up) to its optical frame (z forward, x right, y down).
OPTICAL_FROM_LINK_RPY = (-math.pi / 2, 0.0, -math.pi / 2)


# --- batched torch geometry for view synthesis (training and the trainer's gate) -----------

def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) from axis-angle vectors (B, 3) (Rodrigues' formula)."""
    angle = axis_angle.norm(dim=1, keepdim=True).clamp_min(1e-8)
    axis = axis_angle / angle
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(-1, 3, 3)
    sin, cos = torch.sin(angle)[:, :, None], torch.cos(angle)[:, :, None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(cross)
    return eye + sin * cross + (1 - cos) * (cross @ cross)


def pose_from_vector(axis_angle: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """4x4 transforms (B, 4, 4) from axis-angle (B, 3) and translation (B, 3)."""
    pose = torch.eye(4, dtype=axis_angle.dtype, device=axis_angle.device).repeat(
        axis_angle.shape[0], 1, 1)
    pose[:, :3, :3] = axis_angle_to_matrix(axis_angle)
    pose[:, :3, 3] = translation
    return pose


def pixel_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Homogeneous pixel coordinates (3, H*W) [u; v; 1], built from the shape (so any batch
    size and resolution works)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=like.dtype, device=like.device),
                          torch.arange(width, dtype=like.dtype, device=like.device),
                          indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def backproject_depth(depth: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Depth (B, 1, H, W) metres with camera matrices K (B, 3, 3) to camera-frame points
    (B, 3, H*W)."""
    b, _, h, w = depth.shape
    rays = torch.linalg.inv(k) @ pixel_grid(h, w, depth)
    return rays * depth.reshape(b, 1, h * w)


def project_points(points: torch.Tensor, k: torch.Tensor, height: int,
                   width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame points (B, 3, H*W) to pixel coordinates normalised to [-1, 1] for
    grid_sample (B, H, W, 2), and the points' depth (B, 1, H, W)."""
    b = points.shape[0]
    pixels = k @ points
    z = pixels[:, 2:3]
    uv = pixels[:, :2] / z.clamp_min(1e-6)
    u = uv[:, 0] / (width - 1) * 2 - 1
    v = uv[:, 1] / (height - 1) * 2 - 1
    return torch.stack([u, v], dim=-1).view(b, height, width, 2), z.view(b, 1, height, width)


def warp(source: torch.Tensor, depth: torch.Tensor, target_to_source: torch.Tensor,
         k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from `source` (B, C, H, W): each target pixel with `depth`
    (B, 1, H, W) is moved by the 4x4 `target_to_source` (B, 4, 4), projected with K and
    sampled bilinearly. Returns the image and a mask (B, 1, H, W) of pixels that land inside
    the source image in front of its camera."""
    b, _, h, w = depth.shape
    points = backproject_depth(depth, k)
    moved = target_to_source[:, :3, :3] @ points + target_to_source[:, :3, 3:]
    grid, z = project_points(moved, k, h, w)
    image = torch.nn.functional.grid_sample(source, grid, mode="bilinear",
                                            padding_mode="border", align_corners=True)
    # A hair of slack so border pixels of an exact reprojection are not lost to rounding.
    inside = (grid.abs() <= 1 + 1e-4).all(dim=-1, keepdim=True).permute(0, 3, 1, 2) & (z > 1e-3)
    return image, inside.to(source.dtype)


def turned_view(source: torch.Tensor, axis_angle: torch.Tensor, k: torch.Tensor
                ) -> torch.Tensor:
    """`source` (B, C, H, W) as a camera turned by `axis_angle` (B, 3; target -> source, no
    translation) would see it: a turn moves every pixel the same at any depth, so `warp` at
    unit depth is exact (pixels that come into view take the border's colours)."""
    motion = pose_from_vector(axis_angle, torch.zeros_like(axis_angle))
    return warp(source, torch.ones_like(source[:, :1]), motion, k)[0]


# The floor prior's channels: the floor's inverse depth, and whether it is known.
FLOOR_PRIOR_CHANNELS = 2
# Inverse depth (1/m) the floor prior saturates at (a floor 0.2 m away).
FLOOR_PRIOR_MAX_INV = 5.0


def floor_prior(k: torch.Tensor, floor_from_camera: torch.Tensor, height: int,
                width: int) -> torch.Tensor:
    """What tf says of each pixel's depth before the image is looked at (B, 2, H, W): the
    inverse depth (1/m, over FLOOR_PRIOR_MAX_INV, clamped to [0, 1]) the pixel would have if
    it saw the floor, 0 above the horizon; and ones where the camera's pose over the floor is
    known. k (B, 3, 3) at that size; floor_from_camera (B, 4, 4), as RecordedFrame has it
    (z up, origin on the floor); a non-finite pose gives zeros in both channels (unknown)."""
    floor_from_camera = floor_from_camera.to(k.dtype)
    known = torch.isfinite(floor_from_camera).flatten(1).all(1)
    pose = torch.where(known[:, None, None], floor_from_camera, torch.eye(4, dtype=k.dtype))
    up = pose[:, 2, :3]  # R^T e_z: up in the camera frame
    camera_height = pose[:, 2, 3].clamp_min(1e-3)
    rx = (torch.arange(width, dtype=k.dtype)[None] - k[:, 0, 2, None]) / k[:, 0, 0, None]
    ry = (torch.arange(height, dtype=k.dtype)[None] - k[:, 1, 2, None]) / k[:, 1, 1, None]
    down = -(rx[:, None, :] * up[:, 0, None, None] + ry[:, :, None] * up[:, 1, None, None]
             + up[:, 2, None, None])
    inverse = (down.clamp_min(0) / camera_height[:, None, None]
               / FLOOR_PRIOR_MAX_INV).clamp(0, 1)
    prior = torch.stack([inverse, torch.ones_like(inverse)], dim=1)
    return prior * known[:, None, None, None].to(k.dtype)
