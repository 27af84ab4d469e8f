import numpy as np

from lumde_ros.data.recording import RecordedFrame
from lumde_ros.data.sampling import camera_motion, triplets
from lumde_ros.geometry import Intrinsics


def _frames(xs: list[float], with_pose: bool = True) -> list[RecordedFrame]:
    intrinsics = Intrinsics(50.0, 50.0, 15.5, 11.5, 32, 24)
    frames = []
    for k, x in enumerate(xs):
        pose = np.eye(4)
        pose[0, 3] = x
        frames.append(RecordedFrame(k, np.zeros((24, 32, 3), np.uint8), intrinsics, None,
                                    pose if with_pose else None))
    return frames


def test_standing_still_gives_no_samples_and_baselines_are_kept():
    xs = [0.0, 0.05, 0.10, 0.10, 0.10, 0.12, 0.15, 0.20]   # stops for a while in the middle
    out = triplets(_frames(xs), min_baseline_m=0.05)
    assert out == [(0, 1, 2), (1, 2, 6), (2, 6, 7)]  # the stop adds nothing


def test_without_poses_direct_neighbours():
    assert triplets(_frames([0, 0, 0, 0], with_pose=False), 0.05) == [(0, 1, 2), (1, 2, 3)]


def test_camera_motion_maps_target_points_into_the_source_frame():
    a, b = _frames([0.0, 0.3])
    point_in_a = np.array([1.0, 0.0, 2.0, 1.0])
    # b sits 0.3 m further along x, so the same world point is 0.3 m less far in x from b
    np.testing.assert_allclose(camera_motion(a, b) @ point_in_a, [0.7, 0.0, 2.0, 1.0])
