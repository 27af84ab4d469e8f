"""Shared by the training benchmarks: simulated recordings, training runs through the `lumde`
command (resumed when a previous attempt stopped), held-out evaluation with `lumde eval`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lumde_ros.evaluation import METRICS

KINDS = ("corridor", "room")
MIN_DEPTH_M, MAX_DEPTH_M = 0.1, 10.0
PROTOCOLS = ("median_scaled", "unscaled")
LUMDE = [sys.executable, "-m", "lumde_ros.cli"]


def simulate(folder: Path, seeds: range, frames: int) -> list[Path]:
    """One recording per seed, kinds alternating; existing ones are kept."""
    bags = []
    for i, seed in enumerate(seeds):
        kind = KINDS[i % len(KINDS)]
        bag = folder / f"{kind}-{seed}"
        if not bag.exists():
            subprocess.run([*LUMDE, "simulate", "--out", str(bag), "--seed", str(seed),
                            "--frames", str(frames), "--kind", kind, "--json", "/dev/null"],
                           check=True)
        bags.append(bag)
    return bags


def train(command: str, run: Path, bags: list[Path], steps: int, config: str,
          arguments: tuple[str, ...] = ()) -> dict:
    """`lumde <command>` (train-teacher or distill) with the YAML text `config`, resumed
    when a previous attempt stopped; the run's summary."""
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


def evaluate(model: Path, bags: list[Path]) -> dict[str, dict]:
    """`lumde eval` per recording, frame-weighted means per scene kind and over all."""
    per_bag = []
    for bag in bags:
        out = model.parent / f"eval-{bag.name}.json"
        subprocess.run([*LUMDE, "eval", "--bag", str(bag), "--model", str(model),
                        "--min-depth-m", str(MIN_DEPTH_M), "--max-depth-m", str(MAX_DEPTH_M),
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        per_bag.append((bag.name.split("-")[0], json.loads(out.read_text())))
    return aggregate(per_bag)


def aggregate(per_bag: list[tuple[str, dict]]) -> dict[str, dict]:
    """Frame-weighted means of per-recording results, per scene kind and over all."""
    groups = {kind: [r for k, r in per_bag if k == kind] for kind in KINDS}
    groups["all"] = [r for _, r in per_bag]
    out = {}
    for name, rows in groups.items():
        frames = np.array([r["frames"] for r in rows], float)
        out[name] = {protocol: {m: float(np.average([r[protocol][m] for r in rows],
                                                     weights=frames)) for m in METRICS}
                     for protocol in PROTOCOLS}
    return out


def table_row(name: str, values: dict[str, float], width: int = 34) -> str:
    return f"{name:<{width}}" + "".join(f"{values[m]:9.4f}" for m in METRICS)


def table_header(title: str, width: int = 34) -> str:
    return f"{title:<{width}}" + "".join(f"{m:>9}" for m in METRICS)
