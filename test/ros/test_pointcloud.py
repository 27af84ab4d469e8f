import numpy as np
import pytest
from sensor_msgs.msg import PointField
from std_msgs.msg import Header

from lumde_ros.geometry import Intrinsics, backproject
from lumde_ros.ros.pointcloud import CloudBuilder, cloud_to_arrays


def plane_depth(i: Intrinsics, normal, offset) -> np.ndarray:
    """Depth of the plane n.X = offset seen through intrinsics i (analytic)."""
    us, vs = np.meshgrid(np.arange(i.width), np.arange(i.height))
    rays = np.stack([(us - i.cx) / i.fx, (vs - i.cy) / i.fy, np.ones_like(us, float)], -1)
    return (offset / (rays @ np.asarray(normal, float))).astype(np.float32)


@pytest.fixture()
def small() -> Intrinsics:
    return Intrinsics(100.0, 90.0, 31.5, 23.5, 64, 48)


def test_organised_cloud_lies_on_the_plane(small):
    normal, offset = np.array([0.0, -0.5, -1.0]) / np.sqrt(1.25), -2.0
    depth = plane_depth(small, normal, offset)
    depth[5, 7] = np.nan
    msg = CloudBuilder().build(depth, small, Header(frame_id="cam_optical"))
    assert (msg.height, msg.width, msg.is_dense, msg.point_step) == (48, 64, False, 12)
    assert msg.header.frame_id == "cam_optical"
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32)]
    xyz, rgb = cloud_to_arrays(msg)
    assert rgb is None and np.isnan(xyz[5, 7]).all()
    valid = np.isfinite(xyz).all(-1)
    np.testing.assert_allclose(xyz[valid] @ normal, offset, rtol=1e-5)
    np.testing.assert_allclose(xyz[..., 2][valid], depth[valid])


def test_stride_and_colour(small, rgb):
    depth = np.full((48, 64), 2.0, np.float32)
    msg = CloudBuilder().build(depth, small, Header(), stride=4, rgb=rgb)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (12, 16, 16, 256)
    xyz, colours = cloud_to_arrays(msg)
    np.testing.assert_allclose(xyz, backproject(depth, small)[::4, ::4], rtol=1e-6)
    np.testing.assert_array_equal(colours, rgb[::4, ::4])


def test_colour_from_an_image_of_another_size(small):
    big = np.zeros((96, 128, 3), np.uint8)
    big[:, 64:] = (255, 0, 0)
    _, colours = cloud_to_arrays(CloudBuilder().build(np.ones((48, 64), np.float32), small,
                                                      Header(), rgb=big))
    assert colours[:, :32].max() == 0 and (colours[:, 32:, 0] == 255).all()


def test_buffer_is_reused_and_rebuilt_when_the_layout_changes(small, rgb):
    builder = CloudBuilder()
    depth = np.ones((48, 64), np.float32)
    first = builder.build(depth, small, Header())
    second = builder.build(depth * 2, small, Header())
    assert first is second and cloud_to_arrays(second)[0][0, 0, 2] == 2.0
    coloured = builder.build(depth, small, Header(), rgb=rgb)
    assert coloured.point_step == 16 and len(coloured.data) == 48 * 64 * 16
