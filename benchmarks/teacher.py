"""Teacher benchmark: simulate training and held-out evaluation recordings (disjoint seeds),
train the default teacher on both pose routes (odometry; learned pose only) with
`lumde train-teacher`, evaluate with `lumde eval` (median-scaled and unscaled), beside a
trivial baseline (the training set's median depth everywhere). One run, one table.

    .venv/bin/python benchmarks/teacher.py --work /tmp/teacher-bench [--steps 3000]

Re-running with the same --work reuses finished recordings and runs and resumes unfinished
runs (the trainer's --resume), so an interrupted benchmark loses nothing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from training_runs import (KINDS, LUMDE, MAX_DEPTH_M, MIN_DEPTH_M, PROTOCOLS, aggregate,
                           evaluate, simulate, table_header, table_row, train)

from lumde_ros.data import Recording
from lumde_ros.evaluation import ProtocolMetrics
from lumde_ros.sim.recording import EVAL_SEED_START


def median_baseline(train_bags: list[Path], eval_bags: list[Path]) -> tuple[float, dict]:
    """The training recordings' median ground-truth depth predicted everywhere (ground truth
    is read for this baseline and for evaluation only)."""
    depths = []
    for bag in train_bags:
        with Recording(bag) as recording:
            for k, frame in enumerate(recording.frames()):
                if k % 10 == 0 and frame.depth is not None:
                    d = frame.depth[np.isfinite(frame.depth)]
                    depths.append(d[(d > MIN_DEPTH_M) & (d < MAX_DEPTH_M)])
    median = float(np.median(np.concatenate(depths)))
    per_bag = []
    for bag in eval_bags:
        metrics = ProtocolMetrics(MIN_DEPTH_M, MAX_DEPTH_M)
        with Recording(bag) as recording:
            for frame in recording.frames():
                if frame.depth is not None:
                    metrics.add(np.full_like(frame.depth, median), frame.depth)
        per_bag.append((bag.name.split("-")[0], {"frames": metrics.frames,
                                                 **metrics.results()}))
    return median, aggregate(per_bag)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for recordings and runs")
    ap.add_argument("--steps", type=int, default=3000, help="steps of the odometry route")
    ap.add_argument("--learned-steps", type=int, help="steps of the learned route "
                                                        "(default: --steps)")
    ap.add_argument("--train-bags", type=int, default=8)
    ap.add_argument("--train-frames", type=int, default=250)
    ap.add_argument("--eval-bags", type=int, default=4)
    ap.add_argument("--eval-frames", type=int, default=100)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    train_bags = simulate(args.work / "train", range(args.train_bags), args.train_frames)
    eval_bags = simulate(args.work / "eval", range(EVAL_SEED_START,
                                                   EVAL_SEED_START + args.eval_bags),
                         args.eval_frames)
    routes = {"odometry": args.steps, "learned": args.learned_steps or args.steps}
    runs = {route: train("train-teacher", args.work / route, train_bags, steps,
                         f"teacher:\n  data:\n    pose: {route}\n")
            for route, steps in routes.items()}
    results = {route: evaluate(Path(run["checkpoint"]), eval_bags) for route, run in runs.items()}
    median, results["baseline"] = median_baseline(train_bags, eval_bags)
    info = json.loads(subprocess.run([*LUMDE, "info", "--model", runs["odometry"]["checkpoint"],
                                      "--json"], check=True, capture_output=True,
                                     text=True).stdout)
    print(f"\nteacher: {info['parameters'] / 1e6:.2f} M parameters, "
          f"{info['macs'] / 1e9:.2f} GMACs at {info['input_width']}x{info['input_height']}; "
          + ", ".join(f"{route} route {runs[route]['step']} steps at "
                      f"{runs[route]['s_per_step']} s/step" for route in routes))
    print(f"training: {args.train_bags} recordings x {args.train_frames} frames (seeds 0.."
          f"{args.train_bags - 1}); held out: {args.eval_bags} x {args.eval_frames} (seeds "
          f"{EVAL_SEED_START}..{EVAL_SEED_START + args.eval_bags - 1}); depth in "
          f"({MIN_DEPTH_M}, {MAX_DEPTH_M}) m; baseline = training median {median:.2f} m")
    for protocol in PROTOCOLS:
        print("\n" + table_header(protocol))
        for split in ("all", *KINDS):
            for name in ("baseline", "odometry", "learned"):
                print(table_row(f"  {split:<9} {name}", results[name][split][protocol]))
    (args.work / "results.json").write_text(json.dumps(
        {"runs": runs, "results": results, "baseline_median_m": median, "info": info},
        indent=2))


if __name__ == "__main__":
    main()
