"""The fine-tune gate: held-out photometric reprojection judges depth (and with odometry its
metric scale); broken or worse candidates are rejected with their figures. Ground-truth depth
appears here only as a yardstick for the gate itself, never for training."""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch

from lumde_ros.checkpoint import load_checkpoint, save_checkpoint
from lumde_ros.data.recording import Recording
from lumde_ros.data.triplets import TripletData, load_triplets
from lumde_ros.floor import FloorConfig
from lumde_ros.inference import resize_image
from lumde_ros.training.config import load_section
from lumde_ros.training.gate import (RELATIVE_SCALES, floor_agreement, gate, held_out_motions,
                                     model_depths, reprojection_error)

WIDTH, HEIGHT = 96, 64
SSIM = 0.85
FLOOR = load_section("floor", FloorConfig)


def triplets_with_truth(bag) -> tuple[TripletData, np.ndarray]:
    """Consecutive triplets of a simulated recording at the network size (with odometry and
    each frame's pose over the floor), and each target frame's true depth (N, 1, H, W)."""
    images, ks, poses, floors, depths = [], [], [], [], []
    with Recording(bag) as recording:
        for frame in recording.frames():
            images.append(resize_image(frame.rgb, WIDTH, HEIGHT))
            ks.append(frame.intrinsics.resized(WIDTH, HEIGHT).matrix())
            poses.append(frame.odom_from_camera)
            floors.append(frame.floor_from_camera)
            depths.append(cv2.resize(frame.depth, (WIDTH, HEIGHT),
                                     interpolation=cv2.INTER_NEAREST))
    rows = [(i - 1, i, i + 1) for i in range(1, len(images) - 1)]
    data = TripletData(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
                       torch.from_numpy(np.stack(ks)).float(),
                       torch.from_numpy(np.stack(poses)), torch.tensor(rows),
                       [{"bag": str(bag)}], floors=torch.from_numpy(np.stack(floors)))
    truth = np.stack([depths[i] for _, i, _ in rows])[:, None].astype(np.float32)
    assert np.isfinite(truth).all()
    return data, truth


@pytest.fixture(scope="module")
def with_truth(sim_bag) -> tuple[TripletData, np.ndarray]:
    """The simulated room's triplets and true depths (triplets_with_truth)."""
    return triplets_with_truth(sim_bag)


def test_with_odometry_the_true_metric_depth_explains_the_frames_best(with_truth):
    data, truth = with_truth
    motions = held_out_motions(data, None)

    def error(depth: np.ndarray) -> float:
        return reprojection_error(depth, data, motions, SSIM, (1.0,))[0]

    right = error(truth)
    assert right < error(truth * 2) and right < error(truth / 2)
    assert right < error(np.full_like(truth, float(np.median(truth))))


def test_without_a_metric_motion_each_model_is_judged_at_its_best_scale(with_truth):
    data, truth = with_truth
    motions = held_out_motions(data, None)
    exact, _ = reprojection_error(truth, data, motions, SSIM, (1.0,))
    error, scale = reprojection_error(truth * 4, data, motions, SSIM, RELATIVE_SCALES)
    assert scale == pytest.approx(0.25)
    assert error == pytest.approx(exact, rel=1e-5)


def test_non_finite_or_non_positive_depth_fails(with_truth):
    data, truth = with_truth
    motions = held_out_motions(data, None)
    for broken in (np.where(np.arange(truth.size).reshape(truth.shape) == 7, np.nan, truth),
                   truth * 0):
        assert math.isnan(reprojection_error(broken, data, motions, SSIM, (1.0,))[0])


def scaled_copy(path, factor: float, out) -> str:
    """The same network serving depth `factor` times farther."""
    checkpoint = load_checkpoint(path)
    return str(save_checkpoint(dataclasses.replace(
        checkpoint, depth_scale=checkpoint.depth_scale * factor), out))


def test_gate_accepts_an_equal_model_and_rejects_a_worse_or_broken_one(
        with_truth, student_path, tmp_path):
    data, truth = with_truth
    # A serving model at the scene's true median depth (the untrained student predicts
    # nearly constant depth), and the same one served 8x too far.
    served, checkpoint = model_depths(student_path, data)
    assert not checkpoint.metric  # the untrained student's depth is relative
    calibrated = scaled_copy(student_path, float(np.median(truth) / np.median(served)),
                             tmp_path / "calibrated.pt")
    same = gate(calibrated, calibrated, data, None, 0.02, SSIM, FLOOR)
    assert same["accepted"], same
    assert same["candidate"]["photometric_error"] == same["serving"]["photometric_error"]
    assert same["motion"] == "odometry" and same["triplets"] == len(data)

    too_far = gate(scaled_copy(calibrated, 8.0, tmp_path / "far.pt"), calibrated, data, None,
                   0.02, SSIM, FLOOR)
    assert not too_far["accepted"], too_far
    assert too_far["candidate"]["photometric_error"] > 1.02 * too_far["serving"][
        "photometric_error"]
    assert "worse than the serving model" in too_far["reason"]

    checkpoint = load_checkpoint(calibrated)
    nan = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
           for k, v in checkpoint.state_dict.items()}
    broken = save_checkpoint(dataclasses.replace(checkpoint, state_dict=nan),
                             tmp_path / "broken.pt")
    verdict = gate(broken, calibrated, data, None, 0.02, SSIM, FLOOR)
    assert not verdict["accepted"] and "cannot serve" in verdict["reason"]
    assert "NaN or Inf" in verdict["candidate"]["error"]
    assert math.isfinite(verdict["serving"]["photometric_error"])

    # However well it scores, relative depth never replaces metres.
    metric = save_checkpoint(dataclasses.replace(checkpoint, metric=True), tmp_path / "m.pt")
    relative = gate(calibrated, metric, data, None, 0.02, SSIM, FLOOR)
    assert not relative["accepted"] and "would replace metric depth" in relative["reason"]
    assert relative["serving"]["metric"] and not relative["candidate"]["metric"]


def test_held_out_frames_are_the_end_of_each_recording_and_never_trained_on(sim_bag):
    train = load_triplets([sim_bag], WIDTH, HEIGHT, "odometry", 0.0, holdout=0.5)
    held = load_triplets([sim_bag], WIDTH, HEIGHT, "odometry", 0.0, holdout=0.5, held_out=True)
    everything = load_triplets([sim_bag], WIDTH, HEIGHT, "odometry", 0.0)
    assert len(train) and len(held)
    # Each part indexes its own frames: compare the frames themselves.
    trained = {bytes(train.images[i].numpy()) for i in train.triplets.flatten().tolist()}
    judged = {bytes(held.images[i].numpy()) for i in held.triplets.flatten().tolist()}
    assert not trained & judged
    assert len(train.images) + len(held.images) == len(everything.images)
    assert held.images[-1].equal(everything.images[-1])


def test_the_floor_measures_how_far_off_a_depth_s_metres_are(floor_bag):
    data, truth = triplets_with_truth(floor_bag)
    far = np.where(truth < 10.0, truth, np.nan)  # the sky-free room: beyond 10 m is no surface
    right = floor_agreement(far, data, FLOOR)
    assert right["floor_fits"] == len(data) and right["floor_scale"] == pytest.approx(1, rel=0.03)
    assert floor_agreement(far * 2, data, FLOOR)["floor_scale"] == pytest.approx(0.5, rel=0.03)
    unplaced = dataclasses.replace(data, floors=torch.full_like(data.floors, math.nan))
    none = floor_agreement(far, unplaced, FLOOR)
    assert none["floor_scale"] is None and none["floor_fits"] == 0
    assert "tf places the camera over the floor in no held-out frame" in none["floor_reason"]
    # One or two frames' floor say too little to refuse a model's metres on.
    few = torch.full_like(data.floors, math.nan)
    targets = data.triplets[:FLOOR.gate_min_fits - 1, 1]
    few[targets] = data.floors[targets]
    scant = floor_agreement(far, dataclasses.replace(data, floors=few), FLOOR)
    assert scant["floor_scale"] is None and scant["floor_fits"] == FLOOR.gate_min_fits - 1
    assert f"{FLOOR.gate_min_fits} needed" in scant["floor_reason"]
