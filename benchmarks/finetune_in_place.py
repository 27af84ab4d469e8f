"""What the robot's own recordings give it: on each held-out place (evaluation seeds, scenes
training never saw), the shipped student and teacher on a second visit (`lumde simulate
--visit 2`: another path through the same scene, camera and light), before and after `lumde
finetune` on a first visit (`--visit 1`), as ~/train runs it (config/trainer.yaml's steps and
rate), beside the constant baseline on the same frames. One fine-tune per place, as a robot
that works in one building would run it.

    .venv/bin/python benchmarks/finetune_in_place.py --work /tmp/in-place [--places 4]
        [--no-odometry]

--no-odometry records the first visit without odometry: the learned route, whose metres come
from the camera's height over the floor (tf) where the fit finds it. Recordings and finished
fine-tunes in --work are reused.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np
from training_runs import LUMDE, evaluate, layout_of, simulate

from lumde_ros.evaluation import CAMERA_HEIGHT, CONSTANT
from lumde_ros.inference import shipped_weights
from lumde_ros.sim.recording import EVAL_SEED_START

ROLES = ("student", "teacher")
# Passed on to lumde finetune when given; the fine-tunes' folder is named after them.
FINETUNE_FLAGS = ("teacher-steps", "student-steps", "learning-rate")
# The fine-tune's exit status when its gate refuses the new student (lumde finetune --help).
REJECTED = 3


def fine_tune(run: Path, bag: Path, options: list[str]) -> tuple[dict | None, str]:
    """`lumde finetune` on one recording with `options` (flags), resumed if stopped: its
    summary (None when it refused the recording) and the minutes it took or why it refused."""
    summary = run.with_suffix(".json")
    run.parent.mkdir(parents=True, exist_ok=True)
    if summary.exists() and json.loads(summary.read_text()).get("finished"):
        return json.loads(summary.read_text()), "-"
    args = [*LUMDE, "finetune", "--out", str(run), "--json", str(summary)]
    args += ["--resume"] if (run / "teacher").exists() else ["--bag", str(bag), *options]
    start = time.monotonic()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, REJECTED):
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        return None, lines[-1]
    return json.loads(summary.read_text()), f"{(time.monotonic() - start) / 60:.1f}"


def row(name: str, values: list[float]) -> str:
    """constant | then each model's median-scaled / unscaled / camera-height delta1."""
    text = ["-" if math.isnan(v) else f"{v:.3f}" for v in values]  # NaN: no such line
    return f"{name} | {text[0]} | " + " | ".join(" / ".join(text[i:i + 3])
                                                for i in range(1, len(text), 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for recordings and runs")
    ap.add_argument("--places", type=int, default=4, help="evaluation seeds from the first")
    ap.add_argument("--record-frames", type=int, default=120, help="frames of the first visit")
    ap.add_argument("--eval-frames", type=int, default=60, help="frames of the second visit")
    ap.add_argument("--odometry", action=argparse.BooleanOptionalAction, default=True,
                    help="record the first visit with odometry")
    ap.add_argument("--threads", type=int, default=2, help="of each fine-tune")
    for flag in FINETUNE_FLAGS:
        ap.add_argument(f"--{flag}", help="lumde finetune's (default: config/trainer.yaml's)")
    args = ap.parse_args()
    changed = {f: v for f in FINETUNE_FLAGS
               if (v := getattr(args, f.replace("-", "_"))) is not None}
    options = ["--threads", str(args.threads),
               *(a for f, v in changed.items() for a in (f"--{f}", v))]
    seeds = range(EVAL_SEED_START, EVAL_SEED_START + args.places)
    route = "odometry" if args.odometry else "no-odometry"
    recorded = simulate(args.work / f"visit-1-{route}", seeds, args.record_frames, visit=1,
                        odometry=args.odometry)
    evaluated = simulate(args.work / "visit-2", seeds, args.eval_frames, visit=2)
    runs = args.work / "-".join(["finetune", route,
                                  *(f"{f}-{v}" for f, v in changed.items())])
    print(f"fine-tune: {' '.join(options)}")
    print(f"first visit: {args.record_frames} frames, {route}; second visit: "
          f"{args.eval_frames} frames; delta1, depth in (0.1, 10) m, median-scaled / unscaled "
          "/ from the camera's height")
    print("place | constant | student: shipped | fine-tuned | teacher: shipped | fine-tuned "
          "| gate | minutes")
    rows: list[list[float]] = []
    for seed, first, second in zip(seeds, recorded, evaluated):
        summary, minutes = fine_tune(runs / first.name, first, options)
        if summary is None:
            print(f"{seed} {layout_of(second)} | refused: {minutes}", flush=True)
            continue
        run, values = Path(summary["out"]), []
        for role in ROLES:
            # The shipped model's results go to --work, never into the package's weights/.
            for model, folder in ((shipped_weights(role), args.work / f"shipped-{role}"),
                                  (run / role / f"{role}.pt", None)):
                result = evaluate(model, [second], folder)["all"]
                values += [result[key]["a1"] if key in result else math.nan
                           for key in ("median_scaled", "unscaled", CAMERA_HEIGHT)]
        rows.append([result[CONSTANT]["a1"], *values])
        verdict = "accepted" if summary.get("accepted") else "rejected"
        print(row(f"{seed} {layout_of(second)}", rows[-1]) + f" | {verdict} | {minutes}",
              flush=True)
    if rows:
        print(row(f"mean of {len(rows)}", np.nanmean(rows, axis=0).tolist()))


if __name__ == "__main__":
    main()
