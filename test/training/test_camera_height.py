"""Metres without odometry: tf's static mount alone places the camera over the floor, the
floor fitted in depth that is right only up to scale recovers the scale, a scale that does
not hold over the frames is refused with the reason, and a learned-route run marks its
checkpoint metric only when the scale was found."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml
from bags import copy_bag
from test_teacher import lumde

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.data.recording import Recording
from lumde_ros.floor import FloorConfig, calibrate
from lumde_ros.training.config import load_section

CONFIG = dataclasses.replace(load_section("floor", FloorConfig), calibration_min_fits=5)


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory):
    """A drive over a visible floor (seed 3) without odometry: only /tf_static's mount
    (base_link -> camera_link -> camera_optical_frame) says where the camera is; and the
    simulator's camera height."""
    from lumde_ros.sim.recording import SimulateOptions, simulate
    folder = tmp_path_factory.mktemp("mounted")
    summary = simulate(SimulateOptions(out=folder / "seed-3", seed=3, frames=8, width=160,
                                       height=120, odometry=False), progress=False)
    return folder / "seed-3", summary["camera_height_m"]


def _truth(bag, divide_by: list[float]) -> list[tuple]:
    """(ground truth / divide_by[k % len], intrinsics, floor_from_camera) per frame."""
    with Recording(bag) as recording:
        return [(np.where(f.depth < 10.0, f.depth, np.nan) / divide_by[k % len(divide_by)],
                 f.intrinsics, f.floor_from_camera) for k, f in enumerate(recording.frames())]


def test_the_static_mount_alone_places_the_camera_over_the_floor(mounted):
    bag, height_m = mounted
    with Recording(bag) as recording:
        frames = list(recording.frames())
    assert len(frames) == 8 and all(f.odom_from_camera is None for f in frames)
    heights = [f.floor_from_camera[2, 3] for f in frames]
    assert heights == pytest.approx([height_m] * 8, abs=0.02)
    looking = frames[0].floor_from_camera[:3, 2]  # the optical axis, roughly level
    assert abs(looking[2]) < 0.5


def test_the_floor_recovers_a_known_scale_and_refuses_one_that_does_not_hold(mounted):
    found = calibrate(_truth(mounted[0], [2.5]), CONFIG)
    assert found.scale == pytest.approx(2.5, rel=0.02) and found.reason == ""
    assert found.fits == 8 and found.refused == 0 and found.spread < 0.05
    wobbling = calibrate(_truth(mounted[0], [2.0, 4.0]), CONFIG)
    assert wobbling.scale is None and "varies by" in wobbling.reason
    # a wall facing the camera everywhere: no floor in any frame
    walls = [(np.full_like(d, 3.0), k, pose) for d, k, pose in _truth(mounted[0], [1.0])]
    refused = calibrate(walls, CONFIG)
    assert refused.scale is None and refused.refused == 8
    assert refused.reason.startswith("the floor was found in 0 of 8 frames, 5 needed")


def test_a_camera_tf_does_not_place_over_the_floor_is_refused(mounted):
    """Hand-held recordings have no mount: the camera's frame is its own base, at height 0."""
    frames = [(d, k, np.eye(4)) for d, k, _ in _truth(mounted[0], [1.0])]
    found = calibrate(frames, CONFIG)
    assert found.scale is None and "tf does not place it over the floor" in found.reason


def test_a_learned_route_run_is_metric_only_when_the_floor_gave_its_scale(
        mounted, tiny_config, tmp_path):
    """A tiny run's depth has no floor yet: the run says why and stays relative. With the
    scale required of fewer frames than it fits (a setting), the same check runs and reports
    what it fitted either way; the checkpoint's metric mark always follows the result."""
    out = lumde("train-teacher", "--bag", str(mounted[0]), "--out", str(tmp_path / "run"),
                "--config", str(tiny_config(data={"min_baseline_m": 0.0})), "--steps", "6",
                "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    found = summary["camera_height"]
    assert summary["pose_route"] == "learned" and found["fits"] == 8
    checkpoint = load_checkpoint(tmp_path / "run" / "teacher.pt")
    assert checkpoint.metric is summary["metric"] is (found["metres_per_unit"] is not None)
    if checkpoint.metric:
        assert checkpoint.scale_source == "camera_height"
        assert checkpoint.depth_scale == found["metres_per_unit"]
    else:
        assert checkpoint.scale_source == "relative" and found["reason"]
    off = tmp_path / "off.yaml"
    off.write_text(yaml.safe_dump({**yaml.safe_load(tiny_config().read_text()),
                                   "floor": {"calibration_frames": 0}}))
    out = lumde("train-teacher", "--bag", str(mounted[0]), "--out", str(tmp_path / "off"),
                "--config", str(off), "--steps", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert "camera_height" not in json.loads(out.stdout)


def test_eval_s_camera_height_line_needs_tf_not_odometry(mounted, tmp_path):
    from lumde_ros.evaluation import CAMERA_HEIGHT, evaluate_recording
    assert CAMERA_HEIGHT in evaluate_recording(mounted[0], None, 0.1, 10.0, threads=1)
    bare = copy_bag(mounted[0], tmp_path / "bare", {"/tf_static"})
    assert CAMERA_HEIGHT not in evaluate_recording(bare, None, 0.1, 10.0, threads=1)


def test_no_frame_over_the_floor_and_a_model_that_cannot_serve_leave_it_relative(
        mounted, tmp_path):
    """What the trainer node records without tf2_msgs places no frame over the floor; a
    diverged run's weights are not finite: either way the run stays relative, saying why,
    and the gate judges what it left."""
    import dataclasses as dc

    import torch

    from lumde_ros.checkpoint import save_checkpoint, untrained_student
    from lumde_ros.training.camera_height import scale_from_camera_height
    from lumde_ros.training.config import TeacherConfig

    assert calibrate([], CONFIG).reason.startswith("tf places the camera over the floor in no")
    data = load_section("teacher", TeacherConfig).data
    student = untrained_student()
    broken = dc.replace(student, state_dict={
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in student.state_dict.items()})
    path = save_checkpoint(broken, tmp_path / "diverged.pt")
    before = path.read_bytes()
    found = scale_from_camera_height(path, [mounted[0]], data, CONFIG, threads=1)
    assert found["metres_per_unit"] is None and found["spread"] is None
    assert found["reason"].startswith("the model cannot serve") and "NaN" in found["reason"]
    assert path.read_bytes() == before
