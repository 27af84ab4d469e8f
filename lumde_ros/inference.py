"""One predictor for every consumer (depth node, evaluation, the trainer's gate): RGB image in,
metric depth out, so what is evaluated is exactly what is served."""
from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from lumde_ros.checkpoint import Checkpoint
from lumde_ros.errors import InferenceError, ModelLoadError
from lumde_ros.models import MetricDepth, fuse_for_inference

SCALE_MODES = ("checkpoint", "fixed")


@dataclass(frozen=True)
class DepthScale:
    """Metres per network depth unit and whether that makes the output metric."""

    value: float
    metric: bool


def resolve_scale(checkpoint: Checkpoint, scale_mode: str, depth_scale: float) -> DepthScale:
    """`checkpoint`: the model's own scale (metric only if it was trained metric);
    `fixed`: the user's `depth_scale`, which the user vouches for as metric."""
    if scale_mode == "checkpoint":
        return DepthScale(checkpoint.depth_scale, checkpoint.metric)
    if scale_mode == "fixed":
        return DepthScale(depth_scale, True)
    raise ValueError(f"scale_mode '{scale_mode}' is not one of {SCALE_MODES}")


def network_size(checkpoint: Checkpoint, width: int, height: int, stride: int) -> tuple[int, int]:
    """Network input size: the checkpoint's when width/height are 0, else the requested one,
    which must be a positive multiple of the architecture's stride."""
    if width == 0 and height == 0:
        return checkpoint.input_width, checkpoint.input_height
    if width <= 0 or height <= 0 or width % stride or height % stride:
        raise ModelLoadError(f"network input {width}x{height} must be positive multiples of "
                             f"{stride} for '{checkpoint.arch}' (or 0x0 for the checkpoint's own "
                             f"{checkpoint.input_width}x{checkpoint.input_height})")
    return width, height


class Predictor:
    """Runs a depth checkpoint on single RGB images (PyTorch backend).

    Construction validates the model: the device must exist and a forward pass on a probe
    image must be finite, so a broken model is refused before it serves a frame.
    """

    backend = "torch"

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", threads: int = 0,
                 input_width: int = 0, input_height: int = 0) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device '{device}' requested but this PyTorch build sees no "
                                 "CUDA GPU; set device to 'cpu'")
        if threads > 0:
            torch.set_num_threads(threads)
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        net = checkpoint.build()
        self.width, self.height = network_size(checkpoint, input_width, input_height,
                                               getattr(net, "STRIDE", 1))
        self._model = MetricDepth(fuse_for_inference(net), scale=1.0).to(self.device)
        # Depthwise convolutions run many times faster in channels-last layout on CPUs.
        self._model = self._model.to(memory_format=torch.channels_last)
        probe = np.random.default_rng(0).integers(0, 256, (self.height, self.width, 3), np.uint8)
        if not np.isfinite(self.forward(probe)).all():
            raise ModelLoadError(f"model ({checkpoint.describe()}) gives non-finite depth on a "
                                 "test image; its weights are broken")
        self.last_forward_s = 0.0

    def forward(self, rgb: np.ndarray) -> np.ndarray:
        """Network depth (network units, network resolution) for RGB uint8 (H, W, 3)."""
        rgb = resize_image(rgb, self.width, self.height)
        # HWC uint8 viewed as NCHW is already channels-last: no transpose copy.
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
        start = time.perf_counter()
        with torch.inference_mode():
            depth = self._model(x.to(self.device, torch.float32).div_(255.0))
        self.last_forward_s = time.perf_counter() - start
        return depth[0, 0].cpu().numpy()

    def predict(self, rgb: np.ndarray, scale: DepthScale, out_size: tuple[int, int] | None = None,
                min_depth_m: float = 0.0, max_depth_m: float = float("inf")) -> np.ndarray:
        """Metric depth (H', W') float32 metres for RGB uint8 (H, W, 3); NaN where the network
        gave no finite value or the depth lies outside [min_depth_m, max_depth_m].
        out_size: (width, height) of the result; default the network's resolution."""
        depth = self.forward(rgb)
        if out_size is not None and out_size != (self.width, self.height):
            depth = cv2.resize(depth, out_size, interpolation=cv2.INTER_LINEAR)
        return metric_depth(depth, scale.value, min_depth_m, max_depth_m)


# Beyond this shrink factor bilinear sampling aliases visibly and area averaging is worth its
# cost (about 6x bilinear's on a 640x480 frame).
AREA_SHRINK = 2.0


def resize_image(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an image for the network: the one resampling policy for serving and training."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    strong_shrink = w > AREA_SHRINK * width or h > AREA_SHRINK * height
    return cv2.resize(rgb, (width, height),
                      interpolation=cv2.INTER_AREA if strong_shrink else cv2.INTER_LINEAR)


def metric_depth(depth: np.ndarray, scale: float, min_depth_m: float,
                 max_depth_m: float) -> np.ndarray:
    """Scale network depth to metres and mark invalid pixels NaN (REP 118); in place.
    Raises InferenceError when no pixel is finite: such a frame carries no information."""
    depth *= scale
    finite = np.isfinite(depth)
    if not finite.any():
        raise InferenceError("the network produced no finite depth for this frame (NaN/Inf "
                             "output); check the model, or the input for extreme values")
    depth[~finite | (depth < min_depth_m) | (depth > max_depth_m)] = np.nan
    return depth
