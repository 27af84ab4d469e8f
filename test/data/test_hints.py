"""Depth hints: the plane sweep finds a known plane's depth, skips frames with no baseline,
and on a simulated drive (images and odometry only; or images alone, in units of the median
depth) hints depth far better than the constant baseline on the same pixels. Ground truth
is read here only to score the hints."""
from __future__ import annotations

import math

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from bags import copy_bag

from lumde_ros.data.hints import HintConfig, choose_views, recording_hints, sweep
from lumde_ros.data.image_motion import ImageMotionConfig
from lumde_ros.data.recording import Recording
from lumde_ros.data.triplets import load_triplets
from lumde_ros.geometry import pose_matrix, quaternion_from_rpy, warp
from lumde_ros.inference import resize_image
from lumde_ros.sim.recording import SimulateOptions, simulate
from lumde_ros.training.config import load_section

CONFIG = load_section("hints", HintConfig)


def _camera(x: float, z: float, yaw_deg: float = 0.0) -> np.ndarray:
    """Camera pose in odometry: at (x, 0, z) in the optical frame, turned about its y axis."""
    return pose_matrix(np.array([x, 0.0, z]),
                       quaternion_from_rpy(0.0, math.radians(yaw_deg), 0.0))


def test_views_need_baseline_on_either_side_and_limit_the_turn():
    driving = torch.from_numpy(np.stack([_camera(0.0, 0.0625 * i) for i in range(20)]))
    assert choose_views(driving, 10, CONFIG) == [8, 5, 12, 15]  # 0.1 m and 0.3 m each way
    standing = torch.from_numpy(np.stack([_camera(0.0, 0.0)] * 20))
    assert choose_views(standing, 10, CONFIG) == []
    spinning = torch.from_numpy(np.stack([_camera(0.0, 0.0, 10.0 * i) for i in range(20)]))
    assert choose_views(spinning, 10, CONFIG) == []
    turning = torch.from_numpy(np.stack([_camera(0.0, 0.125 * i, 20.0 * i) for i in range(20)]))
    assert choose_views(turning, 10, CONFIG) == [9, 11]  # the next ones turned past 30 degrees


def test_sweep_finds_the_depth_of_a_textured_plane():
    generator = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 3, 24, 32, generator=generator)
    target = torch.nn.functional.interpolate(texture, (96, 128), mode="bilinear")[0]
    k = torch.tensor([[90.0, 0.0, 63.5], [0.0, 90.0, 47.5], [0.0, 0.0, 1.0]])
    # The views are the plane at 2.5 m seen from cameras moved sideways and forwards: warping
    # the target by each motion's inverse makes what that camera sees of the plane.
    motions = torch.stack([torch.from_numpy(np.linalg.inv(_camera(x, z))).float()
                           for x, z in ((0.15, 0.0), (-0.2, 0.1), (0.1, -0.3))])
    depth = 2.5
    views = []
    for motion in motions:
        # A view camera at c (motion target -> view: p - c) sees the plane z = depth at its
        # own depth depth - c_z, so warping the target with the view -> target motion at that
        # depth renders the view.
        view_depth = torch.full((1, 1, 96, 128), depth + float(motion[2, 3]))
        views.append(warp(target[None], view_depth, torch.linalg.inv(motion)[None],
                          k[None])[0][0])
    hint = sweep(target, torch.stack(views), motions, k, CONFIG)[0]
    inner = hint[12:-12, 12:-12]
    assert (inner > 0).float().mean() > 0.8
    assert ((inner[inner > 0] / depth - 1).abs() < 0.03).float().mean() > 0.9


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bag = tmp_path_factory.mktemp("hints") / "drive"
    simulate(SimulateOptions(out=bag, seed=5, frames=40, width=256, height=192), progress=False)
    return bag


def _frames(bag: Path) -> tuple[list, list, list, list]:
    """Images, camera matrices, poses and ground-truth depth at 128 x 96."""
    rgb, ks, poses, truth = [], [], [], []
    with Recording(bag, ground_truth=True) as recording:
        for frame in recording.frames():
            rgb.append(resize_image(frame.rgb, 128, 96))
            ks.append(frame.intrinsics.resized(128, 96).matrix())
            poses.append(frame.odom_from_camera)
            truth.append(cv2.resize(frame.depth, (128, 96), interpolation=cv2.INTER_NEAREST))
    return rgb, ks, poses, truth


def test_hints_of_a_simulated_drive_beat_the_constant_baseline(drive):
    rgb, ks, poses, truth = _frames(drive)
    hints = recording_hints(torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2),
                            torch.from_numpy(np.stack(ks)), torch.from_numpy(np.stack(poses)),
                            CONFIG)[:, 0].numpy()
    gt = np.stack(truth)
    valid = np.isfinite(gt) & (gt > 0.1) & (gt < 10.0)
    hinted = valid & (hints > 0)
    assert hinted.sum() > 0.1 * valid.sum()
    hint_ratio = np.maximum(hints[hinted] / gt[hinted], gt[hinted] / hints[hinted])
    medians = np.array([np.median(g[v]) for g, v in zip(gt, valid)])[:, None, None]
    constant_ratio = np.maximum(medians / gt, gt / medians)[hinted]
    assert (hint_ratio < 1.25).mean() > 0.85
    assert (hint_ratio < 1.25).mean() > (constant_ratio < 1.25).mean() + 0.3


def test_without_odometry_hints_in_median_depths_beat_the_constant_baseline(drive, tmp_path):
    """On the learned route the sweep runs through the keyframes' image motion: the hints are
    in units of each frame's median depth, so only their shape is scored, scaled per frame to
    the truth (the constant baseline is then exactly the median)."""
    without = copy_bag(drive, tmp_path / "no_odometry", {"/odom", "/tf"})
    data = load_triplets([without], 128, 96, "learned", 0.0, hints=CONFIG,
                         hint_cache=tmp_path / "hints",
                         motion=load_section("image_motion", ImageMotionConfig))
    rgb, _, _, truth = _frames(drive)
    hint_ratios, constant_ratios, units = [], [], []
    for target in sorted(set(data.triplets[:, 1].tolist())):
        image = data.images[target].permute(1, 2, 0).numpy()
        gt = truth[next(i for i, seen in enumerate(rgb) if np.array_equal(seen, image))]
        hint = data.hints[target, 0].numpy()
        valid = np.isfinite(gt) & (gt > 0.1) & (gt < 10.0)
        hinted = valid & (hint > 0)
        if hinted.sum() < 50:
            continue
        scale, median = np.median(gt[hinted] / hint[hinted]), np.median(gt[valid])
        units.append(scale / median)
        scaled = hint[hinted] * scale
        hint_ratios.append(np.maximum(scaled / gt[hinted], gt[hinted] / scaled))
        constant_ratios.append(np.maximum(median / gt[hinted], gt[hinted] / median))
    assert len(units) > 0.3 * len(set(data.triplets[:, 1].tolist()))  # the ends lack views
    hint_ratio, constant_ratio = np.concatenate(hint_ratios), np.concatenate(constant_ratios)
    assert (hint_ratio < 1.25).mean() > (constant_ratio < 1.25).mean() + 0.2
    # the unit is the median depth of the tracked points: near the image's own median
    assert 0.6 < np.median(units) < 1.6, units
