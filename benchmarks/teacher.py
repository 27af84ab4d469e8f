"""Teacher benchmark: simulate training and held-out evaluation recordings (disjoint seeds; on
the varied worlds the evaluation scenes' layouts, objects and textures are never seen in
training), train the default teacher on both pose routes (odometry; learned pose only) with
`lumde train-teacher`, evaluate with `lumde eval` (median-scaled and unscaled) beside the
constant baseline (each image's own median depth) on the same frames, per layout and over
all, and on the real Middlebury photograph, and each pose network's turns against odometry.
One run, one table.

    .venv/bin/python benchmarks/teacher.py --work /tmp/teacher-bench [--steps 3000]

Re-running with the same --work reuses finished recordings and runs and resumes unfinished
runs (the trainer's --resume), so an interrupted benchmark loses nothing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from training_runs import (LUMDE, MAX_DEPTH_M, MIN_DEPTH_M, PROTOCOLS, evaluate,
                           evaluate_real, simulate, table_header, table_row, train,
                           yaw_agreement)

from lumde_ros.evaluation import CONSTANT
from lumde_ros.sim.recording import EVAL_SEED_START


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
    ap.add_argument("--world", choices=("varied", "classic"), default="varied")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    train_bags = simulate(args.work / "train", range(args.train_bags), args.train_frames,
                          args.world)
    eval_bags = simulate(args.work / "eval", range(EVAL_SEED_START,
                                                   EVAL_SEED_START + args.eval_bags),
                         args.eval_frames, args.world)
    routes = {"odometry": args.steps, "learned": args.learned_steps or args.steps}
    runs = {route: train("train-teacher", args.work / route, train_bags, steps,
                         f"teacher:\n  data:\n    pose: {route}\n")
            for route, steps in routes.items()}
    results = {route: evaluate(Path(run["checkpoint"]), eval_bags) for route, run in runs.items()}
    real = {route: evaluate_real(Path(run["checkpoint"])) for route, run in runs.items()}
    yaws = {route: yaw_agreement(args.work / route, eval_bags) for route in routes}
    info = json.loads(subprocess.run([*LUMDE, "info", "--model", runs["odometry"]["checkpoint"],
                                      "--json"], check=True, capture_output=True,
                                     text=True).stdout)
    print(f"\nteacher: {info['parameters'] / 1e6:.2f} M parameters, "
          f"{info['macs'] / 1e9:.2f} GMACs at {info['input_width']}x{info['input_height']}; "
          + ", ".join(f"{route} route {runs[route]['step']} steps at "
                      f"{runs[route]['s_per_step']} s/step" for route in routes))
    print(f"{args.world} worlds; training: {args.train_bags} recordings x {args.train_frames} "
          f"frames (seeds 0..{args.train_bags - 1}); held out: {args.eval_bags} x "
          f"{args.eval_frames} (seeds {EVAL_SEED_START}..{EVAL_SEED_START + args.eval_bags - 1})"
          f"; depth in ({MIN_DEPTH_M}, {MAX_DEPTH_M}) m; constant = each image's median depth")
    for protocol in PROTOCOLS:
        print("\n" + table_header(protocol))
        for split in results["odometry"]:
            print(table_row(f"  {split:<9} constant", results["odometry"][split][CONSTANT]))
            for route in routes:
                print(table_row(f"  {split:<9} {route}", results[route][split][protocol]))
        print(table_row("  Middlebury constant (real photo)", real["odometry"][CONSTANT]))
        for route in routes:
            print(table_row(f"  Middlebury {route}", real[route][protocol]))
    print("\npose network's turn between consecutive held-out frames against odometry")
    for route, yaw in yaws.items():
        print(f"  {route:<9} slope {yaw['slope']:.3f}, correlation {yaw['correlation']:.3f} "
              f"({yaw['pairs']} pairs)")
    (args.work / "results.json").write_text(json.dumps(
        {"runs": runs, "results": results, "middlebury": real, "yaw": yaws, "info": info},
        indent=2))


if __name__ == "__main__":
    main()
