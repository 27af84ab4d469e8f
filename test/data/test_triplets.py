"""Training triplets: resized frames and intrinsics, the pose route, mirrored augmentation,
depth hints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from bags import copy_bag

from lumde_ros.data import Recording
from lumde_ros.data.hints import HintConfig
from lumde_ros.data.triplets import camera_motions, load_triplets, mirrored
from lumde_ros.errors import BagError, TrainingError
from lumde_ros.geometry import warp
from lumde_ros.losses.photometric import photometric_error
from lumde_ros.training.config import load_section


@pytest.fixture(scope="module")
def bag_without_odometry(sim_bag, tmp_path_factory):
    return copy_bag(sim_bag, tmp_path_factory.mktemp("noodom") / "bag", {"/odom", "/tf"})


def test_frames_are_resized_with_their_intrinsics_and_odometry_gives_metric_motion(sim_bag):
    data = load_triplets([sim_bag], 64, 48, "auto", min_baseline_m=0.0)
    with Recording(sim_bag) as recording:
        first = next(recording.frames())
    assert data.metric and data.images.shape == (10, 3, 48, 64) and len(data) == 8
    assert data.recordings[0]["pose_source"] == "/odom" and not data.why_relative
    np.testing.assert_allclose(data.k[0].numpy(), first.intrinsics.resized(64, 48).matrix(),
                               rtol=1e-6)
    batch = data.batch([0, 1], torch.Generator(), flip=False, color_jitter=0.0)
    assert batch.target.shape == (2, 3, 48, 64) and batch.motions.shape == (2, 2, 4, 4)
    torch.testing.assert_close(batch.target, data.images[[1, 2]].float() / 255)
    # motion target -> previous frame from the recorded poses
    expected = np.linalg.inv(data.poses[0].numpy()) @ data.poses[1].numpy()
    np.testing.assert_allclose(batch.motions[0, 0].numpy(), expected, atol=1e-6)


def test_channel_shuffle_gives_a_triplet_s_frames_one_colour_order(sim_bag):
    """Photometric consistency needs the same order in all three frames; across triplets
    the orders differ."""
    data = load_triplets([sim_bag], 64, 48, "odometry", min_baseline_m=0.0)
    rows = list(range(len(data)))
    plain = data.batch(rows, torch.Generator(), flip=False, color_jitter=0.0)
    shuffled = data.batch(rows, torch.Generator().manual_seed(3), flip=False,
                          color_jitter=0.0, channel_shuffle=True)
    orders = set()
    for i in rows:
        views = [(plain.target[i], shuffled.target[i]),
                 *((p[i], s[i]) for p, s in zip(plain.sources, shuffled.sources))]
        found = [tuple(next(c for c in range(3) if torch.equal(s[j], p[c])) for j in range(3))
                 for p, s in views]
        assert len(set(found)) == 1 and sorted(found[0]) == [0, 1, 2]
        orders.add(found[0])
    assert len(orders) > 1


def test_a_recording_without_odometry_trains_the_learned_route_only(bag_without_odometry):
    data = load_triplets([bag_without_odometry], 64, 48, "auto", 0.05)
    assert not data.metric and data.batch([0], torch.Generator(), True, 0.2).motions is None
    with pytest.raises(TrainingError, match="no nav_msgs/msg/Odometry"):
        load_triplets([bag_without_odometry], 64, 48, "odometry", 0.05)


def test_the_learned_route_can_be_forced_on_a_recording_with_odometry(sim_bag):
    assert not load_triplets([sim_bag], 64, 48, "learned", 0.05).metric


def test_unusable_recordings_are_refused_with_the_reason(sim_bag, tmp_path):
    with pytest.raises(TrainingError, match="no training triplet"):
        load_triplets([sim_bag], 64, 48, "odometry", min_baseline_m=50.0)
    no_images = copy_bag(sim_bag, tmp_path / "noimg", {"/camera/image_raw"})
    with pytest.raises(BagError, match="camera image"):
        load_triplets([no_images], 64, 48, "auto", 0.05)
    with pytest.raises(TrainingError, match="pose route"):
        load_triplets([sim_bag], 64, 48, "sideways", 0.05)


def test_mirrored_views_keep_view_synthesis_exact(sim_bag):
    """Warping with ground-truth depth explains the motion equally well after mirroring the
    images, the camera matrix and the motion together (a wrong mirror breaks this)."""
    with Recording(sim_bag) as recording:
        a, b = list(recording.frames())[3:5]

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.float32)

    images = tensor(np.stack([a.rgb, b.rgb])).permute(0, 3, 1, 2) / 255
    depth = tensor(a.depth)[None, None]
    k = tensor(a.intrinsics.matrix())[None]
    poses = torch.from_numpy(np.stack([a.odom_from_camera, b.odom_from_camera]))
    motion = camera_motions(poses, torch.tensor([[1, 0, 1]]))[:, :1].float()

    def error(images, depth, k, motion):
        warped, mask = warp(images[1:], depth, motion[:, 0], k)
        return photometric_error(warped, images[:1], 0.85)[mask.bool()].mean()

    plain = error(images, depth, k, motion)
    m_images, m_k, m_motion = mirrored(images, k, motion)
    flipped = error(m_images, depth.flip(-1), m_k, m_motion)
    wrong = error(m_images, depth.flip(-1), k, motion)
    assert abs(flipped - plain) < 0.1 * plain and wrong > 1.5 * plain


def test_hints_are_found_for_triplet_targets_kept_and_mirrored_with_their_frame(
        sim_bag, bag_without_odometry, tmp_path):
    config = load_section("hints", HintConfig)
    said = []
    data = load_triplets([sim_bag], 128, 96, "odometry", 0.0, hints=config,
                         hint_cache=tmp_path, say=said.append)
    assert data.hints.shape == (10, 1, 96, 128)
    targets = sorted(set(data.triplets[:, 1].tolist()))
    others = [i for i in range(10) if i not in targets]
    assert (data.hints[others] == 0).all() and (data.hints[targets] > 0).any()
    assert len(list(tmp_path.glob("*.pt"))) == 1 and any("finding" in s for s in said)

    said.clear()  # found again from the kept file, identical
    again = load_triplets([sim_bag], 128, 96, "odometry", 0.0, hints=config,
                          hint_cache=tmp_path, say=said.append)
    assert torch.equal(again.hints, data.hints) and said == []

    generator = torch.Generator().manual_seed(3)
    batch = data.batch(range(len(data)), generator, flip=True, color_jitter=0.0)
    rows = data.triplets[:, 1]
    plain = data.images[rows].float() / 255
    flipped = [i for i in range(len(rows)) if torch.equal(batch.target[i], plain[i].flip(-1))]
    assert 0 < len(flipped) < len(rows)
    for i in range(len(rows)):
        hint = data.hints[rows[i]]
        assert torch.equal(batch.hints[i], hint.flip(-1) if i in flipped else hint)

    # the learned-pose route has no metric motion to find hints with
    assert load_triplets([bag_without_odometry], 64, 48, "auto", 0.0, hints=config).hints is None
