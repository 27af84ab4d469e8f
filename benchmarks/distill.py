"""Distillation benchmark: one table from one run on held-out simulated scenes. The teacher;
the student trained self-supervised only (no teacher); student + pixel-wise; + pair-wise;
+ adversarial; full LUMDE (all losses and the student's own pose network). Columns: the
metrics (median-scaled and unscaled), parameters, MACs and CPU forward time at 320x256
(median of 30 after warm-up, PyTorch, 2 threads, all in this run).

    .venv/bin/python benchmarks/distill.py --work /tmp/teacher-bench [--steps 2000] [--jobs 2]

--work is shared with benchmarks/teacher.py: its recordings and its odometry-route teacher
are reused (trained here with the same command when missing). Re-running resumes. --jobs N
trains N students at once, each on cores/N threads (small networks use a core better alone
than two threads share it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from training_runs import (PROTOCOLS, evaluate, evaluate_real, simulate, table_header,
                           table_row, train)

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.evaluation import CONSTANT
from lumde_ros.inference import Predictor
from lumde_ros.models import build_depth_net, count_macs
from lumde_ros.sim.recording import EVAL_SEED_START

# name -> losses, in the order the ablation adds them
VARIANTS = {"student, self-supervised only": "photo", "student + pixel": "pixel",
            "student + pixel + pair": "pixel,pair",
            "student + pixel + pair + gan": "pixel,pair,gan",
            "full LUMDE (all + own pose)": "pixel,pair,gan,photo"}
WIDTH, HEIGHT = 320, 256


def forward_ms(model: Path, runs: int = 30) -> float:
    """Median PyTorch forward time of the model at 320x256 on 2 threads."""
    predictor = Predictor(load_checkpoint(model), backend="torch", threads=2,
                          input_width=WIDTH, input_height=HEIGHT)
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    for _ in range(5):
        predictor.forward(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predictor.forward(image)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cost(model: Path) -> dict[str, float]:
    checkpoint = load_checkpoint(model)
    net = build_depth_net(checkpoint.arch, checkpoint.arch_config)
    return {"parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
            "gmacs": count_macs(net, WIDTH, HEIGHT) / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2000, help="steps of each student")
    ap.add_argument("--teacher-steps", type=int, default=3000)
    ap.add_argument("--train-bags", type=int, default=8)
    ap.add_argument("--train-frames", type=int, default=250)
    ap.add_argument("--eval-bags", type=int, default=4)
    ap.add_argument("--eval-frames", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1, help="students trained at once")
    ap.add_argument("--world", choices=("varied", "classic"), default="varied")
    args = ap.parse_args()
    train_bags = simulate(args.work / "train", range(args.train_bags), args.train_frames,
                          args.world)
    eval_bags = simulate(args.work / "eval", range(EVAL_SEED_START,
                                                   EVAL_SEED_START + args.eval_bags),
                         args.eval_frames, args.world)
    teacher = Path(train("train-teacher", args.work / "odometry", train_bags,
                         args.teacher_steps, "teacher:\n  data:\n    pose: odometry\n")
                   ["checkpoint"])
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else 0
    config = f"distill:\n  run:\n    threads: {threads}\n"

    def student(losses: str) -> dict:
        folder = args.work / ("student-" + losses.replace(",", "-"))
        needs_teacher = losses != "photo"
        return train("distill", folder, train_bags, args.steps, config,
                     ("--losses", losses, *(("--teacher", str(teacher)) if needs_teacher else ())))

    with ThreadPoolExecutor(args.jobs) as pool:  # the costliest (full LUMDE) first
        started = list(reversed(VARIANTS.items()))
        done = dict(zip((name for name, _ in started),
                        pool.map(student, (losses for _, losses in started))))
    runs = {name: done[name] for name in VARIANTS}
    models = {"teacher": teacher, **{name: Path(run["checkpoint"]) for name, run in runs.items()}}
    results = {name: {"metrics": evaluate(model, eval_bags)["all"], **cost(model),
                      "forward_ms": forward_ms(model), "middlebury": evaluate_real(model)}
               for name, model in models.items()}
    print(f"\nheld out: {args.eval_bags} x {args.eval_frames} frames (seeds "
          f"{EVAL_SEED_START}..); students {args.steps} steps each; forward: PyTorch, 2 threads, "
          f"{WIDTH}x{HEIGHT}, median of 30")
    print(f"{'':<32}{'AbsRel':>8}{'d1':>8}{'AbsRel':>8}{'d1':>8}{'params':>9}{'GMAC':>8}"
          f"{'fwd ms':>8}\n{'':<32}{'median-scaled':>16}{'unscaled':>16}")
    for name, r in results.items():
        m, u = r["metrics"]["median_scaled"], r["metrics"]["unscaled"]
        print(f"{name:<32}{m['abs_rel']:8.3f}{m['a1']:8.3f}{u['abs_rel']:8.3f}{u['a1']:8.3f}"
              f"{r['parameters_m']:8.2f}M{r['gmacs']:8.3f}{r['forward_ms']:8.2f}")
    full, base = results["full LUMDE (all + own pose)"], results["teacher"]
    gap = full["metrics"]["median_scaled"]["a1"] - base["metrics"]["median_scaled"]["a1"]
    print(f"\nfull LUMDE vs teacher: delta1 {100 * gap:+.1f} points (median-scaled), MACs "
          f"{full['gmacs'] / base['gmacs']:.1%} of the teacher's")
    for protocol in PROTOCOLS:
        print("\n" + table_header(protocol))
        print(table_row("  constant (per-image median)", base["metrics"][CONSTANT]))
        for name, r in results.items():
            print(table_row(f"  {name}", r["metrics"][protocol]))
        print(table_row("  Middlebury photo, constant", base["middlebury"][CONSTANT]))
        for name, r in results.items():
            print(table_row(f"  Middlebury photo, {name}", r["middlebury"][protocol]))
    (args.work / "distill-results.json").write_text(json.dumps(
        {"runs": runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
