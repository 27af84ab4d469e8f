"""Standard monocular depth metrics (Eigen et al., 2014), computed per image and averaged.

Only ground truth is used here, never for training. `median_scaling` applies the monocular
protocol (each prediction scaled by median(gt) / median(pred)); without it the metrics judge
metric depth as served.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumde_ros.errors import BagError

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


class ProtocolMetrics:
    """Both protocols' metrics over the same frames."""

    def __init__(self, min_depth_m: float, max_depth_m: float) -> None:
        self._by_protocol = {name: MetricAccumulator(min_depth_m, max_depth_m, scaling)
                             for name, scaling in PROTOCOLS.items()}

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        for accumulator in self._by_protocol.values():
            accumulator.add(pred, gt)

    @property
    def frames(self) -> int:
        return self._by_protocol["unscaled"].frames

    def results(self) -> dict[str, dict[str, float]]:
        """{protocol: {metric: mean}} for every protocol in PROTOCOLS."""
        return {name: acc.result() for name, acc in self._by_protocol.items()}


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A fixed-width table, one row per named result, columns in METRICS order."""
    header = f"{'':>14}" + "".join(f"{m:>10}" for m in METRICS)
    rows = [f"{name.replace('_', '-'):>14}" + "".join(f"{values[m]:10.4f}" for m in METRICS)
            for name, values in results.items()]
    return "\n".join([header, *rows])


def evaluate_recording(bag: str | Path, checkpoint_path: str | Path | None, min_depth_m: float,
                       max_depth_m: float, threads: int = 0, backend: str = "torch",
                       topics: dict[str, str | None] | None = None) -> dict[str, object]:
    """Run a model (None: the default model) over every frame of `bag` that has ground
    truth, through the same Predictor the depth node serves with; returns both protocols'
    metrics plus the model's size and cost. `topics`: image_topic, camera_info_topic and
    depth_topic where the recording's own choice is not wanted."""
    from lumde_ros.data import Recording
    from lumde_ros.inference import Predictor, load_model_or_default, resolve_scale
    from lumde_ros.models import build_depth_net, count_macs

    checkpoint, onnx_path, name = load_model_or_default(checkpoint_path)
    predictor = Predictor(checkpoint, threads=threads, backend=backend, onnx_path=onnx_path)
    scale = resolve_scale(checkpoint, "checkpoint", 1.0)
    metrics = ProtocolMetrics(min_depth_m, max_depth_m)
    with Recording(bag, **(topics or {})) as recording:
        for frame in recording.frames():
            if frame.depth is None:
                continue
            size = (frame.depth.shape[1], frame.depth.shape[0])
            metrics.add(predictor.predict(frame.rgb, scale, size), frame.depth)
        if not metrics.frames:
            raise BagError(f"{bag} has no camera frame with ground-truth depth to evaluate on "
                           f"(depth topic: {recording.depth_topic or 'none found'}; image "
                           f"topic: {recording.image_topic})")
    net = build_depth_net(checkpoint.arch, checkpoint.arch_config)
    return {"bag": str(bag), "backend": predictor.backend, "image_topic": recording.image_topic,
            "depth_topic": recording.depth_topic, "damaged_messages": recording.damaged,
            **({"recovered": recording.recovered.describe()} if recording.recovered else {}),
            "model": name,
            "frames": metrics.frames, "min_depth_m": min_depth_m, "max_depth_m": max_depth_m,
            "parameters": sum(p.numel() for p in net.parameters()),
            "macs": count_macs(net, predictor.width, predictor.height),
            "metric_model": checkpoint.metric, **metrics.results()}
