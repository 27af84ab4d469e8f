"""trainer_node: the robot records its camera, fine-tunes its depth model on what it recorded
(no ground truth), and swaps the result into the depth node once the gate accepts it.

Records (raw subscriptions: messages are written as they arrive, never re-encoded): `image`
(or `image/compressed`), `camera_info`, `odom`, `/tf`, `/tf_static`, into MCAP rosbag2s under
output_dir/recordings, each split into files bounded in duration and size. Services
(std_srvs/Trigger): `~/start_recording`, `~/stop_recording`, `~/train`, `~/cancel`,
`~/rollback`. Publishes `~/status` (diagnostic_msgs/DiagnosticStatus) and /diagnostics.
Parameters: config/trainer.yaml.

Training runs `lumde finetune` in a separate, lower-priority, thread-limited process
(training/background.py); this node only starts it, watches its files and acts on its result:
an accepted student is copied to output_dir/models and set as the depth node's model_path (the
depth node validates it and keeps serving the old one if it refuses); `~/rollback` restores
the model served before. What the depth node serves after a swap, and the models before it,
are kept in output_dir/models/serving.json: started again, the node has a depth node that
serves its default model serve that one again, so a relaunch does not lose a fine-tune.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue, SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from lumde_ros.config import node_defaults
from lumde_ros.data.repair import SUFFIX, unfinished
from lumde_ros.data.sampling import KEYFRAME_MODES, KeyframeChooser
from lumde_ros.errors import BagError, ConfigError, LumdeError
from lumde_ros.files import atomic_path
from lumde_ros.nodes.bag_io import BagWriter, type_name
from lumde_ros.nodes.entry import run_node
from lumde_ros.nodes.params import ParamSpec, checked_changes, declare_parameters
from lumde_ros.nodes.qos import INPUT_QOS, MatchedSubscription
from lumde_ros.ros.diagnostics import diagnostic_array
from lumde_ros.training.background import FinetuneProcess
from lumde_ros.training.finetune import TRAINER_CONFIG, FinetuneOptions

NODE_NAME = "trainer_node"
# Exit statuses of `lumde finetune` (see cli.py): accepted, rejected by the gate, stopped.
ACCEPTED, REJECTED, STOPPED = 0, 3, 130
SERVICE_TIMEOUT_S = 30.0  # the depth node validates a new model before it answers
# How a user continues a stopped fine-tune: colcon installs `lumde` off the PATH.
RESUME_COMMAND = "ros2 run lumde_ros lumde finetune"
SERVING_FILE = "serving.json"  # in output_dir/models: the swapped-in model and those before it


def tf_message_type() -> type | None:
    """tf2_msgs/TFMessage, or None where tf2_msgs is not installed (PyPI-only ROS)."""
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None
    return TFMessage

PARAMS = (
    ParamSpec("output_dir", "Recordings (recordings/), fine-tune runs (runs/) and accepted "
              "models (models/) are kept here; ~ is expanded.", read_only=True),
    ParamSpec("image_transport", "raw records `image`; compressed records `image/compressed`.",
              read_only=True, choices=("raw", "compressed")),
    ParamSpec("input_qos", "auto matches the camera publisher's reliability; or force "
              "reliable / best_effort.", read_only=True, choices=INPUT_QOS),
    ParamSpec("keyframes", "Which frames are recorded: all, time (one per keyframe_period_s) or "
              "baseline (one per keyframe_baseline_m of odometry).", choices=KEYFRAME_MODES),
    ParamSpec("keyframe_period_s", "Seconds between recorded frames (keyframes: time, and "
              "baseline until odometry arrives).", low=0.0, high=3600.0),
    ParamSpec("keyframe_baseline_m", "Metres between recorded frames (keyframes: baseline).",
              low=0.0, high=100.0),
    ParamSpec("max_recording_s", "A recording stops by itself after this many seconds.",
              low=1.0, high=1e6),
    ParamSpec("max_recording_mb", "A recording stops by itself at this many megabytes.",
              low=1.0, high=1e7),
    ParamSpec("min_free_mb", "A recording stops by itself when its disk has less free space "
              "than this (megabytes), so the bag can still be closed.", low=0.0, high=1e9),
    ParamSpec("max_file_s", "A recording is split into files of at most this many seconds "
              "(0: no limit), so a recorder that dies leaves closed files behind.",
              low=0.0, high=1e6),
    ParamSpec("max_file_mb", "A recording is split into files of at most this many "
              "megabytes (0: no limit).", low=0.0, high=1e7),
    ParamSpec("teacher_path", "Teacher checkpoint to fine-tune; empty: the shipped teacher."),
    ParamSpec("depth_node", "Name of the depth node whose model_path is replaced (relative "
              "names resolve in this node's namespace).", read_only=True),
    ParamSpec("teacher_steps", "Optimiser steps of the teacher fine-tune.", low=1, high=10**7),
    ParamSpec("student_steps", "Optimiser steps of the distillation.", low=1, high=10**7),
    ParamSpec("learning_rate", "Learning rate of both phases (unless train_config sets one "
              "for a phase).", low=1e-9, high=1.0),
    ParamSpec("holdout", "Fraction of each recording kept out of training for the gate.",
              low=0.01, high=0.9),
    ParamSpec("gate_margin", "Relative increase of held-out photometric error still accepted.",
              low=0.0, high=10.0),
    ParamSpec("threads", "CPU threads of the training process, PyTorch and OpenCV each (0: "
              "all).", low=0, high=256),
    ParamSpec("nice", "OS priority offset of the training process.", low=0, high=19),
    ParamSpec("train_config", "YAML overlaying config/train.yaml for fine-tunes (empty: none)."),
    ParamSpec("status_period_s", "Period of ~/status and /diagnostics (seconds).",
              read_only=True, low=0.1, high=60.0),
)


@dataclass
class Recording:
    """The recording in progress: its bag, what it keeps, when it started."""

    bag: BagWriter
    chooser: KeyframeChooser
    started: float
    subscriptions: list
    position: np.ndarray | None = None
    images: int = 0
    skipped: int = 0  # frames that were not keyframes


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


class TrainerNode(Node):
    """Record, fine-tune, gate, swap, roll back."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(NODE_NAME, **kwargs)
        # Set before anything can fail: a node refused at start-up is still closed.
        # State lock: held briefly, never across a call to the depth node, which can be busy
        # for seconds (a model swap) while status, recording and the services go on.
        self._lock = threading.RLock()
        self._model_lock = threading.Lock()  # one change of the depth node's model at a time
        self._recording: Recording | None = None
        self._training: FinetuneProcess | None = None
        self._p = declare_parameters(self, PARAMS, node_defaults(TRAINER_CONFIG))
        self._root = Path(self._p["output_dir"]).expanduser()
        # Trained on by ~/train: those finished this session, and those a recorder that died
        # (kill -9, power cut) left unfinished, not yet recovered.
        self._recordings: list[Path] = self._left_by_a_dead_recorder()
        self._history: list[str] = []  # model_path values served before each swap
        self._phase, self._message, self._level = "idle", "ready", DiagnosticStatus.OK
        self._last_result: dict[str, object] = {}
        self._serving_at_start = ""  # the depth node's model_path when the fine-tune started
        self._saved = self._saved_serving()  # served again once the depth node answers
        self._topics: dict[str, str] = {}
        self._record_group = MutuallyExclusiveCallbackGroup()
        services = ReentrantCallbackGroup()
        clients = MutuallyExclusiveCallbackGroup()
        depth = self._p["depth_node"].rstrip("/")
        self._get_client = self.create_client(GetParameters, f"{depth}/get_parameters",
                                              callback_group=clients)
        self._set_client = self.create_client(SetParameters, f"{depth}/set_parameters",
                                              callback_group=clients)
        for name, handler in (("start_recording", self._start_recording),
                              ("stop_recording", self._stop_recording), ("train", self._train),
                              ("cancel", self._cancel), ("rollback", self._rollback)):
            self.create_service(Trigger, f"~/{name}", handler, callback_group=services)
        self._status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        # Its own group: one tick at a time, so late ticks never occupy every executor thread.
        self.create_timer(self._p["status_period_s"], self._tick, clock=steady,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)

    def _left_by_a_dead_recorder(self) -> list[Path]:
        """Recordings under output_dir that were never closed and have no repaired copy yet:
        the next fine-tune reads them through one (lumde_ros.data.repair)."""
        folder = self._root / "recordings"
        found = sorted(d for d in folder.glob("*") if d.is_dir() and unfinished(d)
                       and not d.with_name(d.name + SUFFIX).exists()) if folder.is_dir() else []
        if found:
            self.get_logger().warning(
                f"{len(found)} recording(s) were left unfinished by a recorder that died "
                f"({', '.join(d.name for d in found)}): ~/train recovers every complete "
                "message of them and trains on them")
        return found

    def _validate_params(self, params: list) -> SetParametersResult:
        """Refuse a value that is not one of a parameter's choices before it lands (a later
        ~/start_recording would fail on it)."""
        try:
            checked_changes(PARAMS, params)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_params(self, params: list) -> None:
        with self._lock:
            self._p.update(checked_changes(PARAMS, params))

    # --- recording -----------------------------------------------------------------------------
    def _start_recording(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self._recording is not None:
                return _answer(response, False, f"already recording into "
                                                f"{self._recording.bag.path}")
            compressed = self._p["image_transport"] == "compressed"
            image_type = CompressedImage if compressed else Image
            image = self.resolve_topic_name("image") + ("/compressed" if compressed else "")
            info, odom = self.resolve_topic_name("camera_info"), self.resolve_topic_name("odom")
            topics = {image: image_type, info: CameraInfo, odom: Odometry}
            tf_type = tf_message_type()
            if tf_type is None:
                self.get_logger().warning(
                    "tf2_msgs is not installed: /tf and /tf_static are not recorded, so "
                    "fine-tunes on this recording cannot place the camera on the robot and "
                    "learn relative depth only; install tf2_msgs (part of every ROS 2 install)")
            else:
                topics.update({"/tf": tf_type, "/tf_static": tf_type})
            path = self._root / "recordings" / _stamp()
            try:
                bag = BagWriter(path, {t: type_name(c) for t, c in topics.items()},
                                self._p["max_file_s"], self._p["max_file_mb"])
            except BagError as err:
                self._set_phase("idle", f"cannot record: {err}", DiagnosticStatus.ERROR)
                return _answer(response, False, str(err))
            chooser = KeyframeChooser(self._p["keyframes"], self._p["keyframe_period_s"],
                                      self._p["keyframe_baseline_m"])
            self._topics = {"image": image, "odom": odom}
            self._recording = rec = Recording(bag, chooser, time.monotonic(), [])
            group, policy = self._record_group, self._p["input_qos"]
            rec.subscriptions = [
                MatchedSubscription(self, image_type, image, self._on_image, policy, 10, group,
                                    raw=True),
                MatchedSubscription(self, CameraInfo, info, self._writer(info), policy, 10,
                                    group, raw=True),
                MatchedSubscription(self, Odometry, odom, self._on_odometry, policy, 50, group,
                                    raw=True)]
            if tf_type is not None:
                # Static transforms are latched: a late subscriber still gets them all.
                latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                     reliability=ReliabilityPolicy.RELIABLE,
                                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
                # /tf follows its publishers' reliability as the camera topics do (a
                # best-effort /tf would never reach a reliable subscription).
                rec.subscriptions += [
                    MatchedSubscription(self, tf_type, "/tf", self._writer("/tf"), policy, 100,
                                        group, raw=True),
                    self.create_subscription(tf_type, "/tf_static", self._writer("/tf_static"),
                                             latched, callback_group=group, raw=True)]
            self._set_phase("recording", f"recording {image} into {path}")
            return _answer(response, True, f"recording into {path}")

    def _stop_recording(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self._recording is None:
                return _answer(response, False, "not recording")
            return _answer(response, True, self._finish_recording("stopped on request"))

    def _finish_recording(self, why: str) -> str:
        """Close the bag (keeping everything written) and stop listening; returns a summary."""
        rec, self._recording = self._recording, None
        for sub in rec.subscriptions:
            if isinstance(sub, MatchedSubscription):
                sub.destroy()
            else:
                self.destroy_subscription(sub)
        rec.bag.close()
        summary = (f"{why}: {rec.bag.path} holds {rec.images} images, "
                   f"{rec.bag.bytes / 1e6:.1f} MB in {len(rec.bag.files)} file(s)")
        if rec.bag.error:
            # The bag could not be closed: what its completed chunks hold is read back
            # through a repaired copy; the chunk being written is lost.
            kept = rec.bag.synced[self._topics["image"]]
            summary = (f"{why}: {rec.bag.path} holds at least {kept} readable images ("
                       f"{rec.images - kept} more were in the chunk being written); "
                       f"{rec.bag.error}; reading it recovers the rest")
            self._set_phase("idle", summary, DiagnosticStatus.ERROR)
            self.get_logger().error(summary)
        else:
            self._set_phase("idle", summary)
            self.get_logger().info(summary)
        if rec.images:
            self._recordings.append(rec.bag.path)
        return summary

    def _writer(self, topic: str):
        def write(raw: bytes) -> None:
            self._write(topic, raw)
        return write

    def _write(self, topic: str, raw: bytes) -> bool:
        rec = self._recording
        if rec is None:
            return False
        if rec.bag.write(topic, self.get_clock().now().nanoseconds, raw):
            return True
        with self._lock:  # the bag failed (full disk...): what it holds stays readable
            if self._recording is rec:
                self._finish_recording("recording failed")
        return False

    def _on_odometry(self, raw: bytes) -> None:
        rec = self._recording
        if rec is not None and self._write(self._topics["odom"], raw):
            p = deserialize_message(raw, Odometry).pose.pose.position
            rec.position = np.array([p.x, p.y, p.z])

    def _on_image(self, raw: bytes) -> None:
        rec = self._recording
        if rec is None:
            return
        if not rec.chooser.keep(self.get_clock().now().nanoseconds * 1e-9, rec.position):
            rec.skipped += 1
            return
        if self._write(self._topics["image"], raw):
            rec.images += 1
        limit = None
        if time.monotonic() - rec.started >= self._p["max_recording_s"]:
            limit = f"max_recording_s ({self._p['max_recording_s']:g} s) reached"
        elif rec.bag.bytes >= self._p["max_recording_mb"] * 1e6:
            limit = f"max_recording_mb ({self._p['max_recording_mb']:g} MB) reached"
        elif shutil.disk_usage(rec.bag.path).free < self._p["min_free_mb"] * 1e6:
            # Stop while the bag can still be closed: a write that hits a full disk leaves
            # an MCAP without its index, which readers refuse.
            limit = (f"the disk is nearly full (less than min_free_mb "
                     f"{self._p['min_free_mb']:g} MB free)")
        if limit:
            with self._lock:
                if self._recording is rec:
                    self._finish_recording(limit)

    # --- training ------------------------------------------------------------------------------
    def _cannot_train(self) -> str | None:
        """Why ~/train must refuse now (call with the lock held), or None."""
        if self._training is not None:
            return f"already training in {self._training.out}"
        if self._recording is not None:
            return "recording in progress: call ~/stop_recording first"
        if not self._recordings:
            return "nothing recorded yet: call ~/start_recording and ~/stop_recording first"
        if self._saved is not None:
            return (f"the depth node ({self._p['depth_node']}) has not answered yet; the model "
                    "swapped in before this node last stopped is served again first")
        return None

    def _train(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            refusal = self._cannot_train()
        if refusal:
            return _answer(response, False, refusal)
        try:
            with self._model_lock:  # after a restore in progress (_serve_saved)
                serving = self._serving_model()  # outside the state lock: see __init__
            with self._lock:
                refusal = self._cannot_train()  # a call meanwhile may have changed that
                if refusal:
                    return _answer(response, False, refusal)
                options = FinetuneOptions.defaults(**{k: self._p[k] for k in (
                    "teacher_steps", "student_steps", "learning_rate", "holdout",
                    "gate_margin", "threads")})
                self._training = FinetuneProcess(
                    self._root / "runs" / _stamp(), list(self._recordings),
                    self._p["teacher_path"] or None, serving or None, options,
                    self._p["train_config"] or None, self._p["nice"])
                self._serving_at_start = serving
                message = (f"fine-tuning on {len(self._recordings)} recording(s) in "
                           f"{self._training.out} (pid {self._training.pid})")
        except (LumdeError, OSError) as err:
            self._set_phase("idle", f"cannot train: {err}", DiagnosticStatus.ERROR)
            return _answer(response, False, str(err))
        self._set_phase("training", message)
        return _answer(response, True, message)

    def _cancel(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            training = self._training
            if training is None:
                return _answer(response, False, "no fine-tune is running")
            self._training = None
        training.stop()
        message = (f"fine-tune cancelled; its state is saved: {RESUME_COMMAND} --out "
                   f"{training.out} --resume continues it")
        self._set_phase("cancelled", message)
        return _answer(response, True, message)

    def _check_training(self) -> None:
        """Act on a fine-tune that has ended: deploy, report a rejection or a failure."""
        with self._lock:
            training = self._training
            if training is None or training.returncode() is None:
                return
            self._training = None
        code = training.stop()
        result = training.result() or {}
        self._last_result = {"run": str(training.out), "exit_status": code,
                             **{k: result[k] for k in ("accepted", "model") if k in result}}
        gate = result.get("gate", {})
        new, old = (gate.get(role, {}).get("photometric_error", math.nan)
                    for role in ("candidate", "serving"))
        figures = f"held-out photometric error {new:.4f} (serving model {old:.4f})"
        if code == ACCEPTED and result.get("accepted"):
            self._deploy(Path(result["model"]), training.out, figures)
        elif code == REJECTED:
            self._set_phase("rejected", f"the gate rejected the new student: "
                                        f"{gate.get('reason', '?')}; {figures}",
                            DiagnosticStatus.WARN)
        else:
            self._set_phase("failed", f"fine-tune ended with status {code}: "
                                      f"{training.log_tail()}", DiagnosticStatus.ERROR)
        self.get_logger().info(f"fine-tune {training.out}: {self._message}")

    def _deploy(self, model: Path, run: Path, figures: str) -> None:
        """Keep the accepted student under models/ and make the depth node serve it."""
        target = self._root / "models" / f"{run.name}-student.pt"
        with atomic_path(target) as tmp:
            shutil.copyfile(model, tmp)
        with self._model_lock:
            ok, reason = self._set_model(str(target))
            if ok:
                self._history.append(self._serving_at_start)
                self._save_serving(str(target))
        if ok:
            with self._lock:
                self._recordings.clear()  # trained on: the next fine-tune starts from new data
            self._set_phase("deployed", f"serving {target}; {figures}")
        else:
            self._set_phase("failed", f"the depth node refused {target}: {reason}",
                            DiagnosticStatus.ERROR)

    def _rollback(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._model_lock:
            if not self._history:
                return _answer(response, False, "no earlier model to roll back to")
            previous = self._history[-1]
            ok, reason = self._set_model(previous)
            if not ok:
                return _answer(response, False, f"the depth node refused {previous!r}: {reason}")
            self._history.pop()
            self._save_serving(previous)
            message = f"rolled back: serving {previous or 'the default model'}"
            self._set_phase("rolled back", message)
            return _answer(response, True, message)

    # --- the depth node's model_path -----------------------------------------------------------
    def _save_serving(self, model_path: str) -> None:
        """Keep what the depth node serves after a swap and the rollback history on disk."""
        with atomic_path(self._root / "models" / SERVING_FILE) as tmp:
            tmp.write_text(json.dumps({"model_path": model_path,
                                       "served_before": self._history}, indent=2))

    def _saved_serving(self) -> dict[str, object] | None:
        """The model a swap left the depth node serving before this node last stopped (None:
        none, or the default model), with the models before it."""
        path = self._root / "models" / SERVING_FILE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            model, before = str(saved["model_path"]), [str(m) for m in saved["served_before"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.get_logger().warning(f"{path} is unreadable ({err}); the depth node serves "
                                      "what it was started with")
            return None
        return {"model_path": model, "served_before": before} if model else None

    def _serve_saved(self, saved: dict[str, object]) -> None:
        """Serve the model swapped in before this node last stopped again, unless the depth
        node was started with a model of its own (a model_path not empty)."""
        model = str(saved["model_path"])
        with self._model_lock:
            try:
                current = self._serving_model()
            except LumdeError as err:
                self.get_logger().warning(f"cannot serve {model} again: {err}")
                return
            if current and current != model:
                self.get_logger().info(f"the depth node was started with {current}; "
                                       f"{model}, swapped in before, is not served again")
                return
            if not current:  # a relaunch: the depth node is back on its default model
                ok, reason = self._set_model(model)
                if not ok:
                    self._set_phase("idle", f"the depth node refused {model}, swapped in "
                                            f"before this node last stopped: {reason}",
                                    DiagnosticStatus.WARN)
                    self.get_logger().warning(self._message)
                    return
                self._set_phase("restored", f"serving {model} again, the model swapped in "
                                            "before this node last stopped")
            # Served again, or still (only this node restarted): its history holds.
            self._history = list(saved["served_before"])
        self.get_logger().info(f"serving {model}, swapped in before this node last stopped; "
                               "its rollback history is restored")

    def _call(self, client, request):
        """A service call from a callback: waits (other callback groups keep spinning)."""
        if not client.wait_for_service(timeout_sec=5.0):
            raise LumdeError(f"the depth node ({self._p['depth_node']}) is not reachable: "
                             f"no {client.srv_name} service")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(SERVICE_TIMEOUT_S):
            future.cancel()
            raise LumdeError(f"{client.srv_name} did not answer within {SERVICE_TIMEOUT_S} s")
        return future.result()

    def _serving_model(self) -> str:
        """The depth node's model_path now ('' = its default model)."""
        reply = self._call(self._get_client, GetParameters.Request(names=["model_path"]))
        if not reply.values or reply.values[0].type != ParameterType.PARAMETER_STRING:
            raise LumdeError(f"{self._p['depth_node']} has no string parameter model_path")
        return reply.values[0].string_value

    def _set_model(self, path: str) -> tuple[bool, str]:
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=path)
        try:
            reply = self._call(self._set_client, SetParameters.Request(
                parameters=[ParameterMsg(name="model_path", value=value)]))
        except LumdeError as err:
            return False, str(err)
        result = reply.results[0]
        return result.successful, result.reason

    # --- status --------------------------------------------------------------------------------
    def _set_phase(self, phase: str, message: str, level: bytes = DiagnosticStatus.OK) -> None:
        self._phase, self._message, self._level = phase, message, level

    def _tick(self) -> None:
        self._check_training()
        if self._saved is not None and self._set_client.service_is_ready():
            saved, self._saved = self._saved, None  # answered in seconds: not in this timer
            threading.Thread(target=self._serve_saved, args=(saved,), daemon=True).start()
        values: dict[str, object] = {"phase": self._phase,
                                     "recordings": len(self._recordings)}
        rec, training = self._recording, self._training
        if rec is not None:
            for sub in rec.subscriptions:  # input_qos auto: follow the camera's publishers
                if isinstance(sub, MatchedSubscription):
                    sub.refresh()
            values.update(recording=str(rec.bag.path), recorded_images=rec.images,
                          skipped_frames=rec.skipped,
                          recorded_mb=round(rec.bag.bytes / 1e6, 2),
                          recorded_files=len(rec.bag.files) + rec.bag.open,
                          recording_s=round(time.monotonic() - rec.started, 1))
        if training is not None:
            progress = training.progress()
            values.update(run=str(training.out), pid=training.pid)
            if progress:
                values.update(phase=f"training {progress['phase']}", step=progress["step"],
                              steps=progress["steps"], eta_s=round(progress["eta_s"], 1),
                              **{f"loss_{k}": round(v, 5) for k, v in
                                 progress["losses"].items()})
        values.update(self._last_result)
        values["models_served_before"] = len(self._history)
        name = f"{self.get_fully_qualified_name()}: trainer"
        array = diagnostic_array(name, "lumde_ros", self._level, self._message, values,
                                 Header(stamp=self.get_clock().now().to_msg()))
        self._status_pub.publish(array.status[0])
        self._diag_pub.publish(array)

    def close(self) -> None:
        """Finish a recording (the bag stays readable) and stop a fine-tune (it saves its
        state for `lumde finetune --resume`)."""
        with self._lock:
            if self._recording is not None:
                self._finish_recording("node shutting down")
            training, self._training = self._training, None
        if training is not None:
            training.stop()
            self.get_logger().info(f"fine-tune stopped with the node; continue it with: "
                                   f"{RESUME_COMMAND} --out {training.out} --resume")

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def _answer(response: Trigger.Response, success: bool, message: str) -> Trigger.Response:
    response.success, response.message = success, message
    return response


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run lumde_ros trainer_node`."""
    # Service handlers wait for the depth node's answers while other callbacks run.
    return run_node(TrainerNode, lambda: MultiThreadedExecutor(num_threads=4), NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
