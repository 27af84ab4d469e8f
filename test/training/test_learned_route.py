"""The learned-pose route, for recordings without odometry: the camera motion the images show
supervises the pose network, so it learns which way the camera turned."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bags import copy_bag
from test_teacher import lumde

from lumde_ros.data.image_motion import ImageMotionConfig
from lumde_ros.data.recording import Recording
from lumde_ros.data.triplets import load_triplets
from lumde_ros.evaluation import frame_pairs, pose_yaws, yaw_deg
from lumde_ros.inference import resize_image
from lumde_ros.models import PoseNet, construct
from lumde_ros.training.config import load_section

SIZE = (96, 64)


@pytest.fixture(scope="module")
def turning(tmp_path_factory: pytest.TempPathFactory):
    """A drive turning both ways (seed 3: -2.8 to +4.0 degrees between frames) and the same
    recording without odometry."""
    from lumde_ros.sim.recording import SimulateOptions, simulate
    folder = tmp_path_factory.mktemp("turning")
    bag = folder / "seed-3"
    simulate(SimulateOptions(out=bag, seed=3, frames=60, width=192, height=128),
             progress=False)
    return bag, copy_bag(bag, folder / "no_odometry", {"/odom", "/tf"})


def test_keyframes_without_odometry_have_parallax_and_the_motion_their_images_show(turning):
    """Keyframes are about as far apart as the odometry route's 5 cm, and the motion between
    them agrees with odometry: rotation, direction, and distance against the scene's depth."""
    with_odometry, without = turning
    data = load_triplets([without], *SIZE, "auto", 0.0,
                         motion=load_section("image_motion", ImageMotionConfig))
    assert not data.metric and data.image_motions.shape == (len(data), 2, 4, 4)
    known = data.image_motion_known
    assert known.float().mean() > 0.8
    assert data.recordings[0]["image_motion_known"] == pytest.approx(
        known.float().mean().item(), abs=1e-3)
    with Recording(with_odometry) as recording:
        frames = [(resize_image(f.rgb, *SIZE), f.odom_from_camera) for f in recording.frames()]
    # which recorded frame each kept one is (the kept frames are the resized images)
    index = [next(i for i, (rgb, _) in enumerate(frames)
                  if np.array_equal(rgb, image.permute(1, 2, 0).numpy()))
             for image in data.images]
    assert len(index) < 0.8 * len(frames)
    poses = [frames[i][1] for i in index]
    travelled = [np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(poses, poses[1:])]
    assert 0.03 < np.median(travelled) < 0.1
    with Recording(with_odometry) as recording:
        depths = [np.median(f.depth) for f in recording.frames()]
    yaw_errors, cosines, scales = [], [], []
    for j, (_, target, following) in enumerate(data.triplets.tolist()):
        if known[j, 1]:  # target -> next, against odometry
            truth = np.linalg.inv(poses[following]) @ poses[target]
            seen = data.image_motions[j, 1].numpy()
            yaw_errors.append(abs(yaw_deg(seen) - yaw_deg(truth)))
            length, true_length = np.linalg.norm(seen[:3, 3]), np.linalg.norm(truth[:3, 3])
            cosines.append(seen[:3, 3] @ truth[:3, 3] / length / true_length)
            scales.append(length * depths[index[target]] / true_length)
    # a pair now and then is an outlier (see data/image_motion.py)
    assert np.median(yaw_errors) < 0.3 and np.percentile(yaw_errors, 90) < 1.0
    assert np.median(cosines) > 0.97 and np.percentile(cosines, 10) > 0.8
    # tracks sit on texture, not evenly over the image: their median depth is near, not equal
    # to, the image's
    assert 0.6 < np.median(scales) < 1.6, scales
    assert load_triplets([without], *SIZE, "auto", 0.0).image_motions is None


def test_the_pose_network_learns_turns_either_way_from_the_images(turning, tiny_config,
                                                                  tmp_path):
    with_odometry, without = turning
    out = tmp_path / "run"
    result = lumde("train-teacher", "--bag", str(without), "--out", str(out), "--config",
                   str(tiny_config(run={"batch_size": 4}, data={"pose": "learned"})),
                   "--steps", "300", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pose_route"] == "learned" and "pose" in summary["final_losses"]
    assert 0.5 < summary["image_motion_known"] <= 1.0
    state = torch.load(out / "state.pt", weights_only=False)
    assert state["provenance"]["image_motion"] == state["image_motion"]
    net = construct(PoseNet, state["config"]["pose_model"])
    net.load_state_dict(state["modules"]["pose"])
    truth, predicted = pose_yaws(net, *frame_pairs([with_odometry], SIZE))
    assert truth.min() < -1.5 and truth.max() > 1.5  # the drive turns both ways
    # Without the images' motion the same run reaches slope 0.4, correlation 0.7.
    assert np.corrcoef(truth, predicted)[0, 1] > 0.8
    assert np.polyfit(truth, predicted, 1)[0] > 0.6
    for side in (truth < -1.0, truth > 1.0):  # the right sign on either side
        assert np.sign(predicted[side].mean()) == np.sign(truth[side].mean())
