"""Simulator throughput: frames rendered and written per second, and bag size per 1000 frames,
for each scene kind at the default resolution.

    .venv/bin/python benchmarks/simulate.py [--frames 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lumde_ros.sim.recording import SimulateOptions, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("room", "corridor"):
            for storage in ("mcap", "sqlite3"):
                out = Path(tmp) / f"{kind}-{storage}"
                start = time.perf_counter()
                summary = simulate(SimulateOptions(out=out, seed=1000, frames=args.frames,
                                                   kind=kind, storage=storage), progress=False)
                seconds = time.perf_counter() - start
                print(f"{kind:>9} {storage:>8}: {args.frames / seconds:6.1f} frames/s, "
                      f"{summary['size_mb'] * 1000 / args.frames:7.0f} MB per 1000 frames "
                      f"(320x240 rgb8 + 32FC1 ground truth, odometry, tf)")


if __name__ == "__main__":
    main()
