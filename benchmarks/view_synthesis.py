"""Does a model minimise the loss it was trained on? The photometric error of view synthesis
(the teacher's loss at full size: min over the two neighbours, auto-masked, odometry motion)
on consecutive keyframe triplets of recordings with ground truth, through each of: the
ground-truth depth, the model's depth, the model's depth rescaled to the true median, and
the per-image median depth everywhere (the constant baseline), and ground truth halved and
doubled. Where ground truth scores far below the constant, depth is there to be learned
from these frames; a model above the constant has not learned it, on its own training
recordings too if those are given.

    .venv/bin/python benchmarks/view_synthesis.py --model RUN/teacher.pt --bag BAG [--bag ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.data.recording import RecordedFrame, Recording
from lumde_ros.data.sampling import triplets
from lumde_ros.data.triplets import Batch
from lumde_ros.inference import DepthScale, Predictor, resize_image
from lumde_ros.losses.photometric import unmoved_error
from lumde_ros.losses.self_supervised import reprojection
from lumde_ros.training.config import TeacherConfig, load_section

CANDIDATES = ("ground truth", "model", "model, true median", "constant (median)",
              "ground truth x 0.5", "ground truth x 2")


def triplet_errors(predictor: Predictor, triplet: tuple[RecordedFrame, ...],
                   ssim_weight: float) -> dict[str, float]:
    """Mean masked photometric error of the middle frame synthesised from its neighbours
    through each of CANDIDATES' depths, at the network's size."""
    size = (predictor.width, predictor.height)
    previous, target, following = triplet
    images = [torch.from_numpy(resize_image(f.rgb, *size)).permute(2, 0, 1)[None].float() / 255
              for f in triplet]
    k = torch.from_numpy(target.intrinsics.resized(*size).matrix()).float()[None]
    motions = torch.from_numpy(np.stack([np.linalg.inv(f.odom_from_camera)
                                         @ target.odom_from_camera
                                         for f in (previous, following)])).float()[None]
    batch = Batch(images[1], [images[0], images[2]], k, motions)
    truth = torch.from_numpy(np.nan_to_num(target.depth, nan=0.0, posinf=0.0)).float()
    truth = F.interpolate(truth[None, None], size[::-1], mode="nearest")
    truth = torch.where(truth > 0, truth, truth.max())  # no return (sky, holes): far
    scale = DepthScale(predictor.checkpoint.depth_scale, predictor.checkpoint.metric)
    model = torch.from_numpy(predictor.predict(
        target.rgb, scale, intrinsics=target.intrinsics,
        floor_from_camera=target.floor_from_camera))[None, None]
    model = torch.nan_to_num(model, nan=float(model.nanmedian()))
    median = truth.median()
    depths = dict(zip(CANDIDATES, (truth, model, model * median / model.median(),
                                   torch.full_like(truth, float(median)), truth / 2,
                                   truth * 2)))
    unmoved = unmoved_error(batch.sources, batch.target, ssim_weight)
    out = {}
    for name, depth in depths.items():
        error, mask = reprojection(depth, batch, batch.motions, ssim_weight, unmoved)
        out[name] = float((error * mask).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--bag", type=Path, action="append", required=True,
                    help="a recording with odometry and ground truth (repeat)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    config = load_section("teacher", TeacherConfig)
    predictor = Predictor(load_checkpoint(args.model), threads=args.threads)
    rows = []
    for bag in args.bag:
        with Recording(bag) as recording:
            frames = list(recording.frames())
        if any(f.odom_from_camera is None or f.depth is None for f in frames):
            raise SystemExit(f"{bag}: every frame needs odometry and ground-truth depth")
        errors = [triplet_errors(predictor, tuple(frames[i] for i in t),
                                 config.loss.ssim_weight)
                  for t in triplets(frames, config.data.min_baseline_m)]
        rows += errors
        print(f"{bag.name}: {len(errors)} triplets, " + ", ".join(
            f"{name} {np.mean([e[name] for e in errors]):.4f}" for name in CANDIDATES[:4]),
            flush=True)
    print(f"\nall {len(rows)} triplets at {predictor.width}x{predictor.height}, "
          "photometric error (lower explains the frames better):")
    for name in CANDIDATES:
        print(f"  {name:<20} {np.median([r[name] for r in rows]):.4f} median, "
              f"{np.mean([r[name] for r in rows]):.4f} mean")


if __name__ == "__main__":
    main()
