"""Depth to sensor_msgs/PointCloud2 the way depth_image_proc makes it: organised (or decimated
by a stride), float32 x, y, z (+ packed rgb), NaN for invalid points, is_dense=False."""
from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from lumde_ros.geometry import Intrinsics, pixel_rays

_XYZ = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate("xyz")]
# PCL's convention: colour is a float32 field whose bits are 0x00RRGGBB.
_RGB = PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1)


class CloudBuilder:
    """Builds clouds into one reused payload buffer: back-projection is two broadcasts over a
    cached ray grid and writes straight into the message's memory, with no per-pixel Python.

    The returned message shares its buffer with the next call's: publish it (rclpy serialises
    on publish) before building the next one.
    """

    def __init__(self) -> None:
        self._key: tuple[Intrinsics, int, int, bool] | None = None
        self._rays: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
        self._msg = PointCloud2()
        self._floats = np.empty((0, 0, 3), np.float32)

    def _prepare(self, intrinsics: Intrinsics, stride: int, rgb_shape: tuple[int, ...] | None,
                 color: bool) -> None:
        key = (intrinsics, stride, rgb_shape, color)
        if key == self._key:
            return
        self._rays = pixel_rays(intrinsics, stride)
        cols, rows = len(self._rays[0]), len(self._rays[1])
        channels = 4 if color else 3
        payload = array.array("B", bytes(rows * cols * channels * 4))
        if color:
            # Nearest colour pixel for each cloud pixel, whatever the colour image's size.
            h, w = rgb_shape[:2]
            self._color_rows = ((np.arange(rows) * stride + 0.5) * h
                                / intrinsics.height).astype(int)
            self._color_cols = ((np.arange(cols) * stride + 0.5) * w
                                / intrinsics.width).astype(int)
        self._msg = PointCloud2(
            height=rows, width=cols, fields=_XYZ + ([_RGB] if color else []),
            is_bigendian=sys.byteorder == "big", point_step=channels * 4,
            row_step=cols * channels * 4, data=payload, is_dense=False)
        # View the buffer the message holds (its setter may have copied `payload`).
        self._floats = np.frombuffer(self._msg.data, np.float32).reshape(rows, cols, channels)
        self._key = key

    def build(self, depth: np.ndarray, intrinsics: Intrinsics, header: Header, stride: int = 1,
              rgb: np.ndarray | None = None) -> PointCloud2:
        """Cloud of depth (H, W) metres (NaN invalid) with `intrinsics` of that same size, in
        the frame of `header`. rgb: optional RGB uint8 (any size) of the same view."""
        color = rgb is not None
        self._prepare(intrinsics, stride, rgb.shape if color else None, color)
        rx, ry = self._rays
        z = depth[::stride, ::stride]
        out = self._floats
        np.multiply(z, rx[None, :], out=out[:, :, 0])
        np.multiply(z, ry[:, None], out=out[:, :, 1])
        out[:, :, 2] = z
        if color:
            picked = rgb.take(self._color_rows, axis=0).take(self._color_cols, axis=1)
            # Write the bytes of 0x00RRGGBB directly: b, g, r, 0 on a little-endian host.
            colour = out.view(np.uint8).reshape(out.shape[0], out.shape[1], -1)[:, :, 12:16]
            if self._msg.is_bigendian:
                colour[:, :, 0], colour[:, :, 1:] = 0, picked
            else:
                colour[:, :, :3], colour[:, :, 3] = picked[:, :, ::-1], 0
        self._msg.header = header
        return self._msg


def cloud_to_arrays(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None]:
    """Read any PointCloud2 by its field offsets, as a consumer such as PCL does: x, y, z as
    (height, width, 3) float32 and, when present, packed rgb as (height, width, 3) uint8."""
    offsets = {f.name: f.offset for f in msg.fields}
    order = ">" if msg.is_bigendian else "<"
    raw = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.row_step)
    raw = raw[:, :msg.width * msg.point_step].reshape(msg.height, msg.width, msg.point_step)

    def field(name: str, kind: str) -> np.ndarray:
        start = offsets[name]
        return raw[:, :, start:start + 4].copy().view(order + kind)[..., 0]

    xyz = np.stack([field(n, "f4") for n in "xyz"], axis=-1)
    if "rgb" not in offsets:
        return xyz, None
    packed = field("rgb", "u4")
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)
    return xyz, rgb.astype(np.uint8)
