"""The gate a fine-tuned student passes before it may serve: on frames held out of training,
its depth must be finite and must explain the neighbouring frames (photometric reprojection
error) at most `margin` worse than the serving model's.

With odometry the frames are reprojected with the odometry motion, so the gate judges the
depth alone, metric scale included: a model whose metres are wrong warps to the wrong pixels.
Without odometry the motion comes from the new run's pose network, whose translation is in
units of each frame's median depth (as it was trained, losses/self_supervised.py); each
model's depth is then divided by its median per frame and tried at a few global scale factors
around that, judged at its best one, so the gate compares the shape of the depth, not a unit.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lumde_ros.data.triplets import TripletData, camera_motions
from lumde_ros.errors import InferenceError, ModelLoadError
from lumde_ros.geometry import Intrinsics, warp
from lumde_ros.inference import Predictor, load_model_or_default, resolve_scale
from lumde_ros.losses.photometric import photometric_error
from lumde_ros.losses.self_supervised import forward_motions

# Factors on median-normalised depth tried without odometry (a pose network is never exact).
RELATIVE_SCALES = tuple(float(2.0 ** e) for e in np.linspace(-3, 3, 25))
CHUNK = 8


def model_depths(model: str | Path | None, data: TripletData) -> tuple[np.ndarray, bool]:
    """The served depth (N, 1, H, W) in metres (or the model's unit) of every held-out target
    frame, at the data's size, through the predictor the depth node uses; and whether the
    model's depth is metric."""
    checkpoint, onnx_path, _ = load_model_or_default(model)
    predictor = Predictor(checkpoint, backend="auto" if onnx_path else "torch",
                          onnx_path=onnx_path)
    scale = resolve_scale(checkpoint, "checkpoint", 1.0)
    height, width = data.images.shape[-2:]
    frames = data.triplets[:, 1]
    targets = data.images[frames].permute(0, 2, 3, 1).numpy()
    # Poses over the floor: NaN where tf gives none (the predictor's floor prior: unknown).
    floors = [None] * len(frames) if data.floors is None else data.floors[frames].numpy()
    depths = []
    for rgb, k, pose in zip(targets, data.k[frames].numpy(), floors):
        try:
            depths.append(predictor.predict(
                np.ascontiguousarray(rgb), scale, (width, height),
                intrinsics=Intrinsics.from_matrix(k, width, height), floor_from_camera=pose))
        except InferenceError:
            depths.append(np.full((height, width), np.nan, np.float32))
    return np.stack(depths)[:, None], checkpoint.metric


def reprojection_error(depths: np.ndarray, data: TripletData, motions: torch.Tensor,
                       ssim_weight: float, scales: tuple[float, ...]) -> tuple[float, float]:
    """Mean per-pixel minimum photometric error of the two sources warped onto each target
    with `depths` (N, 1, H, W) times each of `scales` and `motions` (N, 2, 4, 4); returns
    (error, scale) at the best scale, or (nan, nan) when any depth is not finite."""
    if not np.isfinite(depths).all() or (depths <= 0).any():
        return math.nan, math.nan
    totals = np.zeros(len(scales))
    with torch.no_grad():
        for start in range(0, len(data), CHUNK):
            rows = data.triplets[start:start + CHUNK]
            frames = data.images[rows].float() / 255
            target, k = frames[:, 1], data.k[rows[:, 1]]
            depth = torch.from_numpy(depths[start:start + CHUNK])
            for i, factor in enumerate(scales):
                errors = torch.cat([photometric_error(
                    warp(frames[:, j], depth * factor, motions[start:start + CHUNK, n], k)[0],
                    target, ssim_weight) for n, j in enumerate((0, 2))], dim=1)
                totals[i] += float(errors.min(dim=1)[0].mean(dim=(1, 2)).sum())
    best = int(np.argmin(totals))
    return float(totals[best] / len(data)), scales[best]


def held_out_motions(data: TripletData, pose_net: nn.Module | None) -> torch.Tensor:
    """Motions target -> (previous, next) of every held-out triplet: odometry where the data
    has it, else the pose network's."""
    if data.poses is not None:
        return camera_motions(data.poses, data.triplets).float()
    if pose_net is None:
        raise ValueError("held-out frames without odometry need a pose network")
    batch = data.batch(range(len(data)), torch.Generator(), flip=False, color_jitter=0.0)
    with torch.no_grad():
        return forward_motions(pose_net.eval(), batch)


def relative_reason(data: TripletData) -> str:
    """Why a fine-tune on `data` learns relative depth, and what gives metres."""
    return (f"the camera motion is learned, not measured ({data.why_relative}); record "
            "odometry and the camera mounting (/tf_static) for metric depth")


def gate(candidate: str | Path, serving: str | Path | None, data: TripletData,
         pose_net: nn.Module | None, margin: float, ssim_weight: float) -> dict[str, Any]:
    """Judge `candidate` against the `serving` model (None: the package's default) on the
    held-out triplets `data`. Returns both models' figures, whether the candidate is
    accepted and why."""
    motions = held_out_motions(data, pose_net)
    scales = (1.0,) if data.metric else RELATIVE_SCALES
    figures = {}
    for role, model in (("candidate", candidate), ("serving", serving)):
        figures[role] = {"model": str(model) if model else "(default)"}
        try:
            depths, metric = model_depths(model, data)
            if not data.metric:
                depths = depths / np.median(depths, axis=(1, 2, 3), keepdims=True)
        except ModelLoadError as err:  # judged as unusable, with the loader's reason
            figures[role].update(photometric_error=math.nan, finite=False, scale=math.nan,
                                 error=str(err))
            continue
        error, scale = reprojection_error(depths, data, motions, ssim_weight, scales)
        figures[role].update(photometric_error=error, finite=math.isfinite(error), scale=scale,
                             metric=metric)
    new, old = figures["candidate"]["photometric_error"], figures["serving"]["photometric_error"]
    if "error" in figures["candidate"]:
        accepted, reason = False, f"the candidate cannot serve: {figures['candidate']['error']}"
    elif figures["serving"].get("metric") and not figures["candidate"]["metric"]:
        accepted, reason = False, ("the candidate's depth is relative and would replace metric "
                                   f"depth: {relative_reason(data)}")
    elif not math.isfinite(new):
        accepted, reason = False, "the candidate's depth is not finite (or not positive) on " \
                                  "some held-out frame"
    elif math.isfinite(old) and new > old * (1 + margin):
        accepted, reason = False, (f"photometric error {new:.4f} is more than {margin:.0%} "
                                   f"worse than the serving model's {old:.4f}")
    else:
        accepted, reason = True, (f"photometric error {new:.4f} against the serving model's "
                                  f"{old:.4f} (margin {margin:.0%})")
    return {"accepted": accepted, "reason": reason, "margin": margin, "triplets": len(data),
            "motion": "odometry" if data.metric else "pose network", **figures}
