import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lumde_ros.errors import EncodingError
from lumde_ros.ros.image import (SUPPORTED_ENCODINGS, colorize_depth, compressed_size,
                                 compressed_to_rgb, depth_to_image, image_to_depth, image_to_rgb,
                                 rgb_to_image)

MAX = 1 << 24


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> Image:
    """An Image as a driver would send it, rows padded by `pad` bytes."""
    h, w = pixels.shape[:2]
    order = ">" if big_endian else "<"
    rows = pixels.astype(pixels.dtype.newbyteorder(order)).reshape(h, -1).view(np.uint8)
    rows = np.hstack([rows, np.zeros((h, pad), np.uint8)])
    return Image(height=h, width=w, encoding=encoding, is_bigendian=big_endian,
                 step=rows.shape[1], data=rows.tobytes())


@pytest.mark.parametrize("encoding, make", [
    ("rgb8", lambda c: c),
    ("bgr8", lambda c: c[:, :, ::-1]),
    ("rgba8", lambda c: np.dstack([c, np.full(c.shape[:2], 255, np.uint8)])),
    ("bgra8", lambda c: np.dstack([c[:, :, ::-1], np.zeros(c.shape[:2], np.uint8)])),
    ("rgb16", lambda c: c.astype(np.uint16) * 257),
    ("bgr16", lambda c: c[:, :, ::-1].astype(np.uint16) * 257),
])
@pytest.mark.parametrize("pad", [0, 5])
def test_colour_encodings_decode_to_rgb(rgb, encoding, make, pad):
    out = image_to_rgb(_image(np.ascontiguousarray(make(rgb)), encoding, pad), MAX)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("encoding, scale", [("mono8", 1), ("mono16", 257)])
@pytest.mark.parametrize("big_endian", [False, True])
def test_mono_encodings_become_grey_rgb(encoding, scale, big_endian):
    grey = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) % 256
    dtype = np.uint8 if scale == 1 else np.uint16
    out = image_to_rgb(_image((grey * scale).astype(dtype), encoding, 3, big_endian), MAX)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_bayer_and_yuv_are_demosaiced():
    mosaic = np.zeros((16, 16), np.uint8)
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = 200, 10
    mosaic[0::2, 1::2] = mosaic[1::2, 0::2] = 50
    np.testing.assert_array_equal(image_to_rgb(_image(mosaic, "bayer_rggb8"), MAX)[7:9, 7:9],
                                  np.full((2, 2, 3), (200, 50, 10), np.uint8))
    yuyv = np.full((16, 16, 2), 128, np.uint8)
    grey = image_to_rgb(_image(yuyv, "yuv422_yuy2"), MAX)
    assert grey.shape == (16, 16, 3) and abs(int(grey[0, 0, 0]) - 128) <= 2


CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 1, "rgb16": 3,
            "bgr16": 3, "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1,
            "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2}


def test_every_supported_encoding_decodes():
    assert set(SUPPORTED_ENCODINGS) == set(CHANNELS)
    for encoding, channels in CHANNELS.items():
        dtype = np.uint16 if "16" in encoding else np.uint8
        out = image_to_rgb(_image(np.ones((16, 18, channels), dtype), encoding), MAX)
        assert out.shape == (16, 18, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("change, match", [
    (dict(encoding="32FC1"), "unsupported encoding '32FC1'"),
    (dict(step=10), "step 10 is smaller"),
    (dict(height=100), "truncated"),
    (dict(width=0), "zero-sized"),
    (dict(height=0, data=b""), "zero-sized"),
    (dict(height=1, data=b"\0" * 64 * 3), "smaller than 16 px"),
    (dict(encoding="z" * 100_000), "unsupported encoding 'z{32}'; supported"),
])
def test_malformed_images_raise_actionable_errors(rgb, change, match):
    msg = _image(rgb, "rgb8")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(EncodingError, match=match):
        image_to_rgb(msg, MAX)


def test_truncated_payload_is_refused(rgb):
    msg = _image(rgb, "rgb8")
    msg.data = bytes(msg.data)[:-7]
    with pytest.raises(EncodingError, match="expected step\\*height"):
        image_to_rgb(msg, MAX)


def test_oversized_image_is_refused(rgb):
    with pytest.raises(EncodingError, match="max_input_pixels"):
        image_to_rgb(_image(rgb, "rgb8"), max_pixels=1000)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tiff"])
def test_compressed_images_decode(ext):
    ys, xs = np.mgrid[:48, :64]
    smooth = np.dstack([xs * 4, ys * 5, np.full_like(xs, 90)]).astype(np.uint8)
    ok, buf = cv2.imencode(ext, smooth[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb(CompressedImage(format=ext[1:], data=buf.tobytes()), MAX)
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth).mean() < (3 if ext == ".jpg" else 0.01)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF segment (APP1, little-endian TIFF) holding only Orientation."""
    ifd = (1).to_bytes(2, "little") + (0x0112).to_bytes(2, "little") + \
        (3).to_bytes(2, "little") + (1).to_bytes(4, "little") + \
        orientation.to_bytes(2, "little") + bytes(2) + bytes(4)
    exif = b"Exif\0\0" + b"II*\0" + (8).to_bytes(4, "little") + ifd
    return jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:]


def test_compressed_pixels_are_taken_as_sent_whatever_the_exif_orientation(rgb):
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1])
    rotated = _with_exif_orientation(buf.tobytes(), 6)  # "rotate 90 degrees to display"
    out = compressed_to_rgb(CompressedImage(format="jpeg", data=rotated), MAX)
    assert out.shape == rgb.shape


@pytest.mark.parametrize("options", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]])
def test_compressed_size_is_read_from_the_header(options):
    image = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".tiff"):
        assert compressed_size(cv2.imencode(ext, image, options)[1].tobytes()) == (53, 37)
    assert compressed_size(cv2.imencode(".bmp", image)[1].tobytes()) is None


def test_a_huge_compressed_image_is_refused_before_it_is_decoded():
    # A PNG header claiming 100000x100000 pixels: only the header is read to refuse it (the
    # pixels would take 30 GB; OpenCV alone would fail on it as a corrupt payload).
    png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    bomb = png[:16] + (100_000).to_bytes(4, "big") * 2 + png[24:]
    with pytest.raises(EncodingError, match="100000x100000.*max_input_pixels"):
        compressed_to_rgb(CompressedImage(format="png", data=bomb), MAX)


@pytest.mark.parametrize("payload, fmt, match", [
    (b"\x00\x01garbage" * 10, "jpeg", "cannot decode"),
    (cv2.imencode(".bmp", np.zeros((16, 16, 3), np.uint8))[1].tobytes(), "jpeg",
     "not a jpeg, png or tiff"),
    (b"\xff\xd8\xff\xe0\x00\x10" + bytes(20), "jpeg", "header is corrupt"),
    (b"", "jpeg", "empty"),
    (b"abc", "16UC1; compressedDepth png", "compressed depth"),
])
def test_corrupt_compressed_images_raise(payload, fmt, match):
    with pytest.raises(EncodingError, match=match):
        compressed_to_rgb(CompressedImage(format=fmt, data=payload), MAX)


def test_depth_message_is_rep118_and_round_trips():
    depth = np.array([[0.5, np.nan], [2.0, 10.0]], np.float32)
    header = Header(frame_id="cam")
    msg = depth_to_image(depth, header)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("32FC1", 8, "cam")
    np.testing.assert_array_equal(image_to_depth(msg), depth)


def test_rgb_message_round_trips(rgb):
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb, Header()), MAX), rgb)


def test_colorize_is_warm_near_and_black_where_invalid():
    depth = np.array([[0.2, 15.0, np.nan]], np.float32)
    out = colorize_depth(depth, 0.1, 20.0)
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]   # near: red dominates
    assert out[0, 1, 2] > out[0, 1, 0]   # far: blue dominates
    assert out[0, 2].tolist() == [0, 0, 0]
