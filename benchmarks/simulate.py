"""Simulator throughput: frames rendered and written per second and bag size per 1000
frames, for every layout of the varied worlds and for the classic world, at 320x240 (the
classic size, so the rows compare), plus each scene's own drawn size and a sqlite3 row.

    .venv/bin/python benchmarks/simulate.py [--frames 100]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lumde_ros.sim.recording import EVAL_SEED_START, SimulateOptions, simulate
from lumde_ros.sim.world import load_sim_config

SIZE = {"width": 320, "height": 240}


def rate(tmp: Path, name: str, frames: int, **options) -> tuple[float, dict]:
    """Frames per second of one `simulate` call (textures already cached) and its summary."""
    start = time.perf_counter()
    summary = simulate(SimulateOptions(out=tmp / name, frames=frames, **options),
                       progress=False)
    return frames / (time.perf_counter() - start), summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    split = load_sim_config()["split"]
    cases = [(f"varied {layout}", dict(seed=seed, layout=layout, **SIZE))
             for name, seed in (("training", 1), ("evaluation", EVAL_SEED_START + 1))
             for layout in split[name]["layouts"]]
    cases += [("varied hand-held", dict(seed=2, motion="handheld", **SIZE)),
              ("varied, drawn size", dict(seed=3)),
              ("varied room, sqlite3", dict(seed=1, layout="room", storage="sqlite3", **SIZE)),
              ("classic room", dict(seed=1, world="classic", layout="room")),
              ("classic corridor", dict(seed=1, world="classic", layout="corridor"))]
    with tempfile.TemporaryDirectory() as tmp:
        rate(Path(tmp), "warm-up", 2, seed=EVAL_SEED_START)      # texture cache
        rows = []
        for k, (name, options) in enumerate(cases):
            fps, summary = rate(Path(tmp), str(k), args.frames, **options)
            rows.append(fps)
            print(f"{name:>22}: {fps:6.1f} frames/s, {summary['size_mb'] * 1000 / args.frames:6.0f}"
                  f" MB per 1000 frames ({summary['width']}x{summary['height']} rgb8 + 32FC1 "
                  f"ground truth{', odometry, tf' if summary['odometry'] else ''})")
    varied = [fps for (name, _), fps in zip(cases, rows) if name.startswith("varied ")
              and "," not in name]
    classic = [fps for (name, _), fps in zip(cases, rows) if name.startswith("classic")]
    print(f"median at 320x240: varied {statistics.median(varied):.1f} frames/s, classic "
          f"{statistics.median(classic):.1f} frames/s (ratio "
          f"{statistics.median(varied) / statistics.median(classic):.2f})")


if __name__ == "__main__":
    main()
