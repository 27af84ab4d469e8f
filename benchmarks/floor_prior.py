"""What tf alone says of depth: score the floor prior (geometry.floor_prior: each pixel's depth
were it floor, from the camera matrix and the camera's pose over the floor; capped at --cap-m
above the horizon and beyond) as if it were a depth prediction, median-scaled and unscaled,
beside the constant baseline (each image's median depth) on the same frames of held-out
recordings (the evaluation split: layouts, objects and textures never used in training). No
network and no image is involved: a model that scores below this line has not learned what a
robot's tf already knows.

    .venv/bin/python benchmarks/floor_prior.py --work /tmp/floor-prior [--bags 8 --frames 60]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from training_runs import (MAX_DEPTH_M, MIN_DEPTH_M, PROTOCOLS, aggregate, layout_of,
                           simulate, table_header, table_row)

from lumde_ros.data.recording import Recording
from lumde_ros.evaluation import CONSTANT, ProtocolMetrics
from lumde_ros.geometry import FLOOR_PRIOR_MAX_INV, floor_prior
from lumde_ros.sim.recording import EVAL_SEED_START


def prior_depth(frame, cap_m: float) -> np.ndarray:
    """The floor prior of a recorded frame as depth (m), capped at cap_m."""
    k = torch.from_numpy(frame.intrinsics.matrix())[None]
    prior = floor_prior(k, torch.from_numpy(frame.floor_from_camera)[None],
                        *frame.rgb.shape[:2])[0, 0].numpy() * FLOOR_PRIOR_MAX_INV
    with np.errstate(divide="ignore"):
        return np.minimum(np.where(prior > 0, 1 / prior, np.inf), cap_m).astype(np.float32)


def score(bag: Path, cap_m: float) -> dict:
    """Both protocols and the constant baseline over the bag's frames that tf places."""
    metrics = ProtocolMetrics(MIN_DEPTH_M, MAX_DEPTH_M)
    with Recording(bag) as recording:
        for frame in recording.frames():
            if frame.depth is not None and frame.floor_from_camera is not None:
                metrics.add(prior_depth(frame, cap_m), frame.depth)
    return {"frames": metrics.frames, **metrics.results()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the recordings")
    ap.add_argument("--bags", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--cap-m", type=float, default=6.0, help="depth where no floor is seen")
    args = ap.parse_args()
    bags = simulate(args.work / "eval", range(EVAL_SEED_START, EVAL_SEED_START + args.bags),
                    args.frames)
    per_bag = [(layout_of(bag), score(bag, args.cap_m)) for bag in bags]
    print(f"floor prior capped at {args.cap_m} m; held out: {args.bags} x {args.frames} frames; "
          f"depth in ({MIN_DEPTH_M}, {MAX_DEPTH_M}) m")
    print("delta1 per recording")
    for bag, (layout, result) in zip(bags, per_bag):
        print(f"  {bag.name:<12} {layout:<8} constant {result[CONSTANT]['a1']:.3f}  "
              + "  ".join(f"{p} {result[p]['a1']:.3f}" for p in PROTOCOLS))
    print(table_header("frame-weighted means"))
    for split, result in aggregate(per_bag).items():
        print(table_row(f"  {split:<9} constant", result[CONSTANT]))
        for protocol in PROTOCOLS:
            print(table_row(f"  {split:<9} {protocol}", result[protocol]))


if __name__ == "__main__":
    main()
