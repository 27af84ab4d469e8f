"""The floor prior: what tf says of each pixel's depth before the image is looked at. It is
exact where the camera sees the floor and never nearer than what the camera sees below the
horizon; it travels with its target through flips and is left out for a share of targets; a
teacher that takes it trains and distils into a student that takes it, and every engine serves
it from tf the same way."""
from __future__ import annotations

import json

import numpy as np
import torch
from test_teacher import lumde

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.data.recording import Recording
from lumde_ros.data.triplets import load_triplets
from lumde_ros.evaluation import evaluate_recording
from lumde_ros.export import read_onnx_checkpoint
from lumde_ros.geometry import FLOOR_PRIOR_MAX_INV, floor_prior
from lumde_ros.inference import DepthScale, Predictor


def _floor_depth(prior: torch.Tensor) -> np.ndarray:
    """The floor's depth (m) from a prior's first channel; inf above the horizon."""
    inverse = prior[0].numpy() * FLOOR_PRIOR_MAX_INV
    with np.errstate(divide="ignore"):
        return np.where(inverse > 0, 1 / inverse, np.inf)


def test_the_prior_is_the_floor_where_the_camera_sees_it_and_never_nearer(floor_bag):
    with Recording(floor_bag) as recording:
        frames = list(recording.frames())
    on_floor = []
    for frame in frames:
        k = torch.from_numpy(frame.intrinsics.matrix())[None]
        prior = floor_prior(k, torch.from_numpy(frame.floor_from_camera)[None],
                            *frame.depth.shape)[0]
        assert torch.all(prior[1] == 1)
        floor = _floor_depth(prior)
        # below the horizon, nearer than 10 m and not where the prior saturates (0.2 m)
        below = (floor < 10.0) & (floor > 1.01 / FLOOR_PRIOR_MAX_INV) & np.isfinite(frame.depth)
        # nothing lies under the floor: what a downward ray meets is at most the floor
        assert np.all(frame.depth[below] <= floor[below] * 1.02)
        on_floor.append(np.mean(np.abs(frame.depth[below] / floor[below] - 1) < 0.02))
    assert np.median(on_floor) > 0.3, on_floor  # and much of it is the floor itself


def test_an_unknown_pose_gives_an_unknown_prior():
    k = torch.tensor([[[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]]).expand(2, 3, 3)
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[0, 2, 3] = 1.0  # 1 m over the floor, looking along the floor's z: sideways
    poses[1] = float("nan")
    prior = floor_prior(k, poses, 48, 64)
    assert prior.shape == (2, 2, 48, 64)
    assert prior[0, 1].eq(1).all() and prior[1].eq(0).all()


def test_the_prior_is_flipped_with_its_target_and_left_out_for_a_share(floor_bag):
    data = load_triplets([floor_bag], 96, 64, "odometry", 0.0)
    picks = list(range(len(data))) * 8
    plain = data.batch(picks, torch.Generator().manual_seed(1), False, 0.0, False, 0.0)
    flipped = data.batch(picks, torch.Generator().manual_seed(1), True, 0.0, False, 0.0)
    assert plain.prior[:, 1].eq(1).all() and flipped.flipped.any()
    torch.testing.assert_close(flipped.prior[flipped.flipped],
                               plain.prior[flipped.flipped].flip(-1))
    dropped = data.batch(picks, torch.Generator().manual_seed(1), False, 0.0, False, 0.5)
    known = dropped.prior[:, 1].flatten(1).all(1)
    assert 0.2 < known.float().mean() < 0.8
    assert dropped.prior[~known].eq(0).all()
    assert data.batch(picks, torch.Generator(), False, 0.0).prior is None


def test_a_teacher_with_the_prior_is_distilled_into_a_student_that_serves_with_it(
        floor_bag, tiny_config, tmp_path):
    teacher_config = tiny_config(data={"min_baseline_m": 0.0}, model={"floor_prior": True})
    out = lumde("train-teacher", "--bag", str(floor_bag), "--out", str(tmp_path / "run"),
                "--config", str(teacher_config), "--steps", "4", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["finished"]
    teacher = load_checkpoint(tmp_path / "run" / "teacher.pt")
    assert teacher.arch_config["floor_prior"] is True
    assert teacher.state_dict["encoder.stem.0.weight"].shape[1] == 5  # RGB and the prior
    student_config = tiny_config("distill", data={"min_baseline_m": 0.0},
                                 model={"floor_prior": True})
    out = lumde("distill", "--bag", str(floor_bag), "--teacher", str(tmp_path / "run" /
                "teacher.pt"), "--out", str(tmp_path / "student"), "--config",
                str(student_config), "--steps", "4", "--json")
    assert out.returncode == 0, out.stderr
    student_path = tmp_path / "student" / "student.pt"
    student = load_checkpoint(student_path)
    assert student.arch_config["floor_prior"] is True
    assert student.state_dict["stem.0.weight"].shape[1] == 5
    served = evaluate_recording(floor_bag, student_path, 0.1, 10.0, threads=1)
    assert served["floor_prior"] is True
    assert served["frames"] == 8 and np.isfinite(served["unscaled"]["a1"])

    # The prior the predictor makes from tf is the one training saw, and it changes the depth.
    with Recording(floor_bag) as recording:
        frame = next(recording.frames())
    predictor = Predictor(student, threads=1)
    width, height = predictor.width, predictor.height
    expected = floor_prior(torch.from_numpy(frame.intrinsics.resized(width, height).matrix())
                           [None], torch.from_numpy(frame.floor_from_camera)[None],
                           height, width).float().numpy()
    given = predictor.floor_prior(frame.intrinsics, frame.floor_from_camera)
    np.testing.assert_allclose(given, expected, atol=1e-6)
    assert not predictor.floor_prior(frame.intrinsics, None).any()
    unit = DepthScale(1.0, True)
    told = predictor.predict(frame.rgb, unit, intrinsics=frame.intrinsics,
                             floor_from_camera=frame.floor_from_camera)
    assert not np.allclose(told, predictor.predict(frame.rgb, unit))
    # Every engine and an exported graph take it the same way.
    onnx = tmp_path / "student.onnx"
    out = lumde("export", "--model", str(student_path), "--out", str(onnx))
    assert out.returncode == 0, out.stderr
    for engine in (Predictor(student, threads=1, backend="onnxruntime"),
                   Predictor(read_onnx_checkpoint(onnx), threads=1, backend="openvino",
                             onnx_path=onnx)):
        np.testing.assert_allclose(
            engine.predict(frame.rgb, unit, intrinsics=frame.intrinsics,
                           floor_from_camera=frame.floor_from_camera), told, rtol=1e-4)
