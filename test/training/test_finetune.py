"""`lumde finetune`: a real (tiny) teacher fine-tune, distillation from the serving student,
and the gate, through the installed command; resuming; refusals."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from bags import copy_bag
from test_teacher import lumde
from tiny import finetune_overlay

from lumde_ros.checkpoint import load_checkpoint, save_checkpoint
from lumde_ros.cli import REJECTED
from lumde_ros.export import checkpoint_digest
from lumde_ros.training.run import read_state


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lumde_ros.sim.recording import SimulateOptions, simulate
    out = tmp_path_factory.mktemp("finetune") / "room"
    simulate(SimulateOptions(out=out, seed=7, frames=20), progress=False)
    return out


@pytest.fixture()
def overlay(tmp_path: Path) -> Path:
    return finetune_overlay(tmp_path / "tiny.yaml")


def finetune(*args: str):
    out = lumde("finetune", "--json", *args)
    assert out.returncode in (0, REJECTED), out.stderr
    return out, json.loads(out.stdout)


def test_finetune_trains_both_phases_from_the_given_models_and_gates_the_result(
        room, overlay, tiny_teacher, student_path, tmp_path):
    run = tmp_path / "run"
    out, result = finetune("--bag", str(room), "--teacher", str(tiny_teacher), "--student",
                           str(student_path), "--out", str(run), "--config", str(overlay),
                           "--teacher-steps", "3", "--student-steps", "3", "--holdout", "0.3",
                           "--learning-rate", "1e-4", "--threads", "1")
    assert result["finished"] and result["phase"] == "done"
    assert out.returncode == (0 if result["accepted"] else REJECTED)
    verdict = json.loads((run / "gate.json").read_text())
    assert verdict == result["gate"]
    assert verdict["motion"] == "odometry" and verdict["triplets"] > 0
    for role in ("candidate", "serving"):
        assert verdict[role]["finite"], verdict
    assert verdict["serving"]["model"] == str(student_path.resolve())

    teacher = load_checkpoint(run / "teacher" / "teacher.pt")
    student = load_checkpoint(result["model"])
    assert teacher.provenance["init"]["digest"] == checkpoint_digest(load_checkpoint(tiny_teacher))
    assert student.provenance["init"]["digest"] == checkpoint_digest(load_checkpoint(student_path))
    assert student.provenance["teacher"]["digest"] == checkpoint_digest(teacher)
    assert student.metric and student.arch_config == load_checkpoint(student_path).arch_config
    for phase in ("teacher", "student"):
        state = read_state(run / phase)
        assert state["config"]["run"]["learning_rate"] == pytest.approx(1e-4)
        assert state["config"]["data"]["holdout"] == pytest.approx(0.3)
        assert state["step"] == 3
        trained = sum(r["frames"] for r in state["provenance"]["recordings"])
        assert trained == 20 - round(0.3 * 20)  # the held-out end is never trained on
    progress = json.loads((run / "student" / "progress.json").read_text())
    assert progress["step"] == progress["steps"] == 3 and "pixel" in progress["losses"]

    # Resuming a finished fine-tune with more distillation steps continues that phase only.
    teacher_weights = (run / "teacher" / "teacher.pt").read_bytes()
    _, more = finetune("--out", str(run), "--resume", "--student-steps", "5")
    assert more["student"]["step"] == 5 and more["teacher"]["step"] == 3
    assert (run / "teacher" / "teacher.pt").read_bytes() == teacher_weights
    assert json.loads((run / "gate.json").read_text()) == more["gate"]


def test_without_odometry_a_relative_pair_is_fine_tuned_on_the_images_motion_and_gated(
        room, overlay, tiny_teacher, student_path, tmp_path):
    """A recording made without odometry (another robot's, a hand-held camera's): the learned
    route, the pose network supervised by the motion the images show, and the gate judging
    both relative students through that pose network."""
    without = copy_bag(room, tmp_path / "no_odometry", {"/odom", "/tf"})
    relative = {}
    for role, path in (("teacher", tiny_teacher), ("student", student_path)):
        relative[role] = save_checkpoint(dataclasses.replace(load_checkpoint(path), metric=False),
                                         tmp_path / f"relative-{role}.pt")
    run = tmp_path / "run"
    out, result = finetune("--bag", str(without), "--teacher", str(relative["teacher"]),
                           "--student", str(relative["student"]), "--out", str(run), "--config",
                           str(overlay), "--teacher-steps", "3", "--student-steps", "3",
                           "--holdout", "0.3", "--threads", "1")
    assert result["finished"] and result["phase"] == "done"
    verdict = result["gate"]
    assert verdict["motion"] == "pose network" and verdict["triplets"] > 0
    assert verdict["candidate"]["finite"] and verdict["serving"]["finite"], verdict
    for phase in ("teacher", "student"):
        state = read_state(run / phase)
        assert state["provenance"]["pose_route"] == "learned"
        assert "image_motion" in state["provenance"]
    assert not load_checkpoint(run / "student" / "student.pt").metric


def test_without_odometry_a_metric_student_is_replaced_only_by_a_metric_one(
        room, overlay, tiny_teacher, student_path, tmp_path):
    """The camera's mount in tf lets a fine-tune without odometry start for a metric serving
    student: the teacher's scale is then to come from the camera's height. A tiny teacher has
    no floor in its depth, so its scale is refused with the reason, the result stays relative
    and the gate keeps the metric student."""
    without = copy_bag(room, tmp_path / "no_odometry", {"/odom", "/tf"})
    metric = save_checkpoint(dataclasses.replace(load_checkpoint(student_path), metric=True),
                             tmp_path / "metric-student.pt")
    out, result = finetune("--bag", str(without), "--teacher", str(tiny_teacher), "--student",
                           str(metric), "--out", str(tmp_path / "run"), "--config",
                           str(overlay), "--teacher-steps", "2", "--student-steps", "2",
                           "--holdout", "0.3", "--threads", "1")
    assert result["finished"] and out.returncode == REJECTED and not result["accepted"]
    why = result["teacher"]["camera_height"]["reason"]
    assert why.startswith("the floor was found in")
    # The gate's one line says both why the depth is relative and why the floor gave no scale.
    assert "relative and would replace metric depth" in result["gate"]["reason"]
    assert f"the camera's height gave it no scale: {why}" in result["gate"]["reason"]


def test_finetune_refuses_what_it_cannot_do(room, overlay, tiny_teacher, tmp_path):
    missing = lumde("finetune", "--bag", str(room), "--teacher", str(tmp_path / "none.pt"),
                    "--out", str(tmp_path / "a"))
    assert missing.returncode == 1 and "no teacher at" in missing.stderr
    nothing = lumde("finetune", "--out", str(tmp_path / "b"), "--resume")
    assert nothing.returncode == 1 and "no fine-tune to resume" in nothing.stderr
    no_gate = lumde("finetune", "--bag", str(room), "--teacher", str(tiny_teacher), "--out",
                    str(tmp_path / "c"), "--holdout", "0")
    assert no_gate.returncode == 1 and "holdout" in no_gate.stderr
    assert not (tmp_path / "c").exists()
    # Refused before any training, not after it: a held-out end too short for the gate...
    short = lumde("finetune", "--bag", str(room), "--teacher", str(tiny_teacher), "--out",
                  str(tmp_path / "d"), "--config", str(overlay), "--holdout", "0.05")
    assert short.returncode == 1 and "record longer or raise --holdout" in short.stderr
    # ...and a fine-tune that would learn relative depth for a metric serving student: no
    # odometry used, and no camera mount in tf to take the scale from the camera's height.
    learned = yaml.safe_load(overlay.read_text())
    for section in learned.values():
        section["data"]["pose"] = "learned"
    (tmp_path / "learned.yaml").write_text(yaml.safe_dump(learned))
    unmounted = copy_bag(room, tmp_path / "unmounted", {"/tf_static"})
    relative = lumde("finetune", "--bag", str(unmounted), "--teacher", str(tiny_teacher),
                     "--out", str(tmp_path / "e"), "--config", str(tmp_path / "learned.yaml"),
                     "--holdout", "0.3")
    assert relative.returncode == 1 and "serving model's depth is metric" in relative.stderr
    assert "pose: learned" in relative.stderr
    assert "tf does not place the camera over the floor in" in relative.stderr
    # ...and models that are not what they are passed as.
    swapped = lumde("finetune", "--bag", str(room), "--teacher", str(tiny_teacher), "--student",
                    str(tiny_teacher), "--out", str(tmp_path / "f"), "--config", str(overlay))
    assert swapped.returncode == 1 and "is not a student" in swapped.stderr
    for run in ("d", "e", "f"):  # nothing trained, and --out left free for the next try
        assert not (tmp_path / run).exists()


def test_a_camera_named_in_one_section_is_read_by_both_phases(
        room, overlay, tiny_teacher, student_path, tmp_path):
    two = copy_bag(room, tmp_path / "two", rename={
        "/camera/image_raw": ("/camera/image_raw", "/rear/image_raw"),
        "/camera/camera_info": ("/camera/camera_info", "/rear/camera_info")})
    config = yaml.safe_load(overlay.read_text())
    config["teacher"]["data"]["image_topic"] = "/rear/image_raw"
    overlay.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    _, result = finetune("--bag", str(two), "--teacher", str(tiny_teacher), "--student",
                         str(student_path), "--out", str(run), "--config", str(overlay),
                         "--teacher-steps", "2", "--student-steps", "2", "--holdout", "0.3",
                         "--threads", "1")
    assert result["finished"]
    for phase in ("teacher", "student"):
        assert read_state(run / phase)["config"]["data"]["image_topic"] == "/rear/image_raw"
