"""The `lumde` command as users run it: the installed console script in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bags import copy_bag

from lumde_ros.inference import shipped_weights

LUMDE = str(Path(sys.executable).parent / "lumde")


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([LUMDE, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("info", "simulate", "eval", "demo"):
        assert command in out.stdout


def test_info_reports_size_and_cost(student_path):
    out = run("info", "--model", str(student_path), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["arch"] == "student" and info["metric"] is False
    assert 50_000 < info["parameters"] < 1_000_000
    assert (info["input_width"], info["input_height"]) == (320, 256)
    half = json.loads(run("info", "--model", str(student_path), "--width", "160", "--height",
                          "128", "--json").stdout)
    assert abs(half["macs"] * 4 - info["macs"]) / info["macs"] < 0.05  # MACs scale with area
    pair = info["student_vs_teacher"]
    assert pair["student"]["macs"] == info["macs"] and pair["mac_ratio"] <= 0.05
    assert abs(pair["mac_ratio"] - info["macs"] / pair["teacher"]["macs"]) < 1e-3
    text = run("info").stdout
    assert str(shipped_weights("student")) in text  # the default model: the shipped student
    assert "parameters" in text and "of the MACs" in text


def test_info_refuses_a_corrupt_model_without_a_traceback(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 100)
    out = run("info", "--model", str(bad))
    assert out.returncode == 1
    assert "broken.pt" in out.stderr and "Traceback" not in out.stderr


def test_demo_plays_a_recording_through_the_node_and_evaluates(tmp_path):
    out = run("demo", "--out", str(tmp_path / "demo"), "--frames", "12", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["messages_played"] == 24  # image + camera_info per frame
    assert summary["frames_evaluated"] >= 8
    assert summary["outputs_recorded"]["/depth/image"] >= 8
    assert 0 < summary["median_scaled"]["abs_rel"] < 2
    files = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"summary.json", "points.ply", "depth_node.log", "frame_00.png", "demo.gif",
            "evaluation.txt", "recording", "outputs"} <= files
    ply = (tmp_path / "demo" / "points.ply").read_bytes()
    assert ply.startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex ")
    assert summary["diagnostics"]["processed_frames"] != "0"


def test_simulate_then_eval(tmp_path):
    bag = tmp_path / "eval_room"
    out = run("simulate", "--out", str(bag), "--seed", "1001", "--frames", "4", "--width", "160",
              "--height", "128", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["split"] == "evaluation"
    report = tmp_path / "report.json"
    out = run("eval", "--bag", str(bag), "--json", str(report), "--max-depth", "8")
    assert out.returncode == 0, out.stderr
    assert "median-scaled" in out.stdout and "constant-baseline" in out.stdout
    result = json.loads(report.read_text())
    assert result["frames"] == 4 and result["max_depth_m"] == 8.0
    assert 0 < result["median_scaled"]["abs_rel"] < 1 and result["parameters"] > 0
    assert 0 < result["constant_baseline"]["a1"] < 1
    assert run("eval", "--bag", str(tmp_path / "none")).returncode == 1

    def later(msg, index):  # depth stamped 20 ms after its image
        msg.header.stamp.nanosec += 20_000_000
    late = copy_bag(bag, tmp_path / "late", edit=("/camera/depth/ground_truth", later))
    out = run("eval", "--bag", str(late), "--max-depth", "8")
    assert out.returncode == 1 and "within --depth-slop-ms" in out.stderr
    out = run("eval", "--bag", str(late), "--max-depth", "8", "--depth-slop-ms", "25", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["median_scaled"] == result["median_scaled"]


def test_eval_on_the_real_middlebury_photograph(tmp_path, student_path):
    report = tmp_path / "middlebury.json"
    out = run("eval", "--middlebury", "--model", str(student_path), "--json", str(report))
    assert out.returncode == 0, out.stderr
    assert "domain-gap" in out.stdout and "constant-baseline" in out.stdout
    result = json.loads(report.read_text())
    assert result["domain_gap"] and result["frames"] == 1
    # the constant baseline on this photograph, whatever the model (issue #20: 0.551)
    assert result["constant_baseline"]["a1"] == pytest.approx(0.551, abs=0.005)
    assert run("eval", "--middlebury", "--bag", "x").returncode == 2


@pytest.mark.parametrize("args, reason", [
    (("simulate", "--out", "x", "--rate-hz", "0"), "--rate-hz: 0 is not a positive number"),
    (("simulate", "--out", "x", "--frames", "-3"), "--frames: -3 is not a positive integer"),
    (("simulate", "--out", "x", "--hfov-deg", "nan"), "nan is not a field of view"),
    (("simulate", "--out", "x", "--visit", "-1"), "--visit: -1 is not a visit number"),
    (("demo", "--rate-hz", "0"), "--rate-hz: 0 is not a positive number"),
    (("eval", "--bag", "x", "--min-depth-m", "5", "--max-depth-m", "1"), "is not below"),
    (("eval", "--bag", "x", "--depth-slop-ms", "-1"), "-1 is not milliseconds"),
    (("info", "--json", "missing/info.json"), "not a file in an existing directory"),
])
def test_misused_arguments_are_refused_before_any_work(tmp_path, args, reason):
    out = subprocess.run([LUMDE, *args], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 2 and reason in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x").exists()


def test_a_size_too_small_for_the_teacher_is_one_line():
    out = run("info", "--width", "32", "--height", "32")
    assert out.returncode == 1 and "cannot run at 32x32" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_file_system_error_is_one_line(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "model.onnx").mkdir()  # the output path is a directory
    out = run("export", "--out", str(tmp_path / "taken" / "model.onnx"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1].startswith("lumde export: error: [Errno 21]")
