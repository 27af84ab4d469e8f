"""`lumde train-teacher`: real (tiny) training runs on a simulated recording, through the
installed command where users would run it."""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from bags import copy_bag

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.data.hints import HintConfig
from lumde_ros.data.triplets import load_triplets
from lumde_ros.errors import TrainingError
from lumde_ros.inference import Predictor, resolve_scale
from lumde_ros.models import PoseNet
from lumde_ros.training.config import TeacherConfig, load_section
from lumde_ros.training.run import Distributed, train
from lumde_ros.training.teacher import TeacherObjective

BIN = Path(sys.executable).parent
LUMDE = str(BIN / "lumde")


def lumde(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([LUMDE, *args], capture_output=True, text=True, timeout=timeout)


def rows(run: Path) -> list[dict[str, float]]:
    with open(run / "log.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def test_loss_falls_and_the_run_leaves_logs_and_a_servable_metric_checkpoint(
        sim_bag, tiny_config, tmp_path):
    run = tmp_path / "run"
    out = lumde("train-teacher", "--bag", str(sim_bag), "--out", str(run), "--config",
                str(tiny_config()), "--steps", "60", "--json", str(tmp_path / "summary.json"))
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] and summary["step"] == 60 and summary["skipped_steps"] == 0
    assert "teacher 60/60" in out.stderr  # the progress line
    log = rows(run)
    assert [r["step"] for r in log] == list(range(1, 61))
    first, last = np.mean([r["loss"] for r in log[:10]]), np.mean([r["loss"] for r in log[-10:]])
    assert last < 0.8 * first, (first, last)
    plot = cv2.imread(str(run / "training.png"))
    assert plot is not None and plot.shape[1] > 640  # curves beside the disparity previews

    checkpoint = load_checkpoint(run / "teacher.pt")
    assert checkpoint.arch == "teacher" and checkpoint.metric and checkpoint.trained
    assert checkpoint.provenance["pose_route"] == "odometry"
    assert checkpoint.provenance["steps"] == 60
    assert (checkpoint.input_width, checkpoint.input_height) == (96, 64)
    depth = Predictor(checkpoint).predict(np.full((60, 80, 3), 128, np.uint8),
                                          resolve_scale(checkpoint, "checkpoint", 1.0), (80, 60))
    assert depth.shape == (60, 80) and np.isfinite(depth).all()

    # The pose network, supervised by odometry, moves the camera by the right amount.
    state = torch.load(run / "state.pt", weights_only=True)
    pose = PoseNet()
    pose.load_state_dict(state["modules"]["pose"])
    data = load_triplets([sim_bag], 96, 64, "odometry", 0.05)
    batch = data.batch(range(len(data)), torch.Generator(), flip=False, color_jitter=0.0)
    with torch.no_grad():
        predicted = pose.eval()(batch.target, batch.sources[1], batch.k).translation.norm(dim=1)
    recorded = batch.motions[:, 1, :3, 3].norm(dim=1)
    ratio = float(predicted.mean() / recorded.mean())
    assert 0.6 < ratio < 1.5, (float(predicted.mean()), float(recorded.mean()))


def test_ctrl_c_saves_and_resume_continues_exactly(sim_bag, tiny_config, tmp_path):
    config = str(tiny_config(run={"steps": 16}))
    whole = tmp_path / "whole"
    assert lumde("train-teacher", "--bag", str(sim_bag), "--out", str(whole),
                 "--config", config).returncode == 0

    parts = tmp_path / "parts"
    process = subprocess.Popen([LUMDE, "train-teacher", "--bag", str(sim_bag), "--out",
                                str(parts), "--config", config], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((parts / "log.csv").exists() and len(rows(parts)) >= 5):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    stopped = load_checkpoint(parts / "teacher.pt").provenance["steps"]
    assert 5 <= stopped < 16
    assert len(rows(parts)) == stopped  # the log matches the checkpoint

    out = lumde("train-teacher", "--out", str(parts), "--resume")
    assert out.returncode == 0, out.stderr
    a, b = weights(whole / "teacher.pt"), weights(parts / "teacher.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [[r["loss"] for r in rows(run)] for run in (whole, parts)]
    assert losses[0] == losses[1] and len(losses[0]) == 16


def test_non_finite_losses_are_skipped_and_counted_and_divergence_stops(
        sim_bag, tiny_config, tmp_path):
    config = load_section("teacher", TeacherConfig,
                          tiny_config(run={"steps": 6, "max_skipped_in_row": 2}))
    data = load_triplets([sim_bag], 96, 64, "auto", 0.05)
    dist = Distributed(0, 1, torch.device("cpu"))
    objective = TeacherObjective(config, data, dist)
    honest = objective.updates[0].loss
    calls = []

    def sometimes_nan(batch):
        calls.append(1)
        loss, terms = honest(batch)
        return (loss * math.nan if len(calls) in (2, 3) else loss), terms

    objective.updates[0].loss = sometimes_nan
    saved = {"config": config.as_dict(), "bags": [str(sim_bag)], "metric": True,
             "provenance": {"source": "test"}}
    summary = train(objective, data, config.run, config.data, tmp_path / "a", dist, None, saved)
    assert summary["finished"] and summary["skipped_steps"] == 2
    assert all(torch.isfinite(p).all() for p in objective.modules["depth"].parameters())
    assert [r["skipped"] for r in rows(tmp_path / "a")] == [0, 1, 2, 2, 2, 2]

    objective.updates[0].loss = lambda batch: (torch.tensor(math.inf, requires_grad=True), {})
    with pytest.raises(TrainingError, match="diverged"):
        train(objective, data, config.run, config.data, tmp_path / "b", dist, None, saved)
    assert load_checkpoint(tmp_path / "b" / "teacher.pt").state_dict  # last finite weights


def test_without_odometry_the_checkpoint_is_marked_relative(sim_bag, tiny_config, tmp_path):
    bag = copy_bag(sim_bag, tmp_path / "bag", {"/odom", "/tf"})
    out = lumde("train-teacher", "--bag", str(bag), "--out", str(tmp_path / "run"),
                "--config", str(tiny_config()), "--steps", "20", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["pose_route"] == "learned"
    assert "no nav_msgs/msg/Odometry topic, and no frame named odom" in summary["why_relative"]
    assert f"learned pose route (relative depth): {bag}: no nav_msgs" in out.stderr
    # without odometry the pose network alone learns the motion
    moved = [r["translation_m"] for r in rows(tmp_path / "run")]
    assert moved[-1] > 3 * moved[0], moved
    checkpoint = load_checkpoint(tmp_path / "run" / "teacher.pt")
    assert not checkpoint.metric and checkpoint.provenance["pose_route"] == "learned"
    assert checkpoint.provenance["why_relative"] == summary["why_relative"]
    assert "pose_source" not in checkpoint.provenance["recordings"][0]


def test_a_recording_a_dead_recorder_left_is_trained_on_and_evaluated_saying_so(
        sim_bag, tiny_config, tmp_path):
    dead = tmp_path / "dead"  # no metadata.yaml, the file cut inside its last chunks
    dead.mkdir()
    data = next(sim_bag.glob("*.mcap")).read_bytes()
    (dead / "dead_0.mcap").write_bytes(data[:len(data) * 9 // 10])
    trained = lumde("train-teacher", "--bag", str(dead), "--out", str(tmp_path / "run"),
                    "--config", str(tiny_config()), "--steps", "2")
    assert trained.returncode == 0, trained.stderr
    assert f"{dead}: " in trained.stdout and "read from its repaired copy" in trained.stdout
    evaluated = lumde("eval", "--bag", str(dead), "--model", str(tmp_path / "run" / "teacher.pt"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "recovered" in evaluated.stdout and "original is untouched" in evaluated.stdout


def test_bad_recordings_and_run_folders_are_refused_with_the_reason(sim_bag, tiny_config,
                                                                    tmp_path):
    config = str(tiny_config())

    def refused(*args: str) -> str:
        out = lumde("train-teacher", *args)
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        return out.stderr

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    assert "cannot open" in refused("--bag", str(corrupt), "--out", str(tmp_path / "r1"))
    assert "does not exist" in refused("--bag", str(tmp_path / "nope"), "--out",
                                       str(tmp_path / "r2"))
    no_images = copy_bag(sim_bag, tmp_path / "noimg", {"/camera/image_raw"})
    assert "camera image" in refused("--bag", str(no_images), "--out", str(tmp_path / "r3"))
    no_odometry = copy_bag(sim_bag, tmp_path / "noodom", {"/odom", "/tf"})
    forced = tiny_config(data={"pose": "odometry"})
    assert "no nav_msgs/msg/Odometry" in refused("--bag", str(no_odometry), "--out",
                                                 str(tmp_path / "r4"), "--config", str(forced))
    assert "--bag is required" in refused("--out", str(tmp_path / "r5"))
    assert "holds no training state" in refused("--out", str(tmp_path / "r6"), "--resume")

    run = tmp_path / "run"
    assert lumde("train-teacher", "--bag", str(sim_bag), "--out", str(run), "--config", config,
                 "--steps", "2").returncode == 0
    assert "already holds a training run" in refused("--bag", str(sim_bag), "--out", str(run))
    state = torch.load(run / "state.pt", weights_only=True)
    torch.save({**state, "version": 1}, run / "state.pt")  # a state an older version wrote
    assert "has state version 1" in refused("--out", str(run), "--resume")
    (run / "state.pt").write_bytes(b"\x00" * 64)
    assert "unreadable" in refused("--out", str(run), "--resume")


def test_the_same_command_runs_distributed_under_torchrun(sim_bag, tiny_config, tmp_path):
    summary = tmp_path / "summary.json"
    out = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "lumde_ros.cli",
         "train-teacher", "--bag", str(sim_bag), "--out", str(tmp_path / "run"), "--config",
         str(tiny_config()), "--steps", "3", "--json", str(summary)],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    result = json.loads(summary.read_text())
    assert result["processes"] == 2 and result["finished"]
    assert load_checkpoint(tmp_path / "run" / "teacher.pt").provenance["steps"] == 3


def test_depth_hints_are_found_once_per_run_and_found_again_when_their_file_is_damaged(
        sim_bag, tiny_config, tmp_path):
    config = str(tiny_config(run={"steps": 2}, data={"min_baseline_m": 0.0}))
    run = tmp_path / "run"
    out = lumde("train-teacher", "--bag", str(sim_bag), "--out", str(run), "--config", config)
    assert out.returncode == 0, out.stderr
    assert "finding depth hints" in out.stderr and "hint" in rows(run)[0]
    provenance = load_checkpoint(run / "teacher.pt").provenance
    assert provenance["hints"] == dataclasses.asdict(load_section("hints", HintConfig))
    kept = list((run / "hints").glob("*.pt"))
    assert len(kept) == 1

    out = lumde("train-teacher", "--out", str(run), "--resume", "--steps", "3")
    assert out.returncode == 0 and "finding depth hints" not in out.stderr, out.stderr

    kept[0].write_bytes(kept[0].read_bytes()[:100])  # a disk that filled up mid-write
    out = lumde("train-teacher", "--out", str(run), "--resume", "--steps", "4")
    assert out.returncode == 0, out.stderr
    assert "unreadable" in out.stderr and "finding depth hints" in out.stderr
    assert len(rows(run)) == 4

    without = tmp_path / "without"
    out = lumde("train-teacher", "--bag", str(sim_bag), "--out", str(without), "--config",
                str(tiny_config(run={"steps": 2}, loss={"hint_weight": 0.0})))
    assert out.returncode == 0, out.stderr
    assert not (without / "hints").exists() and "hint" not in rows(without)[0]
    assert "hints" not in load_checkpoint(without / "teacher.pt").provenance
