"""Reproduce the weights shipped in weights/: simulate the training recordings (varied worlds,
training split), train the default teacher on the odometry route with depth hints and distil
the default student (full LUMDE) with the project's own commands, check that half-precision
storage changes no held-out figure (evaluation split, scenes never seen in training) by more
than TOLERANCE, and write teacher.pt and student.pt.

    .venv/bin/python scripts/train_default_models.py --work /tmp/default-models

The defaults are the recipe the shipped pair came from. Re-running with the same --work reuses
finished recordings and runs and resumes interrupted ones; --weights writes a candidate pair
elsewhere to compare recipes before shipping one.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from training_runs import (MAX_DEPTH_M, MIN_DEPTH_M, aggregate, layout_of,  # noqa: E402
                           simulate, train)

from lumde_ros.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from lumde_ros.evaluation import PROTOCOLS, evaluate_recording  # noqa: E402
from lumde_ros.inference import limit_threads  # noqa: E402
from lumde_ros.sim.recording import EVAL_SEED_START  # noqa: E402

# Held out: the evaluation split's first recordings, the frames the README's figures use.
EVAL_RECORDINGS, EVAL_FRAMES = 8, 60
# Half precision is kept only if no reported metric moves by more than this.
TOLERANCE = 5e-4
# Tensors up to this size (biases, normalisation statistics) stay float32: they are a
# negligible share of the bytes and the most sensitive to rounding.
SMALL = 4096


def half(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint with its large float tensors stored as float16 (loaded back into
    float32)."""
    return dataclasses.replace(checkpoint, state_dict={
        k: v.half() if v.is_floating_point() and v.numel() > SMALL else v
        for k, v in checkpoint.state_dict.items()})


def metrics(path: Path, bags: list[Path]) -> list[float]:
    """The held-out figures the README reports: frame-weighted over all recordings."""
    per_bag = [(layout_of(bag), evaluate_recording(bag, path, MIN_DEPTH_M, MAX_DEPTH_M))
               for bag in bags]
    overall = aggregate(per_bag)["all"]
    return [overall[p][m] for p in PROTOCOLS for m in sorted(overall[p])]


def ship(run_checkpoint: Path, target: Path, eval_bags: list[Path]) -> str:
    """Write the checkpoint to target, in float16 when that changes no metric; returns the
    storage."""
    checkpoint = load_checkpoint(run_checkpoint)
    provenance = dict(checkpoint.provenance, shipped_by=shlex.join(sys.argv),
                      run=str(run_checkpoint))
    candidate = save_checkpoint(dataclasses.replace(half(checkpoint), provenance=dict(
        provenance, storage="float16")), target.with_suffix(".half.pt"))
    full, reduced = metrics(run_checkpoint, eval_bags), metrics(candidate, eval_bags)
    worst = max(abs(a - b) for a, b in zip(full, reduced))
    if worst <= TOLERANCE:
        candidate.replace(target)
        storage = "float16"
    else:
        candidate.unlink()
        save_checkpoint(dataclasses.replace(checkpoint, provenance=dict(
            provenance, storage="float32")), target)
        storage = "float32"
    print(f"{target}: {storage} (largest metric change in float16 "
          f"{worst:.2e}), {target.stat().st_size / 1e6:.1f} MB")
    return storage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for recordings and runs")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights",
                    help="where teacher.pt and student.pt are written")
    ap.add_argument("--train-recordings", type=int, default=60, help="seeds 0..N-1")
    ap.add_argument("--train-frames", type=int, default=100, help="frames per recording")
    ap.add_argument("--teacher-steps", type=int, default=4000)
    ap.add_argument("--student-steps", type=int, default=2000)
    ap.add_argument("--input-width", type=int, default=128, help="both networks' input")
    ap.add_argument("--input-height", type=int, default=96)
    ap.add_argument("--channel-shuffle", action=argparse.BooleanOptionalAction, default=False,
                    help="data.channel_shuffle of both runs")
    ap.add_argument("--floor-prior", action=argparse.BooleanOptionalAction, default=False,
                    help="model.floor_prior of both networks")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per run (0: all)")
    args = ap.parse_args()
    limit_threads(args.threads)
    train_bags = simulate(args.work / "train", range(args.train_recordings), args.train_frames)
    eval_bags = simulate(args.work / "eval", range(EVAL_SEED_START,
                                                   EVAL_SEED_START + EVAL_RECORDINGS),
                         EVAL_FRAMES)
    settings = (f"  run: {{threads: {args.threads}}}\n  data:\n    pose: odometry\n"
                f"    channel_shuffle: {str(args.channel_shuffle).lower()}\n"
                f"    input_width: {args.input_width}\n    input_height: {args.input_height}\n"
                f"  model: {{floor_prior: {str(args.floor_prior).lower()}}}\n")
    teacher = Path(train("train-teacher", args.work / "teacher", train_bags, args.teacher_steps,
                         "teacher:\n" + settings)["checkpoint"])
    student = Path(train("distill", args.work / "student", train_bags, args.student_steps,
                         "distill:\n" + settings, ("--teacher", str(teacher)))["checkpoint"])
    args.weights.mkdir(parents=True, exist_ok=True)
    ship(teacher, args.weights / "teacher.pt", eval_bags)
    ship(student, args.weights / "student.pt", eval_bags)


if __name__ == "__main__":
    main()
