"""depth_node: camera images in, metric depth, its CameraInfo and a point cloud out.

Subscribes: `image` (sensor_msgs/Image) or `image/compressed` (sensor_msgs/CompressedImage),
`camera_info`. Publishes: `depth/image` (32FC1, metres), `depth/camera_info`, `points`
(PointCloud2), `depth/colored` (rgb8), `/diagnostics`. Parameters: config/depth.yaml.

Threading: the camera callback only keeps the newest frame in a one-slot buffer (overwriting,
and counting, frames inference had no time for) and wakes an inference thread of the node's
own, so the executor stays free for parameters and services while the network runs. (A
MultiThreadedExecutor was measured here to busy-poll its wait set while a long callback runs,
costing the network a third of a core.)
"""
from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from lumde_ros.config import node_defaults
from lumde_ros.errors import ConfigError, IntrinsicsError, LumdeError
from lumde_ros.floor import FloorConfig, FloorScale, mounted_camera, up_in_camera
from lumde_ros.geometry import Intrinsics
from lumde_ros.inference import (BACKEND_CHOICES, SCALE_MODES, DepthScale, Predictor,
                                 load_model_or_default, metric_depth, resolve_scale)
from lumde_ros.nodes.entry import run_node
from lumde_ros.nodes.params import ParamSpec, checked_changes, declare_parameters
from lumde_ros.nodes.qos import INPUT_QOS, RELIABILITIES, MatchedSubscription, profile
from lumde_ros.nodes.throttle import Throttle
from lumde_ros.ros.camera_info import (FOV_RANGE_DEG, camera_intrinsics, fit_to_image,
                                       pinhole_camera_info, unmodelled_distortion)
from lumde_ros.ros.diagnostics import FrameStats, diagnostic_array
from lumde_ros.ros.image import colorize_depth, compressed_to_rgb, depth_to_image, \
    image_to_rgb, rgb_to_image
from lumde_ros.ros.pointcloud import CloudBuilder
from lumde_ros.training.config import load_section

if TYPE_CHECKING:  # rclpy has it from Kilted on; Jazzy's has none
    from rclpy.subscription import MessageInfo

NODE_NAME = "depth_node"
WARN_PERIOD_S = 5.0
# How often input_qos auto re-checks what the camera's publishers offer.
AUTO_QOS_PERIOD_S = 0.5
# Image stamps further than this from the node's clock are taken to be on another clock (a
# driver's device time, a bag played without --clock); they are left out of the latency.
MAX_STAMP_SKEW_S = 60.0

PARAMS = (
    ParamSpec("model_path", "Model to serve: a .pt checkpoint or an .onnx from lumde export; "
              "empty serves the student shipped with the package (an untrained seeded student "
              "where none ships). Setting it at runtime hot-swaps the model; a bad file is "
              "refused and the old model keeps serving."),
    ParamSpec("backend", "Inference engine: auto (times the installed ones at load and keeps "
              "the fastest), torch, onnxruntime or openvino.", read_only=True,
              choices=BACKEND_CHOICES),
    ParamSpec("device", "Torch device: cpu, cuda or cuda:N (cuda needs backend torch).",
              read_only=True),
    ParamSpec("threads", "CPU threads for inference and image preprocessing (PyTorch and "
              "OpenCV; 0: library default).", read_only=True,
              low=0, high=256),
    ParamSpec("input_width", "Network input width in pixels (multiple of 32); 0 with "
              "input_height 0 uses the checkpoint's size.", read_only=True, low=0, high=4096),
    ParamSpec("input_height", "Network input height in pixels (multiple of 32).",
              read_only=True, low=0, high=4096),
    ParamSpec("depth_resolution", "Resolution of depth/image and points: the network's "
              "(cheapest) or the input image's (registered with it pixel for pixel).",
              choices=("network", "input")),
    ParamSpec("min_depth_m", "Depths below this are published as NaN (metres).",
              low=0.0, high=1000.0),
    ParamSpec("max_depth_m", "Depths above this are published as NaN (metres).",
              low=0.0, high=1000.0),
    ParamSpec("scale_mode", "checkpoint: the model's own metric scale; fixed: multiply the "
              "network's depth by depth_scale (for relative-scale models); camera_height: "
              "scale so that the floor seen lies camera_height_m below the camera.",
              choices=SCALE_MODES),
    ParamSpec("depth_scale", "Metres per network depth unit when scale_mode is fixed.",
              low=1e-6, high=1e6),
    ParamSpec("camera_height_m", "Height of the camera's optical centre above the floor "
              "(metres; 0: not known), for scale_mode camera_height and for models that take "
              "the floor prior (they are told where the floor is).", low=0.0, high=100.0),
    ParamSpec("camera_tilt_deg", "Degrees the camera looks below the horizontal (negative: "
              "above), with camera_height_m; the floor is looked for within max_tilt_deg of it "
              "(config/train.yaml, floor).", low=-90.0, high=90.0),
    ParamSpec("image_transport", "raw subscribes `image`; compressed subscribes "
              "`image/compressed` (jpeg/png/tiff).", read_only=True,
              choices=("raw", "compressed")),
    ParamSpec("input_qos", "auto matches the camera publisher's reliability (as rosbag2 "
              "does); or force reliable / best_effort.", read_only=True, choices=INPUT_QOS),
    ParamSpec("max_input_pixels", "Images with more pixels are refused with a warning.",
              low=1, high=2**31 - 1),
    ParamSpec("fallback_hfov_deg", "Horizontal field of view (degrees) assumed until a valid "
              "CameraInfo arrives.", low=FOV_RANGE_DEG[0], high=FOV_RANGE_DEG[1]),
    ParamSpec("output_qos", "Reliability of all outputs; reliable is what RViz subscribes "
              "with.", read_only=True, choices=RELIABILITIES),
    ParamSpec("qos_depth", "History depth of every publisher and subscription.",
              read_only=True, low=1, high=100),
    ParamSpec("publish_points", "Publish `points` (built only while subscribed)."),
    ParamSpec("points_stride", "Keep every N-th pixel of the depth image in the cloud.",
              low=1, high=64),
    ParamSpec("points_color", "Add packed rgb to `points`."),
    ParamSpec("publish_colored", "Publish `depth/colored` (built only while subscribed)."),
    ParamSpec("diagnostics_period_s", "Period of /diagnostics messages (seconds).",
              read_only=True, low=0.1, high=60.0),
)


def problem_kind(err: LumdeError) -> str:
    """Throttling key: the error's class and the start of its text with numbers and quoted
    (publisher-supplied) values blanked, so one recurring problem is rate-limited without
    hiding a different one, and no publisher can create keys without end."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "''", str(err))
    return f"{type(err).__name__}: {re.sub(r'[0-9.]+', '#', text)[:60]}"


def diagnostic_name(node_fqn: str) -> str:
    """Name of a depth node's status in /diagnostics (unique per node, as rqt_robot_monitor
    lists them)."""
    return f"{node_fqn}: depth"


@dataclass(frozen=True)
class DepthParams:
    """The node's parameters, read once and replaced whole on every accepted change."""

    model_path: str
    backend: str
    device: str
    threads: int
    input_width: int
    input_height: int
    depth_resolution: str
    min_depth_m: float
    max_depth_m: float
    scale_mode: str
    depth_scale: float
    camera_height_m: float
    camera_tilt_deg: float
    image_transport: str
    input_qos: str
    max_input_pixels: int
    fallback_hfov_deg: float
    output_qos: str
    qos_depth: int
    publish_points: bool
    points_stride: int
    points_color: bool
    publish_colored: bool
    diagnostics_period_s: float

    def check(self) -> None:
        """Cross-parameter checks (single values are checked by their specs)."""
        if self.min_depth_m >= self.max_depth_m:
            raise ConfigError(f"min_depth_m ({self.min_depth_m}) must be below max_depth_m "
                              f"({self.max_depth_m})")
        if self.scale_mode == "camera_height" and self.camera_height_m <= 0:
            raise ConfigError("scale_mode camera_height needs camera_height_m: the height of "
                              "the camera's optical centre above the floor, in metres")

    def floor_from_camera(self) -> np.ndarray | None:
        """The camera's pose over the floor from camera_height_m and camera_tilt_deg; None
        while camera_height_m is 0 (not given)."""
        if self.camera_height_m <= 0:
            return None
        return mounted_camera(self.camera_height_m, self.camera_tilt_deg)


@dataclass(frozen=True)
class Served:
    """The model in service, the scale applied to its output and, for scale_mode
    camera_height, the running scale from the floor that corrects it."""

    predictor: Predictor
    scale: DepthScale
    name: str
    floor: FloorScale | None = None

    @property
    def metric(self) -> bool:
        """Whether what is published is in metres: with camera_height once a floor was seen."""
        return self.floor.value is not None if self.floor else self.scale.metric

    @property
    def metres_per_unit(self) -> float:
        """Metres per network depth unit as published now."""
        return self.scale.value * ((self.floor.value if self.floor else None) or 1.0)


def serve(predictor: Predictor, name: str, p: DepthParams) -> Served:
    """`predictor` served with the scale `p` asks for (a fresh floor estimate each time: a
    changed height or tilt invalidates the old one)."""
    floor = FloorScale(load_section("floor", FloorConfig)) \
        if p.scale_mode == "camera_height" else None
    return Served(predictor, resolve_scale(predictor.checkpoint, p.scale_mode, p.depth_scale),
                  name, floor)


def load_served(p: DepthParams) -> Served:
    """Load and validate the model `p` asks for (raises LumdeError with the reason)."""
    checkpoint, onnx_path, name = load_model_or_default(p.model_path)
    predictor = Predictor(checkpoint, p.device, p.threads, p.input_width, p.input_height,
                          p.backend, onnx_path)
    return serve(predictor, name, p)


class DepthNode(Node):
    """Monocular metric depth, its CameraInfo and a point cloud, at the newest frame's rate."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(NODE_NAME, **kwargs)
        # Set before anything can fail: a node refused at start-up is still destroyed.
        self._wake, self._stop = threading.Event(), threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, name="lumde_inference",
                                        daemon=True)
        self._params = DepthParams(**declare_parameters(self, PARAMS, node_defaults("depth.yaml")))
        self._params.check()
        self._served = load_served(self._params)
        self._pending: Served | None = None
        self._log_model()
        self._stats = FrameStats()
        self._reported = (0, 0)  # processed and skipped frames at the last diagnostics
        self._throttle = Throttle(self.get_logger(), WARN_PERIOD_S)
        self._clouds = CloudBuilder()
        self._slot: Image | CompressedImage | None = None
        self._slot_lock = threading.Lock()
        self._camera: Intrinsics | None = None

        p = self._params
        out = profile(p.output_qos, p.qos_depth)
        self._depth_pub = self.create_publisher(Image, "depth/image", out)
        self._info_pub = self.create_publisher(CameraInfo, "depth/camera_info", out)
        self._points_pub = self.create_publisher(PointCloud2, "points", out)
        self._colored_pub = self.create_publisher(Image, "depth/colored", out)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        inputs = MutuallyExclusiveCallbackGroup()
        base = self.resolve_topic_name("image")
        compressed = p.image_transport == "compressed"
        self._image_sub = MatchedSubscription(
            self, CompressedImage if compressed else Image,
            f"{base}/compressed" if compressed else base, self._on_image, p.input_qos,
            p.qos_depth, inputs)
        self._info_sub = MatchedSubscription(
            self, CameraInfo, self.resolve_topic_name("camera_info"), self._on_camera_info,
            p.input_qos, p.qos_depth, inputs)
        # Graph checks and diagnostics run on the wall clock, also under use_sim_time (a
        # paused bag still gets diagnostics, a camera is still matched before /clock starts).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if p.input_qos == "auto":
            self.create_timer(AUTO_QOS_PERIOD_S, self._refresh_inputs, clock=steady)
        self.create_timer(p.diagnostics_period_s, self._publish_diagnostics, clock=steady)
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self._worker.start()

    def destroy_node(self) -> None:
        """Stop the inference thread (finishing the frame in hand), then the node."""
        self._stop.set()
        self._wake.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10.0)
        super().destroy_node()

    # --- input -------------------------------------------------------------------------------
    def _refresh_inputs(self) -> None:
        self._image_sub.refresh()
        self._info_sub.refresh()

    def _on_image(self, msg: Image | CompressedImage, info: MessageInfo) -> None:
        publisher = info.get("publisher_gid") or {}
        with self._slot_lock:
            self._stats.frame_received(publisher.get("data", b""),
                                       info.get("publication_sequence_number"))
            if self._slot is not None:
                self._stats.dropped += 1
            self._slot = msg
        self._wake.set()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._camera = camera_intrinsics(msg)
        except IntrinsicsError as err:
            self._throttle.warn(problem_kind(err), f"ignoring CameraInfo: {err}; keeping the "
                                                   "last good intrinsics")
            return
        distortion = unmodelled_distortion(msg, self._image_sub.topic)
        if distortion:
            self.get_logger().warning(distortion, once=True)

    # --- processing --------------------------------------------------------------------------
    def _inference_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self._process_latest()

    def _process_latest(self) -> None:
        with self._slot_lock:
            msg, self._slot = self._slot, None
        if msg is None:
            return
        try:
            self._process(msg)
        except LumdeError as err:
            self._stats.frame_skipped(f"{type(err).__name__}: {err}")
            self._throttle.warn(problem_kind(err), f"skipping frame: {err}")
        except Exception as err:  # a bug must cost one frame, never the inference thread
            self._stats.frame_skipped(f"unexpected {type(err).__name__}: {err}")
            self._throttle.warn(f"bug {type(err).__name__}", "skipping frame after an unexpected "
                                f"error (please report it):\n{traceback.format_exc()}")

    def _process(self, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        p, served = self._params, self._served
        rgb = (compressed_to_rgb(msg, p.max_input_pixels) if isinstance(msg, CompressedImage)
               else image_to_rgb(msg, p.max_input_pixels))
        height, width = rgb.shape[:2]
        predictor = served.predictor
        size = (width, height) if p.depth_resolution == "input" else (predictor.width,
                                                                      predictor.height)
        image_intrinsics = self._intrinsics_for(width, height)
        intrinsics = None if image_intrinsics is None else image_intrinsics.resized(*size)
        mount = p.floor_from_camera()
        seen = {"intrinsics": image_intrinsics, "floor_from_camera": mount}
        if served.floor is None:
            depth = predictor.predict(rgb, served.scale, size, p.min_depth_m, p.max_depth_m,
                                      **seen)
        else:  # the floor is fitted to the whole depth, before the range is cut
            depth = predictor.predict(rgb, served.scale, size, **seen)
            if intrinsics is not None:
                served.floor.update(depth, intrinsics, up_in_camera(mount)[0],
                                    p.camera_height_m)
            depth = metric_depth(depth, served.floor.value or 1.0, p.min_depth_m,
                                 p.max_depth_m)
        header = msg.header
        if not header.frame_id:
            self._throttle.warn("no_frame_id", "the camera's images have an empty "
                                "header.frame_id, so RViz and tf cannot place depth or points; "
                                "set the camera driver's frame_id (its optical frame)")
        self._depth_pub.publish(depth_to_image(depth, header))
        if intrinsics is not None:
            self._info_pub.publish(pinhole_camera_info(intrinsics, header))
            if p.publish_points and self._points_pub.get_subscription_count() > 0:
                self._points_pub.publish(self._clouds.build(
                    depth, intrinsics, header, p.points_stride, rgb if p.points_color else None))
        if p.publish_colored and self._colored_pub.get_subscription_count() > 0:
            self._colored_pub.publish(rgb_to_image(
                colorize_depth(depth, p.min_depth_m, p.max_depth_m), header))
        self._stats.frame_done(self._latency_s(header), predictor.last_forward_s,
                               time.perf_counter() - start)

    def _intrinsics_for(self, width: int, height: int) -> Intrinsics | None:
        """Intrinsics of an input image of this size, or None when CameraInfo cannot fit it."""
        if self._camera is None:
            self._throttle.warn("no_camera_info", (
                f"no valid CameraInfo on {self._info_sub.topic} yet; using "
                f"fallback_hfov_deg={self._params.fallback_hfov_deg} (cloud geometry approximate)"))
            return Intrinsics.from_hfov(width, height, self._params.fallback_hfov_deg)
        fit = fit_to_image(self._camera, width, height)
        if fit.warning:
            self._throttle.warn("camera_info_scaled" if fit.intrinsics else "camera_info_aspect",
                                fit.warning)
        return fit.intrinsics

    def _latency_s(self, header: Header) -> float | None:
        """Input stamp to now, or None when the stamp is unset or on another clock."""
        stamp_ns = header.stamp.sec * 10**9 + header.stamp.nanosec
        if not stamp_ns:
            return None
        latency = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9
        if abs(latency) > MAX_STAMP_SKEW_S:
            self._throttle.warn("stamp_skew", (
                f"image stamps are {latency:.3g} s from this node's clock, so latency is not "
                "reported: the driver stamps with another clock (use its ROS-time option), or "
                "a bag plays without --clock while use_sim_time is false"))
            return None
        return latency

    # --- parameters and model swap -------------------------------------------------------------
    def _validate_params(self, params: list[Parameter]) -> SetParametersResult:
        """Check a change and load any new model before it is accepted (the old one serves on)."""
        try:
            changes = checked_changes(PARAMS, params)
            new = replace(self._params, **changes)
            new.check()
            if "model_path" in changes:
                self._pending = load_served(new)
            elif {"scale_mode", "depth_scale", "camera_height_m",
                  "camera_tilt_deg"} & changes.keys():
                self._pending = serve(self._served.predictor, self._served.name, new)
        except Exception as err:  # whatever fails, the change is refused and the node serves on
            self._pending = None
            reason = str(err) if isinstance(err, LumdeError) else f"{type(err).__name__}: {err}"
            self.get_logger().error(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_params(self, params: list[Parameter]) -> None:
        self._params = replace(self._params, **checked_changes(PARAMS, params))
        if self._pending is not None:
            self._served, self._pending = self._pending, None
            self._log_model()

    def _log_model(self) -> None:
        served, log = self._served, self.get_logger()
        pred = served.predictor
        log.info(f"serving {pred.checkpoint.describe()} from {served.name} on "
                 f"{pred.device} ({pred.backend}), network input {pred.width}x{pred.height}, "
                 f"depth scale {served.scale.value:g}"
                 + (f", corrected by the floor {self._params.camera_height_m:g} m below"
                    if served.floor else "")
                 + (f", floor prior: {self._floor_prior()}" if pred.takes_floor_prior else ""))
        if pred.timings_ms:
            log.info(f"backend {self._params.backend}: forward ms per installed backend "
                     f"{pred.timings_ms}, using {pred.backend}")
        for failure in pred.failures:
            log.warning(f"backend {self._params.backend} left out {failure}")
        for problem in self._model_problems():
            log.warning(problem)
        # Logged, not a diagnostics warning: the node serves as designed without the mount,
        # only less accurately, and /diagnostics reports floor_prior: unknown.
        if self._floor_prior() == "unknown":
            log.warning("the model takes the floor's depth from the camera's mount, which is "
                        "not set: set camera_height_m and camera_tilt_deg (without them its "
                        "depth, metres especially, is less accurate)")

    def _floor_prior(self) -> str:
        """What the served model is told of the floor: none (it takes no floor prior),
        camera_height_m (the mount's parameters) or unknown (not set)."""
        if not self._served.predictor.takes_floor_prior:
            return "none"
        return "camera_height_m" if self._params.floor_from_camera() is not None else "unknown"

    def _model_problems(self) -> list[str]:
        problems = []
        if not self._served.predictor.checkpoint.trained:
            problems.append(f"serving an untrained student ({self._served.name}): its depth is "
                            "not meaningful; set model_path to a trained checkpoint")
        floor = self._served.floor
        if floor is not None and floor.value is None:
            problems.append(f"scale_mode camera_height: no floor found yet in {floor.fits} "
                            f"fit(s) ({floor.last_refusal or 'no frame yet'}); serving the "
                            "model's own scale")
        elif not self._served.metric:
            problems.append("the model's depth is relative, not metres: set scale_mode:=fixed and "
                            "depth_scale, or camera_height, or use a model trained with odometry")
        return problems

    # --- diagnostics ---------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        served, stats = self._served, self._stats
        values = stats.summary()
        values.update(model=served.predictor.checkpoint.describe(),
                      model_path=served.name,
                      backend=served.predictor.backend, device=str(served.predictor.device),
                      metric=served.metric, scale_mode=self._params.scale_mode,
                      scale_source=served.predictor.checkpoint.scale_source,
                      floor_prior=self._floor_prior(),
                      depth_scale=served.metres_per_unit,
                      input_qos=self._image_sub.reliability,
                      intrinsics="camera_info" if self._camera else "fallback_hfov_deg")
        problems = self._model_problems()
        if values["processed_frames"] == 0:
            problems.append(f"no frame processed yet from {self._image_sub.topic}")
        counts = (values["processed_frames"], values["skipped_frames"])
        processed, skipped = (now - before for now, before in zip(counts, self._reported))
        self._reported = counts
        if skipped:
            problems.append(f"{skipped} of {processed + skipped} frames skipped since the last "
                            f"report: {stats.last_error}")
        level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        header = Header(stamp=self.get_clock().now().to_msg())
        self._diag_pub.publish(diagnostic_array(
            diagnostic_name(self.get_fully_qualified_name()), "lumde_ros", level,
            "; ".join(problems) or "ok", values, header))


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run lumde_ros depth_node`."""
    return run_node(DepthNode, lambda: SingleThreadedExecutor(), NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
