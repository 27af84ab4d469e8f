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
# Fields of view (degrees, each axis) a real camera can have; a calibration outside them has
# its focal lengths in the wrong units or is corrupt.
FOV_RANGE_DEG = (1.0, 179.0)


def camera_intrinsics(msg: CameraInfo) -> Intrinsics:
    """Intrinsics of the image `msg` describes, after its ROI and binning (REP 104)."""
    p, k = msg.p, msg.k
    source, (fx, fy, cx, cy) = ("P", (p[0], p[5], p[2], p[6])) \
        if math.isfinite(p[0]) and p[0] != 0.0 else ("K", (k[0], k[4], k[2], k[5]))
    values = f"CameraInfo {source} gives fx={fx:g}, fy={fy:g}, cx={cx:g}, cy={cy:g}"
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise IntrinsicsError(f"{values}; expected finite values and positive focal lengths: "
                              "the camera is uncalibrated or its driver publishes an empty "
                              "CameraInfo")
    if msg.width <= 0 or msg.height <= 0:
        raise IntrinsicsError(f"CameraInfo size is {msg.width}x{msg.height}; expected the "
                              "calibrated image size")
    low, high = FOV_RANGE_DEG
    for axis, size, focal in (("horizontal", msg.width, fx), ("vertical", msg.height, fy)):
        fov = math.degrees(2.0 * math.atan(size / (2.0 * focal)))
        if not low <= fov <= high:
            raise IntrinsicsError(f"{values} for a {msg.width}x{msg.height} image: a {axis} "
                                  f"field of view of {fov:.3g} degrees, outside {low:g}-{high:g}; "
                                  "focal lengths must be in pixels")
    intrinsics = Intrinsics(fx, fy, cx, cy, msg.width, msg.height)
    roi = msg.roi
    if roi.width > 0 and roi.height > 0:
        if roi.x_offset + roi.width > msg.width or roi.y_offset + roi.height > msg.height:
            raise IntrinsicsError(f"CameraInfo ROI {roi.width}x{roi.height} at ({roi.x_offset}, "
                                  f"{roi.y_offset}) lies outside its {msg.width}x{msg.height} "
                                  "image; check the driver's ROI settings")
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


def unmodelled_distortion(msg: CameraInfo, image_topic: str) -> str | None:
    """A warning when `image_topic` is named as an unrectified stream (…/image_raw) while its
    CameraInfo describes lens distortion, which is not modelled; None otherwise. (A rectified
    stream shares the raw camera's CameraInfo, D included, so D alone says nothing.)"""
    stream = image_topic.removesuffix("/compressed").rsplit("/", 1)[-1]
    if stream != "image_raw" or not any(msg.d):
        return None
    return (f"{image_topic} is an unrectified stream and its CameraInfo has "
            f"{msg.distortion_model[:32] or 'unnamed'} distortion, which lumde_ros does not "
            "model (a pinhole camera): depth and point clouds bend toward the image's edges; "
            "use a rectified stream (image_proc's image_rect)")


def pinhole_camera_info(intrinsics: Intrinsics, header: Header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera. For `depth/camera_info` this is exactly the
    model the point cloud was back-projected with, so any consumer reproduces the cloud."""
    i = intrinsics
    return CameraInfo(
        header=header, width=i.width, height=i.height, distortion_model="plumb_bob",
        d=[0.0] * 5, k=[i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0])

