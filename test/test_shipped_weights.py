"""The weights the package ships: made by scripts/train_default_models.py from training scenes
only, served by default, metric, far better than an untrained network and better than the
constant baseline on a scene of the evaluation split (a layout, objects and textures they
never saw)."""
from __future__ import annotations

import dataclasses
import math

import pytest

from lumde_ros.checkpoint import load_checkpoint, save_checkpoint, untrained_student
from lumde_ros.data.triplets import load_triplets
from lumde_ros.evaluation import evaluate_recording
from lumde_ros.floor import FloorConfig
from lumde_ros.inference import default_model, shipped_weights
from lumde_ros.sim.recording import EVAL_SEED_START, SimulateOptions, simulate
from lumde_ros.training.config import load_section
from lumde_ros.training.gate import gate

# delta1 points the shipped student must be ahead of an untrained one and of the constant
# baseline on that hall (it measures 0.69 median-scaled and 0.66 in metres; the constant,
# which knows each image's true median, 0.23).
MARGIN = 0.1
# How far off the unit a test gives a checkpoint whose metres the floor must find again.
WRONG_SCALE = 2.5
FLOOR = load_section("floor", FloorConfig)


@pytest.fixture(scope="module")
def held_out_scene(tmp_path_factory: pytest.TempPathFactory):
    """The demo's held-out hall (chairs, benches, cylinders; fabric, photo and stripe
    textures), whole: over its first 16 frames a constant scores about as well as any model."""
    out = tmp_path_factory.mktemp("held-out") / "hall"
    simulate(SimulateOptions(out=out, seed=EVAL_SEED_START + 6, frames=60, layout="hall"),
             progress=False)
    return out


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_shipped_weights_say_how_they_were_made(role):
    checkpoint = load_checkpoint(shipped_weights(role))
    assert checkpoint.arch == role and checkpoint.metric and checkpoint.trained
    provenance = checkpoint.provenance
    assert "scripts/train_default_models.py" in provenance["shipped_by"]
    assert provenance["seed"] == 0 and provenance["pose_route"] == "odometry"
    assert provenance["storage"] in ("float16", "float32") and provenance["steps"] > 0
    seeds = [int(r["bag"].rsplit("-", 1)[1]) for r in provenance["recordings"]]
    assert seeds and max(seeds) < EVAL_SEED_START  # never an evaluation scene
    limit_mb = 2 if role == "student" else 40
    assert shipped_weights(role).stat().st_size < limit_mb * 1e6


def test_the_shipped_student_serves_by_default_and_measures_metres(held_out_scene, tmp_path):
    checkpoint, name = default_model()
    assert name == str(shipped_weights("student")) and checkpoint.metric
    trained = evaluate_recording(held_out_scene, None, 0.1, 10.0)
    untrained = evaluate_recording(
        held_out_scene, save_checkpoint(untrained_student(), tmp_path / "u.pt"), 0.1, 10.0)
    assert trained["unscaled"]["abs_rel"] < 0.6 * untrained["unscaled"]["abs_rel"]
    assert trained["median_scaled"]["a1"] > untrained["median_scaled"]["a1"] + MARGIN
    assert trained["median_scaled"]["a1"] > trained["constant_baseline"]["a1"] + MARGIN
    # Told the camera's mount by the recording's tf, its metres beat even that constant.
    assert trained["floor_prior"] and checkpoint.arch_config["floor_prior"]
    assert trained["unscaled"]["a1"] > trained["constant_baseline"]["a1"] + MARGIN


def test_the_gate_keeps_a_trained_model_and_refuses_it_at_the_wrong_scale(
        held_out_scene, tmp_path):
    student = shipped_weights("student")
    checkpoint = load_checkpoint(student)
    data = load_triplets([held_out_scene], checkpoint.input_width, checkpoint.input_height,
                         "odometry", 0.05, holdout=0.5, held_out=True)
    same = gate(student, student, data, None, 0.02, 0.85, FLOOR)
    assert same["accepted"] and math.isfinite(same["serving"]["photometric_error"])
    for factor in (0.33, 3.0):  # the same depth in the wrong unit explains the motion worse
        wrong = save_checkpoint(dataclasses.replace(
            checkpoint, depth_scale=checkpoint.depth_scale * factor), tmp_path / "wrong.pt")
        verdict = gate(wrong, student, data, None, 0.02, 0.85, FLOOR)
        assert not verdict["accepted"], verdict


def test_the_shipped_teacher_made_relative_is_made_metric_again_by_the_camera_height(
        held_out_scene, tmp_path):
    """The shipped teacher with its metres forgotten (and its unit WRONG_SCALE times a metre),
    on the hall without odometry (the camera's mount in /tf_static only): the floor in its
    depth gives it a scale, marked as such, that serves the hall's metres as well as the
    floor does frame by frame, far better than the forgotten unit."""
    from bags import copy_bag

    from lumde_ros.evaluation import CAMERA_HEIGHT
    from lumde_ros.training.camera_height import scale_from_camera_height
    from lumde_ros.training.config import TeacherConfig

    teacher = load_checkpoint(shipped_weights("teacher"))
    relative = save_checkpoint(dataclasses.replace(
        teacher, metric=False, depth_scale=teacher.depth_scale * WRONG_SCALE),
        tmp_path / "relative.pt")
    forgotten = evaluate_recording(held_out_scene, relative, 0.1, 10.0)
    mounted = copy_bag(held_out_scene, tmp_path / "mounted", {"/odom", "/tf"})
    found = scale_from_camera_height(relative, [mounted], load_section("teacher",
                                                                       TeacherConfig).data,
                                     FLOOR, threads=1)
    assert found["metres_per_unit"] is not None, found
    assert found["fits"] >= FLOOR.calibration_min_fits and found["spread"] <= 0.3
    scaled = load_checkpoint(relative)
    assert scaled.metric and scaled.scale_source == "camera_height"
    assert scaled.provenance["scale"]["fits"] == found["fits"]
    own = evaluate_recording(held_out_scene, shipped_weights("teacher"), 0.1, 10.0)
    metres = evaluate_recording(held_out_scene, relative, 0.1, 10.0)
    assert metres["scale_source"] == "camera_height"
    assert metres["unscaled"]["a1"] > forgotten["unscaled"]["a1"] + MARGIN
    assert metres["unscaled"]["a1"] == pytest.approx(own[CAMERA_HEIGHT]["a1"], abs=0.1)


def test_without_odometry_the_gate_judges_metres_by_the_floor(held_out_scene, tmp_path):
    """On the hall recorded without odometry (the camera's mount in /tf_static only), the
    camera's height is the only length left to judge a metric candidate by: the shipped
    student rescaled to agree with its held-out floor is accepted, the same WRONG_SCALE times
    too far is refused for its metres alone, unless the serving model is further off still."""
    from bags import copy_bag

    from lumde_ros.models import PoseNet, construct
    from lumde_ros.training.config import DistillConfig

    shipped = shipped_weights("student")
    student = load_checkpoint(shipped)
    mounted = copy_bag(held_out_scene, tmp_path / "mounted", {"/odom", "/tf"})
    data = load_triplets([mounted], student.input_width, student.input_height, "auto", 0.05,
                         holdout=0.5, held_out=True)
    assert not data.metric and len(data)
    pose_net = construct(PoseNet, load_section("distill", DistillConfig).pose_model)

    def judged(candidate, serving) -> dict:
        return gate(candidate, serving, data, pose_net, 0.02, 0.85, FLOOR)

    def scaled(factor: float, name: str):
        return save_checkpoint(dataclasses.replace(
            student, depth_scale=student.depth_scale * factor), tmp_path / name)

    own = judged(shipped, shipped)["serving"]
    assert own["floor_fits"] >= 3, own
    right = judged(scaled(own["floor_scale"], "right.pt"), shipped)
    assert right["accepted"], right
    assert right["candidate"]["floor_scale"] == pytest.approx(1.0, rel=1e-3)
    wrong_path = scaled(own["floor_scale"] * WRONG_SCALE, "wrong.pt")
    wrong = judged(wrong_path, shipped)
    assert not wrong["accepted"] and "disagree with the camera's height" in wrong["reason"]
    assert wrong["candidate"]["photometric_error"] == pytest.approx(
        right["candidate"]["photometric_error"], rel=1e-4)  # the shape is the same
    further = scaled(own["floor_scale"] * WRONG_SCALE ** 2, "further.pt")
    assert judged(wrong_path, further)["accepted"]
