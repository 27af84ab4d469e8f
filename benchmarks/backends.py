"""Backends compared in one run: the network forward alone per backend at 320x256 for the
default student and the default teacher, then the depth node end to end per backend (serving
the default student at its own input size) with a 30 Hz 640x480 camera in another process and
the point cloud on.

The forward times are taken in interleaved rounds (every backend once per round, the order
rotating), each round the median of 50 forwards after warm-up: a shared machine's load drifts
over seconds, and timing one backend after the other lets that drift decide the ratio. Each
round's speed-up pairs forwards measured seconds apart; the median over rounds is reported.

    .venv/bin/python benchmarks/backends.py [--seconds 15] [--threads 2] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics

from depth_node import default_predictor, forward_ms, measure_node

from lumde_ros.inference import installed_backends


def interleaved_forward_ms(role: str, backends: list[str], threads: int,
                           rounds: int) -> dict[str, list[float]]:
    """Per backend, the median forward of each round, for `role`'s default model."""
    predictors = {b: default_predictor(threads, b, role=role, width=320, height=256)
                  for b in backends}
    medians: dict[str, list[float]] = {b: [] for b in backends}
    for r in range(rounds):
        for b in backends[r % len(backends):] + backends[:r % len(backends)]:
            medians[b].append(forward_ms(predictors[b]))
    return medians


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    backends = installed_backends()
    for role in ("student", "teacher"):
        rounds = interleaved_forward_ms(role, backends, args.threads, args.rounds)
        speedups = [t / min(one_round)
                    for t, one_round in zip(rounds["torch"], zip(*rounds.values()))]
        print(f"default {role}, 320x256, {args.threads} threads: forward, median over "
              f"{args.rounds} interleaved rounds of the median of 50")
        for b, ms in rounds.items():
            ratios = sorted(t / m for t, m in zip(rounds["torch"], ms))
            print(f"  {b:>12}: {statistics.median(ms):7.2f} ms  (rounds {min(ms):.2f}-"
                  f"{max(ms):.2f}); PyTorch eager / this, per round: median "
                  f"{statistics.median(ratios):.2f}x, range {ratios[0]:.2f}-{ratios[-1]:.2f}x")
        print(f"  fastest backend per round over PyTorch eager: median "
              f"{statistics.median(speedups):.2f}x, range {min(speedups):.2f}-"
              f"{max(speedups):.2f}x")
    print("\ndepth node, 640x480 rgb8 camera at 30 Hz, points on:")
    print(f"  {'backend':>12} {'cam Hz':>8} {'node Hz':>8} {'recv Hz':>8} {'lat p50':>8} "
          f"{'lat p95':>8} {'CPU ms/frame':>13} {'dropped':>8}")
    for b in backends:
        m = measure_node(b, args.threads, args.seconds, args.warmup, 30.0)
        print(f"  {b:>12} {m['camera_hz']:8.2f} {m['node_hz']:8.2f} {m['rate_hz']:8.2f} "
              f"{m['latency_p50_ms']:8.2f} "
              f"{m['latency_p95_ms']:8.2f} {m['cpu_ms_per_frame']:13.2f} {m['dropped']:8d}")


if __name__ == "__main__":
    main()
