import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

from lumde_ros.errors import IntrinsicsError
from lumde_ros.geometry import Intrinsics
from lumde_ros.ros.camera_info import (camera_intrinsics, fit_to_image, pinhole_camera_info,
                                       unmodelled_distortion)


def _info(fx=500.0, fy=480.0, cx=319.5, cy=241.0, w=640, h=480, p=True, **kw) -> CameraInfo:
    k = [fx, 0, cx, 0, fy, cy, 0, 0, 1]
    pm = [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0] if p else [0.0] * 12
    return CameraInfo(width=w, height=h, k=k, p=pm, **kw)


def test_uses_p_then_k():
    assert camera_intrinsics(_info()).fx == 500.0
    info = _info(p=False)
    assert camera_intrinsics(info) == Intrinsics(500.0, 480.0, 319.5, 241.0, 640, 480)
    info = _info()
    info.p[0] = 400.0
    assert camera_intrinsics(info).fx == 400.0


def test_binning_and_roi_follow_rep104():
    roi = RegionOfInterest(x_offset=100, y_offset=40, width=400, height=300)
    out = camera_intrinsics(_info(binning_x=2, binning_y=2, roi=roi))
    expected = Intrinsics(500.0, 480.0, 219.5, 201.0, 400, 300).resized(200, 150)
    assert out == expected
    assert (out.width, out.height) == (200, 150) and out.fx == 250.0


@pytest.mark.parametrize("bad, match", [
    (dict(fx=0.0), "K gives fx=0,"), (dict(fy=-1.0), "fy=-1,"), (dict(cx=float("nan")), "cx=nan"),
    (dict(cx=float("inf")), "cx=inf"), (dict(w=0), "size is 0x480"),
    (dict(fx=1e-30), "horizontal field of view of 180 degrees"),
    (dict(fy=1e30), "vertical field of view of 2.75e-26 degrees"),
    (dict(roi=RegionOfInterest(x_offset=5000, width=640, height=480)), "ROI 640x480 at \\(5000")])
def test_invalid_camera_info_is_refused_naming_the_bad_value(bad, match):
    with pytest.raises(IntrinsicsError, match=match):
        camera_intrinsics(_info(**bad))


def test_a_nan_projection_falls_back_to_k():
    info = _info()
    info.p = [float("nan")] * 12
    assert camera_intrinsics(info) == Intrinsics(500.0, 480.0, 319.5, 241.0, 640, 480)


def test_distortion_is_named_only_on_an_unrectified_stream():
    distorted = _info(d=[-0.3, 0.1, 0.001, 0.002, -0.02], distortion_model="plumb_bob")
    for topic in ("/cam/image_raw", "/cam/image_raw/compressed"):
        assert "plumb_bob distortion" in unmodelled_distortion(distorted, topic)
    # A rectified stream shares the raw camera's CameraInfo, D included: nothing to say.
    assert unmodelled_distortion(distorted, "/cam/image_rect") is None
    assert unmodelled_distortion(_info(d=[0.0] * 5), "/cam/image_raw") is None


def test_fit_same_size_scaled_or_refused():
    i = Intrinsics(500.0, 480.0, 319.5, 241.0, 640, 480)
    assert fit_to_image(i, 640, 480) == fit_to_image(i, 640, 480)
    assert fit_to_image(i, 640, 480).warning is None
    half = fit_to_image(i, 320, 240)
    assert half.intrinsics == i.resized(320, 240) and "scaling" in half.warning
    other = fit_to_image(i, 640, 360)
    assert other.intrinsics is None and "aspect ratio" in other.warning


def test_pinhole_camera_info_carries_the_intrinsics():
    i = Intrinsics(250.0, 240.0, 159.75, 120.25, 320, 240)
    msg = pinhole_camera_info(i, Header(frame_id="cam"))
    assert camera_intrinsics(msg) == i
    assert (msg.width, msg.height, msg.header.frame_id) == (320, 240, "cam")
    assert np.allclose(np.array(msg.k).reshape(3, 3), i.matrix())
    assert list(msg.d) == [0.0] * 5 and msg.distortion_model == "plumb_bob"
