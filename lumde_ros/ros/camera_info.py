"""CameraInfo to intrinsics (REP 104 binning and ROI applied) and the depth image's CameraInfo.

The projection matrix P is used, as image_geometry and depth_image_proc do, with K as a fallback
when P is empty; distortion is not modelled, so distorted lenses should feed rectified images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from lumde_ros.errors import IntrinsicsError
from lumde_ros.geometry import Intrinsics

# Images whose aspect ratio differs from the CameraInfo's by less than this are taken to be a
# plain resize of the calibrated image (a driver publishing a scaled stream).
ASPECT_TOLERANCE = 0.01


def camera_intrinsics(msg: CameraInfo) -> Intrinsics:
    """Intrinsics of the image `msg` describes, after its ROI and binning (REP 104)."""
    p, k = msg.p, msg.k
    fx, fy, cx, cy = (p[0], p[5], p[2], p[6]) if p[0] != 0.0 else (k[0], k[4], k[2], k[5])
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise IntrinsicsError(f"CameraInfo has focal lengths fx={fx}, fy={fy} (P and K); "
                              "expected finite and positive: the camera is uncalibrated or "
                              "its driver publishes an empty CameraInfo")
    if msg.width <= 0 or msg.height <= 0:
        raise IntrinsicsError(f"CameraInfo size is {msg.width}x{msg.height}; expected the "
                              "calibrated image size")
    intrinsics = Intrinsics(fx, fy, cx, cy, msg.width, msg.height)
    roi = msg.roi
    if roi.width > 0 and roi.height > 0:
        intrinsics = intrinsics.cropped(roi.x_offset, roi.y_offset, roi.width, roi.height)
    bin_x, bin_y = max(msg.binning_x, 1), max(msg.binning_y, 1)
    if bin_x > 1 or bin_y > 1:
        if intrinsics.width < bin_x or intrinsics.height < bin_y:
            raise IntrinsicsError(f"CameraInfo binning {bin_x}x{bin_y} leaves no pixel of its "
                                  f"{intrinsics.width}x{intrinsics.height} image")
        intrinsics = intrinsics.resized(intrinsics.width // bin_x, intrinsics.height // bin_y)
    return intrinsics


@dataclass(frozen=True)
class Fit:
    """Intrinsics for an image of a given size, or None (no usable geometry), and why."""

    intrinsics: Intrinsics | None
    warning: str | None = None


def fit_to_image(intrinsics: Intrinsics, width: int, height: int) -> Fit:
    """Match intrinsics to an image: as is, scaled when only the size differs (same aspect
    ratio), or None when the image cannot be the calibrated one."""
    if (intrinsics.width, intrinsics.height) == (width, height):
        return Fit(intrinsics)
    found = f"CameraInfo (after binning/ROI) is {intrinsics.width}x{intrinsics.height} but " \
            f"the image is {width}x{height}"
    if abs(width / height - intrinsics.width / intrinsics.height) <= ASPECT_TOLERANCE * (
            intrinsics.width / intrinsics.height):
        return Fit(intrinsics.resized(width, height),
                   f"{found}: same aspect ratio, scaling the intrinsics; publish a matching "
                   "CameraInfo to silence this")
    return Fit(None, f"{found} with another aspect ratio: publishing depth without "
                     "depth/camera_info and points; check that image and camera_info topics "
                     "belong to the same camera")


def pinhole_camera_info(intrinsics: Intrinsics, header: Header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera. For `depth/camera_info` this is exactly the
    model the point cloud was back-projected with, so any consumer reproduces the cloud."""
    i = intrinsics
    return CameraInfo(
        header=header, width=i.width, height=i.height, distortion_model="plumb_bob",
        d=[0.0] * 5, k=[i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0])

