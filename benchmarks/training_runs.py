"""Shared by the training benchmarks: simulated recordings, training runs through the `lumde`
command (resumed when a previous attempt stopped), held-out evaluation with `lumde eval`
(always beside the constant baseline on the same frames) and on the real Middlebury photo,
and a run's pose network against odometry."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lumde_ros.evaluation import (CAMERA_HEIGHT, CONSTANT, METRICS, frame_pairs,
                                  pose_yaws, yaw_fit)
from lumde_ros.models import PoseNet, construct
from lumde_ros.sim.world import load_sim_config, split_name
from lumde_ros.training.run import read_state

MIN_DEPTH_M, MAX_DEPTH_M = 0.1, 10.0
PROTOCOLS = ("median_scaled", "unscaled")
LUMDE = [sys.executable, "-m", "lumde_ros.cli"]
# The classic world's recordings alternate its two layouts, as the shipped weights' did.
CLASSIC_LAYOUTS = ("corridor", "room")


def layouts(seed: int, world: str) -> tuple[str, ...]:
    """The layouts a set of recordings cycles through, so that a few seeds cover every kind
    of scene of their split evenly (a seed alone draws its layout uniformly)."""
    if world == "classic":
        return CLASSIC_LAYOUTS
    config = load_sim_config()
    return tuple(config["split"][split_name(seed, config)]["layouts"])


def simulate(folder: Path, seeds: range, frames: int, world: str = "varied", visit: int = 0,
             odometry: bool = True) -> list[Path]:
    """One recording per seed, folder/seed-N, the layouts cycled (see `layouts`), with `lumde
    simulate`'s summary beside it (seed-N.json: layout, objects, texture families); existing
    ones are kept. `visit`, `odometry`: as `lumde simulate`'s --visit and --no-odometry."""
    folder.mkdir(parents=True, exist_ok=True)
    bags = []
    for seed in seeds:
        bag = folder / f"seed-{seed}"
        if not bag.exists():
            cycle = layouts(seed, world)
            layout = ["--layout", cycle[seed % len(cycle)]]
            subprocess.run([*LUMDE, "simulate", "--out", str(bag), "--seed", str(seed),
                            "--frames", str(frames), "--world", world, *layout,
                            "--visit", str(visit), *([] if odometry else ["--no-odometry"]),
                            "--json", str(bag.with_suffix(".json"))], check=True)
        bags.append(bag)
    return bags


def layout_of(bag: Path) -> str:
    """The recording's layout, from the summary `simulate` wrote beside it."""
    return json.loads(bag.with_suffix(".json").read_text())["layout"]


def train(command: str, run: Path, bags: list[Path], steps: int, config: str,
          arguments: tuple[str, ...] = ()) -> dict:
    """`lumde <command>` (train-teacher or distill) with the YAML text `config`, resumed
    when a previous attempt stopped; the run's summary."""
    run.mkdir(parents=True, exist_ok=True)
    summary = run / "summary.json"
    if summary.exists() and json.loads(summary.read_text())["finished"]:
        return json.loads(summary.read_text())
    args = [*LUMDE, command, "--out", str(run), "--steps", str(steps), "--json", str(summary)]
    if (run / "state.pt").exists():
        args.append("--resume")
    else:
        config_file = run.parent / f"{run.name}.yaml"
        config_file.write_text(config)
        args += ["--config", str(config_file), *arguments]
        args += [a for b in bags for a in ("--bag", str(b))]
    subprocess.run(args, check=True)
    return json.loads(summary.read_text())


def evaluate(model: Path, bags: list[Path], folder: Path | None = None) -> dict[str, dict]:
    """`lumde eval` per recording, each result kept in `folder` (default: beside the model);
    frame-weighted means per layout and over all, each with the constant baseline on the same
    frames."""
    per_bag = []
    folder = folder or model.parent
    folder.mkdir(parents=True, exist_ok=True)
    for bag in bags:
        out = folder / f"eval-{bag.name}.json"
        subprocess.run([*LUMDE, "eval", "--bag", str(bag), "--model", str(model),
                        "--min-depth-m", str(MIN_DEPTH_M), "--max-depth-m", str(MAX_DEPTH_M),
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        per_bag.append((layout_of(bag), json.loads(out.read_text())))
    return aggregate(per_bag)


def evaluate_real(model: Path) -> dict[str, dict]:
    """`lumde eval --middlebury`: the real photograph (a domain-gap figure)."""
    out = model.parent / "eval-middlebury.json"
    subprocess.run([*LUMDE, "eval", "--middlebury", "--model", str(model), "--min-depth-m",
                    str(MIN_DEPTH_M), "--max-depth-m", str(MAX_DEPTH_M), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def aggregate(per_bag: list[tuple[str, dict]]) -> dict[str, dict]:
    """Frame-weighted means of per-recording results (protocols, the constant baseline and,
    where every recording has it, the camera-height scale), per layout and over all."""
    groups = {"all": [r for _, r in per_bag]}
    groups.update({layout: [r for k, r in per_bag if k == layout]
                   for layout in sorted({k for k, _ in per_bag})})
    out = {}
    for name, rows in groups.items():
        frames = np.array([r["frames"] for r in rows], float)
        keys = (*PROTOCOLS, CONSTANT, *((CAMERA_HEIGHT,) if all(CAMERA_HEIGHT in r for r in rows)
                                        else ()))
        out[name] = {key: {m: float(np.average([r[key][m] for r in rows], weights=frames))
                           for m in METRICS} for key in keys}
    return out


def table_row(name: str, values: dict[str, float], width: int = 34) -> str:
    return f"{name:<{width}}" + "".join(f"{values[m]:9.4f}" for m in METRICS)


def table_header(title: str, width: int = 34) -> str:
    return f"{title:<{width}}" + "".join(f"{m:>9}" for m in METRICS)


def yaw_agreement(run: Path, bags: list[Path]) -> dict[str, float]:
    """A run's pose network (its state, `run`/state.pt) against odometry on consecutive
    frames of `bags` (`yaw_fit`)."""
    state = read_state(run)  # refuses a state of another version: its pose network differs
    config = state["config"]
    net = construct(PoseNet, config["pose_model"])
    net.load_state_dict(state["modules"]["pose"])
    size = (config["data"]["input_width"], config["data"]["input_height"])
    return yaw_fit(*pose_yaws(net, *frame_pairs(bags, size)))
