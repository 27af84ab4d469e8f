"""sensor_msgs/Image and CompressedImage to RGB arrays, and depth arrays to Image messages."""
from __future__ import annotations

import array
import sys

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lumde_ros.errors import EncodingError

# encoding -> (channels, dtype, OpenCV conversion to RGB or None when already RGB).
_DECODERS: dict[str, tuple[int, type, int | None]] = {
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "rgb16": (3, np.uint16, None),
    "bgr16": (3, np.uint16, cv2.COLOR_BGR2RGB),
    "bayer_rggb8": (1, np.uint8, cv2.COLOR_BayerRGGB2RGB),
    "bayer_bggr8": (1, np.uint8, cv2.COLOR_BayerBGGR2RGB),
    "bayer_gbrg8": (1, np.uint8, cv2.COLOR_BayerGBRG2RGB),
    "bayer_grbg8": (1, np.uint8, cv2.COLOR_BayerGRBG2RGB),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
}
SUPPORTED_ENCODINGS = tuple(_DECODERS)
_HOST_BIG_ENDIAN = sys.byteorder == "big"
# Smaller images carry no scene a depth network could read: a driver sending them is broken.
MIN_IMAGE_SIDE = 16
# Publisher-supplied text quoted in a log line or /diagnostics is cut to this length.
QUOTE_CHARS = 32


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse empty or tiny images and images so large that decoding them would stall the
    node."""
    if width <= 0 or height <= 0:
        raise EncodingError(f"image is {width}x{height}: zero-sized; check the camera driver")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise EncodingError(f"image is {width}x{height}: smaller than {MIN_IMAGE_SIDE} px a "
                            "side, not a camera frame; check the camera driver's resolution")
    if width * height > max_pixels:
        raise EncodingError(
            f"image is {width}x{height} ({width * height} px), above max_input_pixels="
            f"{max_pixels}; publish a smaller image (e.g. image_proc's resize) or raise "
            "max_input_pixels")


def image_to_rgb(msg: Image, max_pixels: int) -> np.ndarray:
    """Decode an Image to RGB uint8 (H, W, 3); 16-bit data is scaled to 8 bits."""
    spec = _DECODERS.get(msg.encoding)
    if spec is None:
        raise EncodingError(f"unsupported encoding {msg.encoding[:QUOTE_CHARS]!r}; supported: "
                            f"{', '.join(SUPPORTED_ENCODINGS)}")
    channels, dtype, conversion = spec
    width, height = msg.width, msg.height
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    check_size(width, height, max_pixels)
    if msg.step < row_bytes:
        raise EncodingError(f"step {msg.step} is smaller than width*bytes_per_pixel = {row_bytes} "
                            f"for {width}x{height} {msg.encoding}")
    if len(msg.data) != msg.step * height:
        raise EncodingError(f"data has {len(msg.data)} bytes, expected step*height = "
                            f"{msg.step}*{height} = {msg.step * height} ({msg.encoding}); "
                            "the message is truncated or its size fields are wrong")
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, msg.step)[:, :row_bytes]
    pixels = rows.view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    pixels = pixels.reshape(height, width, channels)
    if itemsize == 2:
        pixels = (pixels.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if conversion is None:
        return np.ascontiguousarray(pixels)
    if channels == 2 and width % 2:
        raise EncodingError(f"{msg.encoding} packs pixel pairs, so its width must be even; "
                            f"found {width}")
    try:
        return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
    except cv2.error as err:
        raise EncodingError(f"cannot convert {width}x{height} {msg.encoding} to RGB: {err}") \
            from err


def compressed_to_rgb(msg: CompressedImage, max_pixels: int) -> np.ndarray:
    """Decode a CompressedImage (jpeg, png or tiff: the codecs of image_transport's
    compressed plugin)."""
    if "compressedDepth" in msg.format:
        raise EncodingError(f"format {msg.format[:QUOTE_CHARS]!r} is a compressed depth image, "
                            "not a camera image; subscribe to the colour camera's compressed "
                            "topic")
    if len(msg.data) == 0:
        raise EncodingError("compressed image has an empty payload")
    data = bytes(msg.data)
    size = compressed_size(data)
    if size is None:
        raise EncodingError(f"cannot decode compressed image ({len(data)} bytes, format "
                            f"{msg.format[:QUOTE_CHARS]!r}): not a jpeg, png or tiff, or its "
                            "header is corrupt")
    check_size(*size, max_pixels)  # before decoding: a small file can hold a huge image
    # The pixels as sent: image_transport ignores EXIF orientation, and so does CameraInfo.
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8),
                       cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or (bgr.shape[1], bgr.shape[0]) != size:
        raise EncodingError(f"cannot decode compressed image ({len(data)} bytes, format "
                            f"{msg.format[:QUOTE_CHARS]!r}): corrupt payload")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they hold the image size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TIFF_ORDER = {b"II*\0": "little", b"MM\0*": "big"}
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257  # tags of the first image directory
_TIFF_SHORT, _TIFF_LONG = 3, 4  # field types those tags use


def compressed_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or TIFF header without decoding the pixels; None when
    the data is none of them or its header is unreadable."""
    order = _TIFF_ORDER.get(data[:4])
    if order:
        return _tiff_size(data, order)
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):  # segments: 0xFF, marker, 2-byte length that counts itself
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            if at + 9 > len(data):
                return None
            return int.from_bytes(data[at + 7:at + 9], "big"), \
                int.from_bytes(data[at + 5:at + 7], "big")
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return None


def _tiff_size(data: bytes, order: str) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of a TIFF's first directory (12-byte entries: tag, type,
    count, value)."""
    def number(at: int, size: int) -> int:
        return int.from_bytes(data[at:at + size], order)

    ifd = number(4, 4)
    found: dict[int, int] = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * number(ifd, 2), 12):
        if entry + 12 > len(data):
            return None
        tag, kind = number(entry, 2), number(entry + 2, 2)
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT) and kind in (_TIFF_SHORT, _TIFF_LONG):
            found[tag] = number(entry + 8, 2 if kind == _TIFF_SHORT else 4)
    if len(found) < 2:
        return None
    return found[_TIFF_WIDTH], found[_TIFF_HEIGHT]


def _payload(pixels: np.ndarray) -> array.array:
    """Bytes of a C-contiguous array as the array('B') rclpy stores (one copy)."""
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    return data


def depth_to_image(depth: np.ndarray, header: Header) -> Image:
    """Depth (H, W) metres, NaN invalid, to a REP 118 `32FC1` Image."""
    height, width = depth.shape
    return Image(header=header, height=height, width=width, encoding="32FC1",
                 is_bigendian=_HOST_BIG_ENDIAN, step=width * 4,
                 data=_payload(depth.astype(np.float32, copy=False)))


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """RGB uint8 (H, W, 3) to an `rgb8` Image."""
    height, width = rgb.shape[:2]
    return Image(header=header, height=height, width=width, encoding="rgb8", is_bigendian=False,
                 step=width * 3, data=_payload(rgb))


# REP 118 depth encodings: float metres, or unsigned millimetres with 0 for no reading.
DEPTH_ENCODINGS = {"32FC1": ("f4", 1.0), "16UC1": ("u2", 1e-3)}


def image_to_depth(msg: Image) -> np.ndarray:
    """A REP 118 depth Image (32FC1 metres or 16UC1 millimetres) as float32 (H, W) metres,
    NaN where there is no reading."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise EncodingError(f"expected a depth image ({', '.join(DEPTH_ENCODINGS)}), found "
                            f"'{msg.encoding}'")
    kind, to_metres = DEPTH_ENCODINGS[msg.encoding]
    order = ">" if msg.is_bigendian else "<"
    size = np.dtype(kind).itemsize
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width * size]
    depth = rows.view(np.dtype(kind).newbyteorder(order)).astype(np.float32) * to_metres
    if kind == "u2":
        depth[depth == 0] = np.nan
    return depth


# The log colour scale needs a positive near end; min_depth_m may be 0.
MIN_COLOR_DEPTH_M = 1e-2


def colorize_depth(depth: np.ndarray, min_depth_m: float, max_depth_m: float) -> np.ndarray:
    """RGB uint8 view of depth through the Turbo colour map on a log scale over
    [min_depth_m, max_depth_m] (near is warm), black where depth is NaN. A log scale gives
    near and far structure comparable share of the colours."""
    min_depth_m = max(min_depth_m, MIN_COLOR_DEPTH_M)
    log_lo, log_hi = np.log(min_depth_m), np.log(max_depth_m)
    level = np.clip(depth, min_depth_m, max_depth_m)
    np.log(level, out=level)
    level -= log_hi
    level *= -255.0 / (log_hi - log_lo)
    invalid = np.isnan(level)
    level[invalid] = 0.0
    rgb = cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_TURBO)
    cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB, dst=rgb)
    rgb[invalid] = 0
    return rgb
