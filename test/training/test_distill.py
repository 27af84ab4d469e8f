"""`lumde distill`: real (tiny) distillation runs from a frozen teacher."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from test_teacher import lumde, rows

from lumde_ros.checkpoint import checkpoint_from_net, load_checkpoint, save_checkpoint
from lumde_ros.data.triplets import load_triplets
from lumde_ros.export import checkpoint_digest
from lumde_ros.inference import Predictor, resolve_scale
from lumde_ros.models import build_depth_net
from lumde_ros.training.config import DistillConfig, load_section
from lumde_ros.training.distill import DistillObjective, TeacherOutputs
from lumde_ros.training.run import Distributed, train

CPU = Distributed(0, 1, torch.device("cpu"))


def test_full_lumde_learns_from_the_teacher_and_serves_metric_depth(
        sim_bag, tiny_config, tiny_teacher, tmp_path):
    run = tmp_path / "run"
    out = lumde("distill", "--bag", str(sim_bag), "--teacher", str(tiny_teacher), "--out",
                str(run), "--config", str(tiny_config("distill")), "--steps", "24", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["finished"]
    log = rows(run)
    for column in ("pixel", "pair", "gan_g", "gan_d", "self_supervised", "pose"):
        assert all(np.isfinite(r[column]) for r in log), column
    assert np.mean([r["pixel"] for r in log[-4:]]) < 0.7 * np.mean([r["pixel"] for r in log[:4]])

    student = load_checkpoint(run / "student.pt")
    teacher = load_checkpoint(tiny_teacher)
    assert student.arch == "student" and student.metric and student.trained
    assert student.provenance["teacher"]["digest"] == checkpoint_digest(teacher)
    assert student.provenance["config"]["loss"]["losses"] == ["pixel", "pair", "gan", "photo"]
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)

    def log_gap(checkpoint) -> float:
        """Median |log| ratio of a model's depth to the teacher's on the same image."""
        depth = Predictor(checkpoint).predict(image, resolve_scale(checkpoint, "checkpoint", 1),
                                              (96, 64))
        reference = Predictor(teacher).predict(image, resolve_scale(teacher, "checkpoint", 1),
                                               (96, 64))
        return float(np.median(np.abs(np.log(depth / reference))))

    torch.manual_seed(0)  # the student's initial weights: the run's seed
    from_scratch = checkpoint_from_net(build_depth_net("student", student.arch_config),
                                       "student", student.arch_config, 96, 64, True)
    assert log_gap(student) < 0.7 * log_gap(from_scratch)

    info = json.loads(lumde("info", "--model", str(run / "student.pt"), "--teacher",
                            str(tiny_teacher), "--json").stdout)["student_vs_teacher"]
    tiny = build_depth_net("teacher", teacher.arch_config)
    assert info["teacher"]["parameters"] == sum(p.numel() for p in tiny.parameters())
    swapped = lumde("info", "--model", str(tiny_teacher), "--teacher", str(run / "student.pt"))
    assert swapped.returncode == 1 and "compares a student with a teacher" in swapped.stderr


@pytest.mark.parametrize("losses, modules", [
    (["photo"], {"depth", "pose"}), (["pixel"], {"depth"}), (["pixel", "pair"], {"depth"}),
    (["pixel", "pair", "gan"], {"depth", "discriminator"})])
def test_each_ablation_trains_only_what_its_losses_need(sim_bag, tiny_config, tiny_teacher,
                                                       tmp_path, losses, modules):
    config = load_section("distill", DistillConfig, tiny_config("distill", run={"steps": 2}))
    config = config.with_losses(losses)
    data = load_triplets([sim_bag], 96, 64, "auto", 0.05)
    teacher = load_checkpoint(tiny_teacher)
    objective = DistillObjective(config, data, CPU, teacher)
    assert set(objective.modules) == modules
    saved = {"config": config.as_dict(), "bags": [str(sim_bag)], "metric": True,
             "provenance": {}}
    summary = train(objective, data, config.run, config.data, tmp_path, CPU,
                    None, saved)
    assert summary["finished"] and summary["skipped_steps"] == 0
    logged = set(rows(tmp_path)[-1])
    assert ("gan_d" in logged) == ("gan" in losses) and ("pixel" in logged) == ("pixel" in losses)


def test_cached_teacher_outputs_are_the_teachers_own_on_plain_and_flipped_targets(
        sim_bag, tiny_teacher):
    data = load_triplets([sim_bag], 96, 64, "auto", 0.0)
    net = load_checkpoint(tiny_teacher).build()
    cached = TeacherOutputs(net, data, 3, (6, 8), CPU.device, chunk=3)
    assert cached.disps.shape == (2, len(data), 1, 64, 96)  # every target, both orientations
    batch = data.batch(range(len(data)), torch.Generator().manual_seed(1), flip=True,
                       color_jitter=0.0)
    assert batch.flipped.any() and not batch.flipped.all()
    view = cached.view(batch, CPU.device)
    with torch.no_grad():
        live = net(batch.target)
    torch.testing.assert_close(view.disp, live.disps[0], atol=2e-3, rtol=0)
    torch.testing.assert_close(view.nodes, F.adaptive_avg_pool2d(live.features[3], (6, 8)),
                               atol=1e-2, rtol=1e-2)
    # a mirrored target looks up the teacher's output of the mirrored frame, not the plain one
    flipped = int(batch.flipped.nonzero()[0])
    plain = cached.disps[0, cached.slot[batch.frames[flipped]]].float()
    assert not torch.equal(view.disp[flipped], plain)


def test_a_student_without_teacher_and_the_teachers_identity_on_resume(
        sim_bag, tiny_config, tiny_teacher, tmp_path):
    config = str(tiny_config("distill", run={"steps": 2}))
    out = lumde("distill", "--bag", str(sim_bag), "--out", str(tmp_path / "a"), "--config",
                config, "--losses", "pixel,photo")
    assert out.returncode == 1 and "need --teacher" in out.stderr
    out = lumde("distill", "--bag", str(sim_bag), "--out", str(tmp_path / "a"), "--config",
                config, "--losses", "photo")
    assert out.returncode == 0, out.stderr
    assert load_checkpoint(tmp_path / "a" / "student.pt").metric  # odometry: metric alone
    out = lumde("distill", "--out", str(tmp_path / "a"), "--resume", "--teacher",
                str(tiny_teacher))
    assert out.returncode == 1 and "started without a teacher" in out.stderr
    relative = tmp_path / "relative.pt"
    save_checkpoint(dataclasses.replace(load_checkpoint(tiny_teacher), metric=False), relative)
    out = lumde("distill", "--bag", str(sim_bag), "--out", str(tmp_path / "r"), "--config",
                config, "--teacher", str(relative))
    assert out.returncode == 1 and "teacher's depth is relative" in out.stderr
    out = lumde("distill", "--bag", str(sim_bag), "--out", str(tmp_path / "b"), "--config",
                config, "--losses", "pixel,sideways", "--teacher", str(tiny_teacher))
    assert out.returncode == 1 and "choose one or more of" in out.stderr

    assert lumde("distill", "--bag", str(sim_bag), "--out", str(tmp_path / "c"), "--config",
                 config, "--teacher", str(tiny_teacher)).returncode == 0
    other = tmp_path / "other.pt"  # another teacher: one weight changed
    teacher = load_checkpoint(tiny_teacher)
    name = next(k for k, v in teacher.state_dict.items() if v.is_floating_point())
    changed = {**teacher.state_dict, name: teacher.state_dict[name] + 0.01}
    save_checkpoint(dataclasses.replace(teacher, state_dict=changed), other)
    out = lumde("distill", "--out", str(tmp_path / "c"), "--resume", "--steps", "3",
                "--teacher", str(other))
    assert out.returncode == 1 and "not the teacher this run started with" in out.stderr
    out = lumde("distill", "--out", str(tmp_path / "c"), "--resume", "--steps", "3")
    assert out.returncode == 0, out.stderr
    assert load_checkpoint(tmp_path / "c" / "student.pt").provenance["steps"] == 3


def test_a_student_passed_as_the_teacher_is_refused(sim_bag, student_path, tmp_path):
    out = lumde("distill", "--bag", str(sim_bag), "--teacher", str(student_path), "--out",
                str(tmp_path / "run"), "--steps", "1")
    assert out.returncode == 1 and "is a student, not a teacher" in out.stderr
