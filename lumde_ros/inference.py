"""One predictor for every consumer (depth node, evaluation, the trainer's gate): RGB image in,
metric depth out, so what is evaluated is exactly what is served."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from lumde_ros.checkpoint import Checkpoint
from lumde_ros.errors import InferenceError, ModelLoadError
from lumde_ros.export import PRIOR_INPUT, input_channels, takes_floor_prior
from lumde_ros.geometry import FLOOR_PRIOR_CHANNELS, Intrinsics, floor_prior
from lumde_ros.models import ARCHITECTURES, MetricDepth, fuse_for_inference

SCALE_MODES = ("checkpoint", "fixed", "camera_height")


@dataclass(frozen=True)
class DepthScale:
    """Metres per network depth unit and whether that makes the output metric."""

    value: float
    metric: bool


def resolve_scale(checkpoint: Checkpoint, scale_mode: str, depth_scale: float) -> DepthScale:
    """`checkpoint`: the model's own scale (metric only if it was trained metric);
    `fixed`: the user's `depth_scale`, which the user vouches for as metric; `camera_height`:
    the model's own, which the floor's scale (floor.FloorScale) then corrects."""
    if scale_mode in ("checkpoint", "camera_height"):
        return DepthScale(checkpoint.depth_scale, checkpoint.metric)
    if scale_mode == "fixed":
        return DepthScale(depth_scale, True)
    raise ValueError(f"scale_mode '{scale_mode}' is not one of {SCALE_MODES}")


def network_size(checkpoint: Checkpoint, width: int, height: int) -> tuple[int, int]:
    """Network input size: the checkpoint's when width/height are 0, else the requested one;
    either must be a positive multiple of the architecture's stride."""
    if checkpoint.arch not in ARCHITECTURES:
        raise ModelLoadError(f"unknown architecture '{checkpoint.arch}'; this version knows "
                             f"{sorted(ARCHITECTURES)}")
    stride = ARCHITECTURES[checkpoint.arch].STRIDE
    if width == 0 and height == 0:
        width, height = checkpoint.input_width, checkpoint.input_height
    if width <= 0 or height <= 0 or width % stride or height % stride:
        raise ModelLoadError(f"network input {width}x{height} must be positive multiples of "
                             f"{stride} for '{checkpoint.arch}' (or 0x0 for the checkpoint's own "
                             f"{checkpoint.input_width}x{checkpoint.input_height})")
    return width, height


BACKENDS = ("torch", "onnxruntime", "openvino")
BACKEND_CHOICES = ("auto", *BACKENDS)
# `auto` times every installed backend on the model at load and keeps the fastest: which one
# wins depends on the network (measured here: OpenVINO for some, ONNX Runtime for others).
AUTO_TIMING_RUNS = 5


def backend_packages(backend: str) -> list[str]:
    """Python packages a backend needs: the ONNX engines also need `onnx`, which exports
    checkpoints and reads the metadata of .onnx files."""
    return [backend] if backend == "torch" else [backend, "onnx"]


def installed_backends() -> list[str]:
    """Backends whose Python packages all import here."""
    import importlib

    def importable(name: str) -> bool:
        try:
            importlib.import_module(name)
        except ImportError:
            return False
        return True

    return [b for b in BACKENDS if all(map(importable, backend_packages(b)))]


def candidate_backends(requested: str, device: str = "cpu", onnx_file: bool = False) -> list[str]:
    """The backends `requested` may resolve to, checked to be installed and to fit the device
    and the model file (an .onnx graph cannot run in PyTorch)."""
    if requested not in BACKEND_CHOICES:
        raise ModelLoadError(f"backend '{requested}' is not one of {', '.join(BACKEND_CHOICES)}")
    if not device.startswith("cpu"):
        if requested not in ("auto", "torch") or onnx_file:
            raise ModelLoadError(f"backend '{requested}' runs on the CPU here; use backend "
                                 f"'torch' and a .pt checkpoint for device '{device}'")
        return ["torch"]
    installed = installed_backends()
    if requested == "auto":
        usable = [b for b in installed if not (onnx_file and b == "torch")]
        if not usable:
            raise ModelLoadError("an .onnx model needs onnxruntime or openvino installed "
                                 "(pip install onnxruntime onnx)")
        return usable
    if onnx_file and requested == "torch":
        raise ModelLoadError("an .onnx graph cannot run with backend 'torch': use onnxruntime, "
                             "openvino or auto, or serve its .pt checkpoint")
    if requested not in installed:
        raise ModelLoadError(f"backend '{requested}' requested but its Python packages are "
                             f"not installed (pip install {' '.join(backend_packages(requested))})"
                             f"; installed: {', '.join(installed)}")
    return [requested]


class _TorchEngine:
    """PyTorch eager, BatchNorm folded, channels-last (depthwise convolutions run many times
    faster in that layout on CPUs)."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.device = device
        model = MetricDepth(fuse_for_inference(checkpoint.build()), scale=1.0).to(device)
        self.model = model.to(memory_format=torch.channels_last)

    def run(self, rgb: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
        # HWC uint8 viewed as NCHW is already channels-last: no transpose copy.
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            depth = self.model(x.to(self.device, torch.float32).div_(255.0),
                               None if prior is None else torch.from_numpy(prior).to(self.device))
        return depth[0, 0].cpu().numpy()


class _OnnxRuntimeEngine:
    def __init__(self, onnx_path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads spin by default, burning a core between frames on a shared CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(_with_uint8_input(onnx_path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnx and onnxruntime raise their own exception types
            raise ModelLoadError(f"ONNX Runtime cannot load {onnx_path}: {err}") from err

    def run(self, rgb: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
        feed = {UINT8_INPUT: np.ascontiguousarray(rgb)[None]}
        if prior is not None:
            feed[PRIOR_INPUT] = prior
        return self.session.run(None, feed)[0][0, 0]


class _OpenVinoEngine:
    def __init__(self, onnx_path: Path, threads: int, width: int, height: int) -> None:
        import openvino
        from openvino.preprocess import PrePostProcessor

        core = openvino.Core()
        # One stream, no pinning: a robot's CPU is shared with everything else it runs.
        # Full float precision: on CPUs with bf16 units OpenVINO otherwise drops to bf16,
        # which moves depth by about 1% (centimetres at a few metres).
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                     "ENABLE_CPU_PINNING": False,
                                     "INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            model = core.read_model(str(onnx_path))
            model.reshape({node.any_name: [1, channels, height, width] for node, channels in
                           zip(model.inputs, input_channels([n.any_name for n in model.inputs]))})
            # The image enters as it comes, uint8 HWC; conversion and scaling run compiled
            # into the graph (see _with_uint8_input for why).
            image = PrePostProcessor(model)
            image.input(0).tensor().set_element_type(openvino.Type.u8).set_layout(
                openvino.Layout("NHWC"))
            image.input(0).model().set_layout(openvino.Layout("NCHW"))
            image.input(0).preprocess().convert_element_type(openvino.Type.f32).scale(255.0)
            self.compiled = core.compile_model(image.build(), "CPU", config)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses of its own
            raise ModelLoadError(f"OpenVINO cannot load {onnx_path}: {err}") from err
        self.request = self.compiled.create_infer_request()

    def run(self, rgb: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
        feed = {0: np.ascontiguousarray(rgb)[None]}
        if prior is not None:
            feed[1] = prior
        return self.request.infer(feed)[self.compiled.output(0)][0, 0]


UINT8_INPUT = "rgb"


def _with_uint8_input(onnx_path: Path) -> bytes:
    """The graph of `onnx_path` taking RGB uint8 (1, H, W, 3) as UINT8_INPUT, converted to its
    float NCHW [0, 1] input inside the graph. Converting in numpy first (cv2.dnn.blobFromImage)
    cost 0.8 ms, more than a third of the student's whole forward."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    image = graph.input[0]
    batch, channels, height, width = (d.dim_value or d.dim_param
                                      for d in image.type.tensor_type.shape.dim)
    graph.initializer.append(helper.make_tensor("rgb_scale", TensorProto.FLOAT, [],
                                                [1.0 / 255.0]))
    convert = [helper.make_node("Transpose", [UINT8_INPUT], ["rgb_nchw"], perm=[0, 3, 1, 2]),
               helper.make_node("Cast", ["rgb_nchw"], ["rgb_float"], to=TensorProto.FLOAT),
               helper.make_node("Mul", ["rgb_float", "rgb_scale"], [image.name])]
    for node in reversed(convert):
        graph.node.insert(0, node)
    graph.input.remove(image)
    graph.input.insert(0, helper.make_tensor_value_info(UINT8_INPUT, TensorProto.UINT8,
                                                        [batch, height, width, channels]))
    return model.SerializeToString()


def cached_onnx(checkpoint: Checkpoint, width: int, height: int) -> Path:
    """An .onnx of a .pt checkpoint at this size, exported once and kept in the cache under
    the hash of the checkpoint's content and of the exporting code (a retrained file at the
    same path, or an upgraded package, gets a new entry). An unwritable cache costs an export
    per start, not the ONNX engines."""
    from lumde_ros.config import cache_dir
    from lumde_ros.export import export_onnx, graph_digest

    path = cache_dir() / "onnx" / f"{graph_digest(checkpoint)[:32]}_{width}x{height}.onnx"
    if not path.is_file():
        try:
            export_onnx(checkpoint, path, width, height)
        except OSError:  # a read-only home, a cache path that is a file
            scratch = tempfile.mkdtemp(prefix="lumde_ros_onnx_")
            atexit.register(shutil.rmtree, scratch, ignore_errors=True)
            path = Path(scratch) / path.name
            export_onnx(checkpoint, path, width, height)
    return path


def limit_threads(threads: int) -> None:
    """Let torch and OpenCV each use at most `threads` CPU threads (0: their defaults, every
    core). Both matter: OpenCV's own pool resizes every frame and tracks the image motion, and
    left alone it takes every core from the processes beside it."""
    if threads > 0:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


class Predictor:
    """Runs a depth model on single RGB images with one of the BACKENDS.

    `onnx_path`: an .onnx from `lumde export` (then `checkpoint` is its metadata, without
    weights); otherwise the ONNX backends use a cached export of the checkpoint. Construction
    validates the model: the backend and device must exist and a forward pass on a probe
    image must be finite, so a broken model is refused before it serves a frame.
    """

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", threads: int = 0,
                 input_width: int = 0, input_height: int = 0, backend: str = "torch",
                 onnx_path: Path | None = None) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device '{device}' requested but this PyTorch build sees no "
                                 "CUDA GPU; set device to 'cpu'")
        candidates = candidate_backends(backend, device, onnx_path is not None)
        limit_threads(threads)
        self.checkpoint = checkpoint
        try:
            self.device = torch.device(device)
        except RuntimeError as err:
            raise ModelLoadError(f"device '{device}' is not a device name: use cpu, cuda or "
                                 "cuda:N") from err
        self.width, self.height = network_size(checkpoint, input_width, input_height)
        # The floor prior for a model that takes one: zeros (unknown) until a pose is given,
        # then the last one computed, since a fixed mount gives the same prior every frame.
        self.takes_floor_prior = takes_floor_prior(checkpoint)
        self._unknown_prior = np.zeros((1, FLOOR_PRIOR_CHANNELS, self.height, self.width),
                                       np.float32)
        self._last_prior: tuple[tuple, np.ndarray] | None = None
        dynamic = bool(checkpoint.provenance.get("dynamic"))
        if onnx_path is not None and not dynamic and (self.width, self.height) != (
                checkpoint.input_width, checkpoint.input_height):
            raise ModelLoadError(f"{onnx_path} was exported for {checkpoint.input_width}x"
                                 f"{checkpoint.input_height} only; start the node with "
                                 "input_width/height 0 (they are read-only) or export with "
                                 "--dynamic")
        probe = np.random.default_rng(0).integers(0, 256, (self.height, self.width, 3), np.uint8)
        self.timings_ms: dict[str, float] = {}
        engines, failures = {}, []
        for name in candidates:
            try:
                engines[name] = self._engine = self._make_engine(name, threads, onnx_path)
                depth = self.forward(probe)
                if depth.shape != (self.height, self.width):
                    raise ModelLoadError(f"its output is {depth.shape}, not a {self.width}x"
                                         f"{self.height} depth map: not a lumde_ros model")
                finite = np.isfinite(depth).all()
            except Exception as err:  # any engine failure means: this model cannot serve here
                failures.append(f"{name}: {type(err).__name__}: {err}")
                engines.pop(name, None)
                continue
            if not finite:
                raise ModelLoadError(f"model ({checkpoint.describe()}) gives non-finite depth "
                                     f"on a test image with {name}; its weights are broken")
            if len(candidates) > 1:
                runs = [self._timed(probe) for _ in range(AUTO_TIMING_RUNS)]
                self.timings_ms[name] = round(1e3 * float(np.median(runs)), 2)
        if not engines:
            raise ModelLoadError(f"model ({checkpoint.describe()}) cannot run: "
                                 + "; ".join(failures))
        self.failures = failures  # backends `auto` had to leave out, with why
        self.backend = min(self.timings_ms, key=self.timings_ms.get) if self.timings_ms \
            else next(iter(engines))
        self._engine = engines[self.backend]
        self.last_forward_s = 0.0

    def _make_engine(self, name: str, threads: int, onnx_path: Path | None):
        if name == "torch":
            return _TorchEngine(self.checkpoint, self.device)
        def engine(path: Path):
            return _OnnxRuntimeEngine(path, threads) if name == "onnxruntime" \
                else _OpenVinoEngine(path, threads, self.width, self.height)

        if onnx_path is not None:
            return engine(onnx_path)
        path = cached_onnx(self.checkpoint, self.width, self.height)
        try:
            return engine(path)
        except Exception:  # a cache entry damaged on disk: export it again, once
            path.unlink(missing_ok=True)
            return engine(cached_onnx(self.checkpoint, self.width, self.height))

    def _timed(self, rgb: np.ndarray) -> float:
        self.forward(rgb)
        return self.last_forward_s

    def floor_prior(self, intrinsics: Intrinsics | None,
                    floor_from_camera: np.ndarray | None) -> np.ndarray | None:
        """The floor prior (1, 2, h, w) at the network's size for an image with `intrinsics`
        taken from the pose `floor_from_camera` (geometry.floor_prior; zeros when either is
        unknown); None for a model that does not take one."""
        if not self.takes_floor_prior:
            return None
        if intrinsics is None or floor_from_camera is None:
            return self._unknown_prior
        k = intrinsics.resized(self.width, self.height).matrix()
        key = (k.tobytes(), np.asarray(floor_from_camera, np.float64).tobytes())
        if self._last_prior is None or self._last_prior[0] != key:
            prior = floor_prior(torch.from_numpy(k)[None],
                                torch.as_tensor(floor_from_camera, dtype=torch.float64)[None],
                                self.height, self.width)
            self._last_prior = (key, prior.float().numpy())
        return self._last_prior[1]

    def forward(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Network depth (network units, network resolution) for RGB uint8 (H, W, 3); `prior`
        from `floor_prior` (None: unknown)."""
        rgb = resize_image(rgb, self.width, self.height)
        if prior is None and self.takes_floor_prior:
            prior = self._unknown_prior
        start = time.perf_counter()
        depth = self._engine.run(rgb, prior)
        self.last_forward_s = time.perf_counter() - start
        return depth

    def predict(self, rgb: np.ndarray, scale: DepthScale, out_size: tuple[int, int] | None = None,
                min_depth_m: float = 0.0, max_depth_m: float = float("inf"),
                intrinsics: Intrinsics | None = None,
                floor_from_camera: np.ndarray | None = None) -> np.ndarray:
        """Metric depth (H', W') float32 metres for RGB uint8 (H, W, 3); NaN where the network
        gave no finite value or the depth lies outside [min_depth_m, max_depth_m].
        out_size: (width, height) of the result; default the network's resolution.
        intrinsics (of `rgb`) and floor_from_camera: what a model with the floor prior is
        told of the floor (either None: not known)."""
        depth = self.forward(rgb, self.floor_prior(intrinsics, floor_from_camera))
        if out_size is not None and out_size != (self.width, self.height):
            depth = cv2.resize(depth, out_size, interpolation=cv2.INTER_LINEAR)
        return metric_depth(depth, scale.value, min_depth_m, max_depth_m)


def load_model(path: str | Path) -> tuple[Checkpoint, Path | None]:
    """A .pt checkpoint, or an .onnx export (its metadata and its path)."""
    from lumde_ros.checkpoint import load_checkpoint
    from lumde_ros.export import read_onnx_checkpoint

    path = Path(path).expanduser()
    if path.suffix == ".onnx":
        return read_onnx_checkpoint(path), path
    return load_checkpoint(path), None


UNTRAINED_NAME = "(built-in untrained student)"


def shipped_weights(role: str) -> Path:
    """Where the package keeps its default `role` ("student" serves, "teacher" is what the
    trainer fine-tunes): share/lumde_ros/weights/<role>.pt."""
    from lumde_ros.config import share_dir

    return share_dir() / "weights" / f"{role}.pt"


def default_model() -> tuple[Checkpoint, str]:
    """What serves when no model is configured: the student shipped with the package when it
    has one, else the seeded untrained student; and the name to report it by."""
    from lumde_ros.checkpoint import load_checkpoint, untrained_student

    path = shipped_weights("student")
    if path.is_file():
        return load_checkpoint(path), str(path)
    return untrained_student(), UNTRAINED_NAME


def load_model_or_default(path: str | Path | None) -> tuple[Checkpoint, Path | None, str]:
    """`load_model(path)`, or with no path the default model; and the name to report."""
    if path:
        return (*load_model(path), str(path))
    checkpoint, name = default_model()
    return checkpoint, None, name


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
