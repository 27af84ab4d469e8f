"""Standard monocular depth metrics (Eigen et al., 2014), computed per image and averaged,
and a pose network's turns against odometry (the yaw slope and correlation #21 names).

Only ground truth is used here, never for training. `median_scaling` applies the monocular
protocol (each prediction scaled by median(gt) / median(pred)); without it the metrics judge
metric depth as served. Every result carries the constant baseline on the same frames: each
image's own median depth everywhere (CONSTANT). Median-scaled, that is what a network scores
that has learned nothing about geometry; a figure means something only beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lumde_ros.errors import BagError

if TYPE_CHECKING:
    import torch

    from lumde_ros.geometry import Intrinsics
    from lumde_ros.models import PoseNet

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# delta thresholds: the fraction of pixels with max(pred/gt, gt/pred) below 1.25**k.
DELTA_BASE = 1.25


def image_metrics(pred: np.ndarray, gt: np.ndarray, min_depth_m: float, max_depth_m: float,
                  median_scaling: bool) -> dict[str, float] | None:
    """Metrics of one prediction against ground truth (both metres, same shape, NaN = none),
    over pixels whose ground truth lies in (min_depth_m, max_depth_m) and whose prediction is
    finite; predictions are clipped to that range. None when no pixel is valid."""
    valid = np.isfinite(gt) & np.isfinite(pred) & (gt > min_depth_m) & (gt < max_depth_m)
    if not valid.any():
        return None
    g, p = gt[valid].astype(np.float64), pred[valid].astype(np.float64)
    if median_scaling:
        p = p * (np.median(g) / max(np.median(p), 1e-12))
    p = np.clip(p, min_depth_m, max_depth_m)
    ratio = np.maximum(g / p, p / g)
    return {"abs_rel": float(np.mean(np.abs(g - p) / g)),
            "sq_rel": float(np.mean((g - p) ** 2 / g)),
            "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
            "rmse_log": float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
            "a1": float(np.mean(ratio < DELTA_BASE)),
            "a2": float(np.mean(ratio < DELTA_BASE ** 2)),
            "a3": float(np.mean(ratio < DELTA_BASE ** 3))}


@dataclass
class MetricAccumulator:
    """Per-image metrics averaged over a sequence (the usual reporting)."""

    min_depth_m: float
    max_depth_m: float
    median_scaling: bool

    def __post_init__(self) -> None:
        self._rows: list[dict[str, float]] = []

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        row = image_metrics(pred, gt, self.min_depth_m, self.max_depth_m, self.median_scaling)
        if row is not None:
            self._rows.append(row)

    @property
    def frames(self) -> int:
        return len(self._rows)

    def result(self) -> dict[str, float]:
        """Mean of each metric over the images added (NaN when none was valid)."""
        return {m: float(np.mean([r[m] for r in self._rows])) if self._rows else float("nan")
                for m in METRICS}


# The two reporting protocols: name -> whether predictions are median-scaled per image.
PROTOCOLS = {"median_scaled": True, "unscaled": False}
# The baseline's key beside the protocols: a constant image, median-scaled (= gt's median).
CONSTANT = "constant_baseline"
# Metric without ground truth, for recordings whose tf places the camera over the floor: the
# prediction times the running scale from the floor (floor.FloorScale); until a floor has
# been seen, the model's own scale, as the depth node would serve it.
CAMERA_HEIGHT = "camera_height"


class ProtocolMetrics:
    """Both protocols' metrics and the constant baseline's, over the same frames, and
    CAMERA_HEIGHT's over the frames given a floor scale."""

    def __init__(self, min_depth_m: float, max_depth_m: float) -> None:
        self._by_protocol = {name: MetricAccumulator(min_depth_m, max_depth_m, scaling)
                             for name, scaling in PROTOCOLS.items()}
        self._constant = MetricAccumulator(min_depth_m, max_depth_m, True)
        self._camera_height = MetricAccumulator(min_depth_m, max_depth_m, False)

    def add(self, pred: np.ndarray, gt: np.ndarray, floor_scale: float | None = None) -> None:
        for accumulator in self._by_protocol.values():
            accumulator.add(pred, gt)
        self._constant.add(np.where(np.isfinite(pred), 1.0, np.nan), gt)
        if floor_scale is not None:
            self._camera_height.add(pred * floor_scale, gt)

    @property
    def frames(self) -> int:
        return self._by_protocol["unscaled"].frames

    def results(self) -> dict[str, dict[str, float]]:
        """{protocol: {metric: mean}} for every protocol in PROTOCOLS, CONSTANT, and
        CAMERA_HEIGHT when some frame had a floor scale."""
        camera_height = {CAMERA_HEIGHT: self._camera_height.result()} \
            if self._camera_height.frames else {}
        return {**{name: acc.result() for name, acc in self._by_protocol.items()},
                CONSTANT: self._constant.result(), **camera_height}


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A fixed-width table, one row per named result, columns in METRICS order."""
    header = f"{'':>18}" + "".join(f"{m:>10}" for m in METRICS)
    rows = [f"{name.replace('_', '-'):>18}" + "".join(f"{values[m]:10.4f}" for m in METRICS)
            for name, values in results.items()]
    return "\n".join([header, *rows])


def evaluate_recording(bag: str | Path, checkpoint_path: str | Path | None, min_depth_m: float,
                       max_depth_m: float, threads: int = 0, backend: str = "torch",
                       topics: dict[str, str | None] | None = None,
                       depth_slop_ms: float | None = None) -> dict[str, object]:
    """Run a model (None: the default model) over every frame of `bag` that has ground
    truth, through the same Predictor the depth node serves with; returns both protocols'
    metrics plus the model's size and cost. `topics`: image_topic, camera_info_topic and
    depth_topic where the recording's own choice is not wanted; `depth_slop_ms`: how far
    apart an image and its ground truth may be stamped (None: the Recording's default)."""
    from lumde_ros.data import Recording
    from lumde_ros.floor import FloorConfig, FloorScale, up_in_camera
    from lumde_ros.training.config import load_section

    predict, about = _model(checkpoint_path, threads, backend)
    metrics = ProtocolMetrics(min_depth_m, max_depth_m)
    floor = FloorScale(load_section("floor", FloorConfig))
    slop = {} if depth_slop_ms is None else {"depth_slop_ms": depth_slop_ms}
    with Recording(bag, **(topics or {}), **slop) as recording:
        for frame in recording.frames():
            if frame.depth is None:
                continue
            pred, scale = predict(frame.rgb, frame.intrinsics, frame.floor_from_camera), None
            if frame.floor_from_camera is not None:
                up, height_m = up_in_camera(frame.floor_from_camera)
                scale = floor.update(pred, frame.intrinsics, up, height_m) or 1.0
            metrics.add(pred, frame.depth, scale)
        if not metrics.frames:
            raise BagError(f"{bag} has no camera frame with ground-truth depth to evaluate on "
                           f"(depth topic: {recording.depth_topic or 'none found'}; image "
                           f"topic: {recording.image_topic}; ground truth is paired with an "
                           f"image stamped within --depth-slop-ms)")
    return {"bag": str(bag), "image_topic": recording.image_topic,
            "depth_topic": recording.depth_topic, "damaged_messages": recording.damaged,
            **recording.notes(),
            **({"recovered": recording.recovered.describe()} if recording.recovered else {}),
            **about, "frames": metrics.frames,
            **({"floor_fits": floor.fits, "floor_refused": floor.refused} if floor.fits
               else {}),
            **({"floor_last_refusal": floor.last_refusal} if floor.refused else {}),
            "min_depth_m": min_depth_m,
            "max_depth_m": max_depth_m, **metrics.results()}


def _model(checkpoint_path: str | Path | None, threads: int, backend: str):
    """predict(rgb, intrinsics, floor_from_camera) -> metric depth at the image's size,
    through the Predictor the depth node serves with (the pose over the floor, when tf gives
    it, is what a model with the floor prior is told), and what to report about the model."""
    from lumde_ros.inference import Predictor, load_model_or_default, resolve_scale
    from lumde_ros.models import build_depth_net, count_macs

    checkpoint, onnx_path, name = load_model_or_default(checkpoint_path)
    predictor = Predictor(checkpoint, threads=threads, backend=backend, onnx_path=onnx_path)
    scale = resolve_scale(checkpoint, "checkpoint", 1.0)
    net = build_depth_net(checkpoint.arch, checkpoint.arch_config)

    def predict(rgb: np.ndarray, intrinsics: Intrinsics | None = None,
                floor_from_camera: np.ndarray | None = None) -> np.ndarray:
        return predictor.predict(rgb, scale, (rgb.shape[1], rgb.shape[0]),
                                 intrinsics=intrinsics, floor_from_camera=floor_from_camera)

    return predict, {"backend": predictor.backend, "model": name,
                     "parameters": sum(p.numel() for p in net.parameters()),
                     "macs": count_macs(net, predictor.width, predictor.height),
                     "metric_model": checkpoint.metric, "scale_source": checkpoint.scale_source,
                     "floor_prior": predictor.takes_floor_prior}


# Middlebury 2014 "Motorcycle" as scikit-image ships it (downsampled 4x); its calibration for
# that size, from skimage.data.stereo_motorcycle's documentation.
MIDDLEBURY = {"focal_px": 994.978, "doffs_px": 31.086, "baseline_m": 0.193001}


def middlebury_motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """The left image (RGB uint8) and its metric ground-truth depth (NaN: none) from the
    disparity: depth = baseline * focal / (disparity + doffs)."""
    from skimage.data import stereo_motorcycle

    left, _, disparity = stereo_motorcycle()
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = MIDDLEBURY["baseline_m"] * MIDDLEBURY["focal_px"] / (
            disparity.astype(np.float64) + MIDDLEBURY["doffs_px"])
    depth[~np.isfinite(disparity)] = np.nan
    return left, depth.astype(np.float32)


def evaluate_middlebury(checkpoint_path: str | Path | None, min_depth_m: float,
                        max_depth_m: float, threads: int = 0,
                        backend: str = "torch") -> dict[str, object]:
    """The model on one real photograph with metric ground truth. A domain-gap figure:
    a real camera (f = 995 px at 741x500, 73 degrees), a scene unlike any simulated one."""
    predict, about = _model(checkpoint_path, threads, backend)
    rgb, depth = middlebury_motorcycle()
    metrics = ProtocolMetrics(min_depth_m, max_depth_m)
    metrics.add(predict(rgb), depth)
    return {"image": "Middlebury 2014 Motorcycle (skimage.data.stereo_motorcycle)",
            "domain_gap": True, **about, "frames": metrics.frames,
            "min_depth_m": min_depth_m, "max_depth_m": max_depth_m, **metrics.results()}


def yaw_deg(motion: np.ndarray) -> float:
    """Turn (degrees) of a camera motion (4, 4), or its rotation (3, 3), about the optical
    frame's y axis (down)."""
    return math.degrees(math.atan2(motion[0, 2], motion[0, 0]))


def frame_pairs(bags: list[Path], size: tuple[int, int], apart: int = 1
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair of frames `apart` frames apart in `bags` with odometry, at `size` (width,
    height): first and second RGB (N, 3, H, W) in [0, 1], their camera matrices at `size`
    (N, 3, 3) and the odometry motion first -> second camera (N, 4, 4)."""
    import torch

    from lumde_ros.data import Recording
    from lumde_ros.inference import resize_image

    if apart < 1:
        raise ValueError(f"frames of a pair must be at least 1 apart, not {apart}")
    first, second, k, motions = [], [], [], []
    for bag in bags:
        with Recording(bag) as recording:
            frames = [(resize_image(f.rgb, *size), f.odom_from_camera,
                       f.intrinsics.resized(*size).matrix()) for f in recording.frames()]
        for (a, pose_a, k_a), (b, pose_b, _) in zip(frames, frames[apart:]):
            if pose_a is not None and pose_b is not None:
                first.append(a)
                second.append(b)
                k.append(k_a)
                motions.append(np.linalg.inv(pose_b) @ pose_a)
    return (*(torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).float() / 255
              for x in (first, second)),
            *(torch.from_numpy(np.stack(x)).float() for x in (k, motions)))


def pose_yaws(net: PoseNet, first: torch.Tensor, second: torch.Tensor, k: torch.Tensor,
              motions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The true turn of each pair (`motions`, as frame_pairs gives them) and `net`'s
    (cameras `k`), in degrees."""
    import torch

    from lumde_ros.geometry import pose_from_vector

    training = net.training
    with torch.no_grad():
        found = [net.eval()(*x) for x in zip(first.split(64), second.split(64), k.split(64))]
    net.train(training)
    predicted = np.array([yaw_deg(m) for f in found
                          for m in pose_from_vector(f.axis_angle, f.translation).numpy()])
    return np.array([yaw_deg(m) for m in motions.numpy()]), predicted


def yaw_fit(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The slope of a line through (true, predicted) turns and their correlation."""
    return {"slope": float(np.polyfit(truth, predicted, 1)[0]),
            "correlation": float(np.corrcoef(truth, predicted)[0, 1]), "pairs": len(truth)}
