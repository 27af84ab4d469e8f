"""The gate a fine-tuned student passes before it may serve: on frames held out of training,
its depth must be finite and must explain the neighbouring frames (photometric reprojection
error) at most `margin` worse than the serving model's.

With odometry the frames are reprojected with the odometry motion, so the gate judges the
depth alone, metric scale included: a model whose metres are wrong warps to the wrong pixels.
Without odometry the motion comes from the new run's pose network, whose translation is in
units of each frame's median depth (as it was trained, losses/self_supervised.py); each
model's depth is then divided by its median per frame and tried at a few global scale factors
around that, judged at its best one, so the gate compares the shape of the depth, not a unit.
The metres of a model marked metric are then judged by the only measure of length left: where
tf places the camera over the floor, the floor fitted in its held-out depth must lie the
camera's height below the camera (within floor.gate_max_error, or no worse than the serving
model's), as it did on the frames its scale was calibrated on (camera_height.py).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lumde_ros.checkpoint import Checkpoint
from lumde_ros.data.triplets import TripletData, camera_motions
from lumde_ros.errors import InferenceError, ModelLoadError
from lumde_ros.floor import FloorConfig, floor_scales
from lumde_ros.geometry import Intrinsics, warp
from lumde_ros.inference import Predictor, load_model_or_default, resolve_scale
from lumde_ros.losses.photometric import photometric_error
from lumde_ros.losses.self_supervised import forward_motions

# Factors on median-normalised depth tried without odometry (a pose network is never exact).
RELATIVE_SCALES = tuple(float(2.0 ** e) for e in np.linspace(-3, 3, 25))
CHUNK = 8


def model_depths(model: str | Path | None, data: TripletData
                 ) -> tuple[np.ndarray, Checkpoint]:
    """The served depth (N, 1, H, W) in metres (or the model's unit) of every held-out target
    frame, at the data's size, through the predictor the depth node uses; and the model."""
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
    return np.stack(depths)[:, None], checkpoint


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


def floor_agreement(depths: np.ndarray, data: TripletData, floor: FloorConfig
                    ) -> dict[str, Any]:
    """How far the metres of `depths` (N, 1, H, W, one per held-out target frame) are from
    the camera's height where tf places the camera over the floor: `floor_scale`, the median
    over the frames whose floor is found of camera height / the floor's distance in the
    depth, is 1.0 where they agree and None where fewer than floor.gate_min_fits frames
    show the floor (one frame's fit says little)."""
    height, width = depths.shape[-2:]
    frames = data.triplets[:, 1]
    poses = (np.full((len(frames), 4, 4), np.nan) if data.floors is None
             else data.floors[frames].numpy())
    placed = [(depth[0], Intrinsics.from_matrix(k, width, height), pose)
              for depth, k, pose in zip(depths, data.k[frames].numpy(), poses)
              if np.isfinite(pose).all() and pose[2, 3] > 0]
    scales, refused, why = floor_scales(placed, floor)
    enough = len(scales) >= floor.gate_min_fits
    if not placed:
        why = "tf places the camera over the floor in no held-out frame"
    elif not enough:
        why = (f"the floor was found in {len(scales)} of {len(placed)} held-out frames, "
               f"{floor.gate_min_fits} needed (floor.gate_min_fits)" + (f"; last: {why}"
                                                                     if why else ""))
    return {"floor_scale": float(np.median(scales)) if enough else None,
            "floor_fits": len(scales), "floor_refused": refused,
            **({} if enough else {"floor_reason": why})}


def floor_error(figures: dict[str, Any]) -> float:
    """The factor by which a model's metres are off by its held-out floor, as a fraction
    (0.25: a quarter too near or too far); NaN where they were not judged."""
    scale = figures.get("floor_scale")
    return math.nan if scale is None else max(scale, 1 / scale) - 1


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
         pose_net: nn.Module | None, margin: float, ssim_weight: float,
         floor: FloorConfig) -> dict[str, Any]:
    """Judge `candidate` against the `serving` model (None: the package's default) on the
    held-out triplets `data`. Returns both models' figures, whether the candidate is
    accepted and why."""
    motions = held_out_motions(data, pose_net)
    scales = (1.0,) if data.metric else RELATIVE_SCALES
    figures = {}
    for role, model in (("candidate", candidate), ("serving", serving)):
        figures[role] = {"model": str(model) if model else "(default)"}
        try:
            depths, checkpoint = model_depths(model, data)
            metric = checkpoint.metric
            # Why a run without odometry stayed relative (camera_height.py), where it says.
            why = checkpoint.provenance.get("scale", {}).get("reason")
            if not metric and why:
                figures[role]["camera_height"] = why
            if metric and not data.metric:
                figures[role].update(floor_agreement(depths, data, floor))
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
    off, metres = floor_error(figures["candidate"]), ""
    if figures["candidate"].get("metric") and not data.metric:
        candidate = figures["candidate"]
        metres = (f"; its metres were not checked ({candidate['floor_reason']})"
                  if math.isnan(off) else f": its depth is {1 / candidate['floor_scale']:.2f} "
                  f"times what the floor gives on {candidate['floor_fits']} held-out frames")
    if "error" in figures["candidate"]:
        accepted, reason = False, f"the candidate cannot serve: {figures['candidate']['error']}"
    elif figures["serving"].get("metric") and not figures["candidate"]["metric"]:
        why = figures["candidate"].get("camera_height")
        accepted, reason = False, ("the candidate's depth is relative and would replace metric "
                                   f"depth: {relative_reason(data)}" + (
                                       f"; the camera's height gave it no scale: {why}"
                                       if why else ""))
    elif not math.isfinite(new):
        accepted, reason = False, "the candidate's depth is not finite (or not positive) on " \
                                  "some held-out frame"
    elif math.isfinite(old) and new > old * (1 + margin):
        accepted, reason = False, (f"photometric error {new:.4f} is more than {margin:.0%} "
                                   f"worse than the serving model's {old:.4f}")
    elif off > floor.gate_max_error and not off <= floor_error(figures["serving"]):
        accepted, reason = False, (
            f"its metres disagree with the camera's height{metres}, more than "
            f"{floor.gate_max_error:.0%} (floor.gate_max_error) and more than the serving "
            "model's: its scale did not carry over from the frames it was calibrated on")
    else:
        accepted, reason = True, (f"photometric error {new:.4f} against the serving model's "
                                  f"{old:.4f} (margin {margin:.0%})" + metres)
    return {"accepted": accepted, "reason": reason, "margin": margin, "triplets": len(data),
            "motion": "odometry" if data.metric else "pose network", **figures}
