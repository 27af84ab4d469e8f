"""Inputs found in review that used to escape as non-LumdeError exceptions or misbehave."""
from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import CameraInfo, Image

from lumde_ros.checkpoint import untrained_student
from lumde_ros.data import Recording
from lumde_ros.errors import EncodingError, IntrinsicsError, ModelLoadError
from lumde_ros.inference import network_size
from lumde_ros.ros.camera_info import camera_intrinsics
from lumde_ros.ros.image import colorize_depth, image_to_depth, image_to_rgb
from lumde_ros.sim.recording import TYPESTORE, _camera_info, _image
from lumde_ros.sim.scene import camera_intrinsics as sim_intrinsics


def test_binning_larger_than_the_image_is_refused():
    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1],
                      binning_x=1, binning_y=1000)
    with pytest.raises(IntrinsicsError, match="binning"):
        camera_intrinsics(info)


def test_odd_width_yuv_is_an_encoding_error():
    msg = Image(width=641, height=16, encoding="yuv422", step=1282, data=bytes(1282 * 16))
    with pytest.raises(EncodingError, match="even"):
        image_to_rgb(msg, 1 << 24)


def test_16uc1_millimetre_depth_reads_as_metres_with_nan_for_zero():
    mm = np.array([[0, 1500], [250, 65535]], np.uint16)
    msg = Image(width=2, height=2, encoding="16UC1", step=4, data=mm.tobytes())
    np.testing.assert_allclose(image_to_depth(msg), [[np.nan, 1.5], [0.25, 65.535]], rtol=1e-6)


def test_colour_map_with_a_zero_near_limit_is_not_flat():
    depth = np.array([[0.5, 2.0, 8.0]], np.float32)
    out = colorize_depth(depth, 0.0, 10.0)
    assert len({tuple(px) for px in out[0]}) == 3


def test_a_checkpoint_size_that_does_not_fit_the_architecture_is_refused():
    ckpt = untrained_student(input_width=330, input_height=250)
    with pytest.raises(ModelLoadError, match="multiples of 32"):
        network_size(ckpt, 0, 0)


def test_images_before_the_first_camera_info_are_skipped(tmp_path):
    path = tmp_path / "order"
    intrinsics = sim_intrinsics(32, 24, 70.0)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        info = writer.add_connection("/c/camera_info", "sensor_msgs/msg/CameraInfo",
                                     typestore=TYPESTORE)
        image = writer.add_connection("/c/image", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        for k in range(3):
            stamp = (k + 1) * 10**8
            writer.write(image, stamp, TYPESTORE.serialize_cdr(
                _image(stamp, "c", np.zeros((24, 32, 3), np.uint8), "rgb8"), image.msgtype))
            writer.write(info, stamp + 1000, TYPESTORE.serialize_cdr(
                _camera_info(stamp, "c", intrinsics), info.msgtype))
    with Recording(path) as rec:
        assert [f.stamp_ns for f in rec.frames()] == [2 * 10**8, 3 * 10**8]
