import numpy as np
import pytest
import torch

from lumde_ros.data.recording import RecordedFrame
from lumde_ros.data.sampling import triplets
from lumde_ros.data.triplets import camera_motions
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


def test_camera_motions_map_target_points_into_the_source_frames():
    poses = torch.from_numpy(np.stack([f.odom_from_camera for f in _frames([0.0, 0.3, 0.5])]))
    motions = camera_motions(poses, torch.tensor([[0, 1, 2]]))[0].numpy()
    point_in_target = np.array([1.0, 0.0, 2.0, 1.0])
    # the target sits 0.3 m further along x than the previous camera, the next 0.2 m beyond
    np.testing.assert_allclose(motions[0] @ point_in_target, [1.3, 0.0, 2.0, 1.0])
    np.testing.assert_allclose(motions[1] @ point_in_target, [0.8, 0.0, 2.0, 1.0])


def test_keyframe_chooser_keeps_by_mode():
    from lumde_ros.data.sampling import KeyframeChooser

    def kept(mode: str, times: list[float], positions: list) -> list[int]:
        chooser = KeyframeChooser(mode, period_s=0.25, baseline_m=0.1)
        return [i for i, (t, p) in enumerate(zip(times, positions)) if chooser.keep(t, p)]

    times = [0.1 * i for i in range(8)]
    moving = [np.array([0.04 * i, 0.0, 0.0]) for i in range(8)]
    assert kept("all", times, moving) == list(range(8))
    assert kept("time", times, moving) == [0, 3, 6]
    assert kept("baseline", times, moving) == [0, 3, 6]  # 0.12 m apart
    still = [np.zeros(3)] * 8
    assert kept("baseline", times, still) == [0]  # a robot standing still records nothing
    # Without odometry (yet), baseline falls back to time, until a keyframe with a position
    # exists (6); from then on distance rules (7 is only 0.04 m further).
    assert kept("baseline", times, [None] * 4 + moving[4:]) == [0, 3, 6]
    assert kept("baseline", times + [0.8, 0.9], [None] * 4 + moving[4:] + [
        np.array([0.30, 0, 0]), np.array([0.36, 0, 0])]) == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="one of all, time, baseline"):
        KeyframeChooser("sometimes", 0.25, 0.1)
