"""Depth-hint benchmark: simulate recordings (seeds of the varied worlds' training or held-out
evaluation split, layouts cycled), find each frame's hint by plane sweep through odometry
(lumde_ros/data/hints.py, settings from config/train.yaml's `hints`) at the teacher's
training size, and score the hinted pixels against the simulator's ground truth beside the
constant baseline (each image's median depth) on the same pixels. Also: the share of pixels
hinted, and the time per frame.

    .venv/bin/python benchmarks/hints.py --work /tmp/hints-bench [--seeds 4] [--width 128]
        [--split evaluation]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from training_runs import MAX_DEPTH_M, MIN_DEPTH_M, layout_of, simulate

from lumde_ros.data.hints import HintConfig, recording_hints
from lumde_ros.data.recording import Recording
from lumde_ros.evaluation import image_metrics
from lumde_ros.inference import resize_image
from lumde_ros.sim.recording import EVAL_SEED_START
from lumde_ros.training.config import load_section


def hinted(bag: Path, width: int, height: int, config: HintConfig
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """Hints (N, H, W) (NaN: none), ground truth at the same size (nearest) and seconds per
    frame of the sweep, for the frames of `bag` that odometry reaches."""
    rgb, ks, poses, truth = [], [], [], []
    with Recording(bag, ground_truth=True) as recording:
        for frame in recording.frames():
            if frame.odom_from_camera is None or frame.depth is None:
                continue
            rgb.append(resize_image(frame.rgb, width, height))
            ks.append(frame.intrinsics.resized(width, height).matrix())
            poses.append(frame.odom_from_camera)
            truth.append(cv2.resize(frame.depth, (width, height),
                                    interpolation=cv2.INTER_NEAREST))
    started = time.perf_counter()
    hints = recording_hints(torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2),
                            torch.from_numpy(np.stack(ks)), torch.from_numpy(np.stack(poses)),
                            config)[:, 0].numpy()
    seconds = (time.perf_counter() - started) / len(rgb)
    return np.where(hints > 0, hints, np.nan), np.stack(truth), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the recordings")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--split", choices=("training", "evaluation"), default="training",
                    help="seeds from 0 or from the held-out split's first seed")
    args = ap.parse_args()
    config = load_section("hints", HintConfig)
    first = EVAL_SEED_START if args.split == "evaluation" else 0
    bags = simulate(args.work, range(first, first + args.seeds), args.frames)
    print(f"{'recording':<22}{'hinted':>8}{'ms/frame':>10}{'hint a1':>9}{'const a1':>9}"
          f"{'hint rel':>9}{'const rel':>10}")
    rows = []
    for bag in bags:
        hints, truth, seconds = hinted(bag, args.width, args.height, config)
        scores = []
        for hint, gt in zip(hints, truth):
            valid = np.isfinite(gt) & (gt > MIN_DEPTH_M) & (gt < MAX_DEPTH_M)
            if not np.isfinite(hint).any() or not valid.any():
                continue
            constant = np.full_like(gt, np.median(gt[valid]))
            on_hints = np.where(np.isfinite(hint), gt, np.nan)
            scores.append([image_metrics(p, on_hints, MIN_DEPTH_M, MAX_DEPTH_M, False)[m]
                           for p in (hint, constant) for m in ("a1", "abs_rel")])
        valid = np.isfinite(truth) & (truth > MIN_DEPTH_M) & (truth < MAX_DEPTH_M)
        share = float((np.isfinite(hints) & valid).sum() / valid.sum())
        a1, rel, c_a1, c_rel = np.mean(scores, axis=0) if scores else [np.nan] * 4
        rows.append([share, seconds * 1e3, a1, c_a1, rel, c_rel])
        print(f"{bag.name + ' ' + layout_of(bag):<22}{share:8.3f}{seconds * 1e3:10.0f}"
              f"{a1:9.3f}{c_a1:9.3f}{rel:9.3f}{c_rel:10.3f}")
    print(f"{'median':<22}" + "".join(f"{v:{w}.3f}" if i != 1 else f"{v:{w}.0f}"
                                      for i, (v, w) in enumerate(zip(
                                          np.median(rows, axis=0), (8, 10, 9, 9, 9, 10)))))


if __name__ == "__main__":
    main()
