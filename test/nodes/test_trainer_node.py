"""trainer_node over DDS: recording through its services into bags rosbags reads back, limits,
refusals, shutdown by signal; fine-tuning in the background while the depth node keeps
publishing, the gate, the swap and the rollback."""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import Odometry
from node_graph import CAMERA, wait_until
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import CompressedImage
from std_srvs.srv import Trigger

from tiny import finetune_overlay

from lumde_ros.data import Recording
from lumde_ros.data.repair import unfinished
from lumde_ros.nodes.demo import CameraPlayer, OutputRecorder
from lumde_ros.nodes.depth_node import DepthNode
from lumde_ros.nodes.entry import spin
from lumde_ros.nodes.qos import MatchedSubscription, profile
from lumde_ros.nodes.trainer_node import TrainerNode
from lumde_ros.sim.corridor import CorridorSequence

_names = itertools.count()
SERVICES = ("start_recording", "stop_recording", "train", "cancel", "rollback")


class TrainerGraph:
    """A trainer node (in this process, or `process`: its own), a camera with odometry, and a
    client of its services and status, spun by a background executor."""

    def __init__(self, overrides: dict[str, object], extra_nodes: tuple[Node, ...] = (),
                 namespace: str | None = None, process: subprocess.Popen | None = None) -> None:
        self.namespace = namespace or f"/tr{next(_names)}"
        self.node = None if process else TrainerNode(
            namespace=self.namespace,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        self.camera = CameraPlayer(CAMERA, profile("reliable", 10), namespace=self.namespace)
        self.helper = Node("trainer_client", namespace=self.namespace)
        self.odom_pub = self.helper.create_publisher(Odometry, "odom", profile("reliable", 10))
        self.clients = {name: self.helper.create_client(Trigger, f"trainer_node/{name}")
                        for name in SERVICES}
        self.statuses: list[DiagnosticStatus] = []
        self.helper.create_subscription(DiagnosticStatus, "trainer_node/status",
                                        self.statuses.append, 10)
        self.executor = MultiThreadedExecutor(num_threads=4)
        for node in (self.node, self.camera, self.helper, *extra_nodes):
            if node is not None:
                self.executor.add_node(node)
        self._thread = threading.Thread(target=spin, args=(self.executor,), daemon=True)
        self._thread.start()
        self.sequence = CorridorSequence(CAMERA, frames=200, rate_hz=10.0)
        self.sent = 0
        self.started = time.monotonic()

    def call(self, name: str, timeout_s: float = 60.0) -> Trigger.Response:
        client = self.clients[name]
        assert client.wait_for_service(timeout_sec=20.0), f"no service {name}"
        future = client.call_async(Trigger.Request())
        wait_until(future.done, timeout_s, f"answer of {name}")
        return future.result()

    def stream(self, frames: int, wait_recorded: bool = True, recording: bool = True) -> None:
        """Publish corridor frames with their odometry, once the recorder (`recording`) or
        anyone listens."""
        wait_until(lambda: self.camera.image_pub.get_subscription_count() > 0
                   and (self.odom_pub.get_subscription_count() > 0 or not recording),
                   what="subscriber discovery")
        if recording and self.node is not None:
            # input_qos auto re-creates a subscription once it sees the reliable publisher;
            # frames sent before that could be lost in the swap.
            wait_until(lambda: self.node._recording is None or all(
                sub.reliability == "reliable" for sub in self.node._recording.subscriptions
                if isinstance(sub, MatchedSubscription)
                and sub.topic.startswith(self.namespace)), what="reliable recording")
        for _ in range(frames):
            t = self.sent / self.sequence.rate_hz
            x, z, yaw = self.sequence.pose(t)
            odom = Odometry()
            odom.header.stamp = self.helper.get_clock().now().to_msg()
            odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
            odom.pose.pose.position.x, odom.pose.pose.position.y = z, -x
            odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = (
                math.sin(-yaw / 2), math.cos(-yaw / 2))
            self.odom_pub.publish(odom)
            self.camera.publish(self.sequence.render(t).rgb)
            self.sent += 1
            if not recording:
                time.sleep(0.1)
            elif wait_recorded and self.node is not None:
                wait_until(lambda: self.node._recording is None
                           or self.node._recording.bag.counts[self.node._topics["image"]]
                           + self.node._recording.skipped >= self.sent - self.first,
                           what=f"frame {self.sent} recorded")

    def start(self) -> Trigger.Response:
        self.first = self.sent
        return self.call("start_recording")

    def train(self) -> Path:
        """Call ~/train (it must start) and return the run folder it names."""
        started = self.call("train")
        assert started.success, started.message
        return Path(started.message.split(" in ")[1].split(" (pid")[0])

    def status(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.statuses[-1].values} if self.statuses else {}

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10)  # destroying nodes under a spinning executor races
        if self.node is not None:
            self.node.destroy_node()


@pytest.fixture()
def trainer_graph(ros, tmp_path):
    graphs: list[TrainerGraph] = []

    def make(**overrides: object) -> TrainerGraph:
        graphs.append(TrainerGraph({"output_dir": str(tmp_path / "lumde"), **overrides}))
        return graphs[-1]

    yield make
    for g in graphs:
        g.close()


def recorded_bag(answer: Trigger.Response) -> Path:
    """The bag a successful ~/start_recording answer names."""
    return Path(answer.message.split("recording into ")[1])


def read_bag(path: Path) -> dict[str, list]:
    """Every message of a recording, deserialized, per topic."""
    with AnyReader([path]) as reader:
        out: dict[str, list] = {c.topic: [] for c in reader.connections}
        for conn, _, raw in reader.messages():
            out[conn.topic].append(reader.deserialize(raw, conn.msgtype))
    return out


def test_recording_writes_every_message_untouched_into_a_readable_bag(trainer_graph):
    g = trainer_graph(keyframes="all")
    answer = g.start()
    assert answer.success, answer.message
    bag = recorded_bag(answer)
    g.stream(6)
    wait_until(lambda: g.status().get("recorded_images") == "6", what="status")
    info_topic = f"{g.namespace}/camera_info"
    wait_until(lambda: g.node._recording.bag.counts[info_topic] == 6, what="six camera_info")
    assert g.status()["phase"] == "recording"
    stopped = g.call("stop_recording")
    assert stopped.success and "6 images" in stopped.message
    messages = read_bag(bag)
    ns = g.namespace
    assert len(messages[f"{ns}/image"]) == 6
    assert len(messages[f"{ns}/camera_info"]) == 6 and len(messages[f"{ns}/odom"]) == 6
    first = messages[f"{ns}/image"][0]
    expected = g.sequence.render(0.0).rgb
    assert (first.height, first.width, first.encoding) == (*expected.shape[:2], "rgb8")
    assert np.array_equal(np.frombuffer(first.data, np.uint8).reshape(expected.shape), expected)
    assert messages[f"{ns}/odom"][-1].pose.pose.position.x == pytest.approx(
        g.sequence.pose(5 / g.sequence.rate_hz)[1])
    # A second recording is a new bag; the first is untouched.
    again = g.start()
    assert again.success and again.message != answer.message
    g.stream(2)
    assert g.call("stop_recording").success
    assert len(read_bag(bag)[f"{ns}/image"]) == 6
    wait_until(lambda: g.status().get("recordings") == "2", what="two recordings")


def test_compressed_transport_records_the_compressed_stream_as_sent(trainer_graph):
    g = trainer_graph(keyframes="all", image_transport="compressed")
    answer = g.start()
    pub = g.camera.create_publisher(CompressedImage, "image/compressed", profile("reliable", 10))
    wait_until(lambda: pub.get_subscription_count() > 0, what="compressed subscription")
    payloads = []
    for k in range(3):
        ok, jpeg = cv2.imencode(".jpg", g.sequence.render(k / 10).rgb[..., ::-1])
        msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
        msg.header.stamp = g.helper.get_clock().now().to_msg()
        pub.publish(msg)
        payloads.append(jpeg.tobytes())
        wait_until(lambda: g.node._recording.images == k + 1, what=f"image {k}")
    g.call("stop_recording")
    recorded = read_bag(recorded_bag(answer))[
        f"{g.namespace}/image/compressed"]
    assert [bytes(m.data) for m in recorded] == payloads
    assert all(m.format == "jpeg" for m in recorded)


def test_baseline_keyframes_keep_one_frame_per_distance_travelled(trainer_graph):
    # The corridor camera moves 0.05 m per frame: a 0.12 m baseline keeps every third.
    g = trainer_graph(keyframes="baseline", keyframe_baseline_m=0.12)
    answer = g.start()
    g.stream(9, wait_recorded=False)
    wait_until(lambda: g.node._recording.skipped + g.node._recording.images == 9,
               what="nine frames seen")
    g.call("stop_recording")
    images = read_bag(recorded_bag(answer))[f"{g.namespace}/image"]
    assert len(images) == 3


def test_a_recording_split_into_files_by_size_reads_back_whole_and_in_order(trainer_graph):
    g = trainer_graph(keyframes="all", max_file_mb=2.0)  # two 0.92 MB frames per file
    answer = g.start()
    g.stream(7)
    wait_until(lambda: g.status().get("recorded_files") == "4", what="status counts files")
    stopped = g.call("stop_recording")
    assert stopped.success and "7 images" in stopped.message and "4 file(s)" in stopped.message
    bag = recorded_bag(answer)
    assert sorted(f.name for f in bag.iterdir()) == sorted(
        ["metadata.yaml", *(f"{bag.name}_{i}.mcap" for i in range(4))])
    images = read_bag(bag)[f"{g.namespace}/image"]
    expected = [g.sequence.render(k / g.sequence.rate_hz).rgb for k in range(7)]
    assert [np.array_equal(np.frombuffer(m.data, np.uint8).reshape(e.shape), e)
            for m, e in zip(images, expected)] == [True] * 7


def test_size_limit_ends_a_recording_by_itself(trainer_graph):
    g = trainer_graph(keyframes="all", max_recording_mb=1.0)  # one 640x480 rgb8 frame: 0.92 MB
    assert g.start().success
    g.stream(2)
    wait_until(lambda: g.node._recording is None, what="automatic stop")
    wait_until(lambda: "max_recording_mb" in (g.statuses[-1].message if g.statuses else ""),
               what="status names the limit")
    assert g.status()["phase"] == "idle" and g.status()["recordings"] == "1"


def test_a_nearly_full_disk_ends_a_recording_while_the_bag_can_still_be_closed(
        trainer_graph):
    g = trainer_graph(keyframes="all", min_free_mb=1e9)  # a petabyte: never free here
    answer = g.start()
    g.stream(1)
    wait_until(lambda: g.node._recording is None, what="automatic stop")
    wait_until(lambda: "nearly full" in (g.statuses[-1].message if g.statuses else ""),
               what="status names the disk")
    images = read_bag(recorded_bag(answer))[f"{g.namespace}/image"]
    assert len(images) == 1


def test_refusals_are_answered_with_the_reason_and_the_node_serves_on(trainer_graph, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    g = trainer_graph(output_dir=str(blocker / "lumde"))
    for name, why in (("stop_recording", "not recording"), ("train", "nothing recorded"),
                      ("cancel", "no fine-tune"), ("rollback", "no earlier model")):
        answer = g.call(name)
        assert not answer.success and why in answer.message, (name, answer.message)
    unwritable = g.call("start_recording")
    assert not unwritable.success and "cannot record" in unwritable.message
    wait_until(lambda: g.statuses and g.statuses[-1].level == DiagnosticStatus.ERROR,
               what="error status")
    assert "cannot record" in g.statuses[-1].message

    ok = trainer_graph(keyframes="all")
    # A value outside a parameter's choices is refused when it is set, not when it is used.
    bogus, renamed = ok.node.set_parameters([Parameter("keyframes", value="bogus"),
                                             Parameter("depth_node", value="other")])
    assert not bogus.successful and "keyframes" in bogus.reason and "all" in bogus.reason
    assert not renamed.successful  # its client is made at start-up: read-only
    assert ok.node.get_parameter("keyframes").value == "all"
    assert ok.start().success
    twice = ok.call("start_recording")
    assert not twice.success and "already recording" in twice.message
    busy = ok.call("train")
    assert not busy.success and "stop_recording" in busy.message
    ok.stream(3)
    assert ok.call("stop_recording").success
    alone = ok.call("train")  # there is no depth node in this graph
    assert not alone.success and "depth node (depth_node) is not reachable" in alone.message


class BusyDepthNode(Node):
    """The depth node's parameter interface, answering only between `busy_s` stretches of
    work, as the real one does while it loads and validates a new model."""

    def __init__(self, namespace: str, busy_s: float) -> None:
        super().__init__("depth_node", namespace=namespace)
        self.declare_parameter("model_path", "")
        self.create_timer(0.01, lambda: time.sleep(busy_s))
        self.spinner = SingleThreadedExecutor()
        self.spinner.add_node(self)
        self.thread = threading.Thread(target=spin, args=(self.spinner,), daemon=True)
        self.thread.start()


def test_a_busy_depth_node_stalls_neither_the_status_nor_the_answer(trainer_graph, tmp_path):
    # Status every 0.1 s: the ticks that came due while ~/train waited for the depth node
    # once took every executor thread, and the depth node's answer was never taken in.
    g = trainer_graph(keyframes="all", status_period_s=0.1,
                      teacher_path=str(tmp_path / "missing.pt"))
    busy = BusyDepthNode(g.namespace, busy_s=2.0)
    try:
        assert g.start().success
        g.stream(3)
        assert g.call("stop_recording").success
        before = len(g.statuses)
        answer = g.call("train")
        assert answer.success, answer.message
        assert len(g.statuses) - before >= 10  # ~/status went on while the depth node worked
    finally:
        busy.spinner.shutdown()
        busy.thread.join(timeout=10)
        busy.destroy_node()


@dataclass
class ProcessRecording:
    """What a trainer node recording in its own process left, and what it said."""

    namespace: str
    bag: Path
    sent: int        # frames the camera published
    status: str      # the node's last status message before it was stopped
    output: str      # its stdout and stderr
    returncode: int


def record_in_a_process(output_dir: Path, frames: int, done: Callable[[TrainerGraph], bool],
                        stop_signal: int, file_size_limit: int | None = None,
                        **parameters: object) -> ProcessRecording:
    """Start a trainer node in its own process (keeping every frame; `parameters` more),
    record `frames` camera frames, wait until `done`, then send `stop_signal`. With
    `file_size_limit` (bytes, RLIMIT_FSIZE) its writes beyond it fail as on a full disk."""
    namespace = f"/trsig{next(_names)}"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    process = subprocess.Popen(
        [sys.executable, "-m", "lumde_ros.nodes.trainer_node", "--ros-args", "-r",
         f"__ns:={namespace}", "-p", f"output_dir:={output_dir}", "-p", "keyframes:=all",
         *(a for k, v in parameters.items() for a in ("-p", f"{k}:={v}"))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=limit if file_size_limit else None)
    g = TrainerGraph({}, namespace=namespace, process=process)
    try:
        answer = g.start()
        assert answer.success, answer.message
        g.stream(frames, wait_recorded=False)
        wait_until(lambda: done(g), what="the recording's expected state")
        status = g.statuses[-1].message
        process.send_signal(stop_signal)
        output = process.communicate(timeout=30)[0]
    finally:
        g.close()
        if process.poll() is None:
            process.kill()
    return ProcessRecording(namespace, recorded_bag(answer), g.sent, status, output,
                            process.returncode)


def recorded(images: int) -> Callable[[TrainerGraph], bool]:
    return lambda g: g.status().get("recorded_images") == str(images)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_node_stopped_by_signal_while_recording_leaves_a_readable_bag(
        ros, tmp_path, stop_signal):
    run = record_in_a_process(tmp_path, 4, recorded(4), stop_signal)
    assert run.returncode == 0, run.output
    messages = read_bag(run.bag)
    assert len(messages[f"{run.namespace}/image"]) == 4, run.output
    assert "node shutting down" in run.output


# One 640x480 rgb8 image is 0.92 MB: a 1 MiB chunk closes after its second image.
IMAGES_PER_CHUNK = 2


def test_a_recorder_killed_mid_recording_loses_only_its_last_chunk(ros, tmp_path):
    # SIGKILL: nothing of the node runs after it
    run = record_in_a_process(tmp_path, 11, recorded(11), signal.SIGKILL)
    bag = run.bag
    assert not (bag / "metadata.yaml").exists() and unfinished(bag)
    # The next node on this output_dir finds the dead recording for its next ~/train.
    again = TrainerGraph({"output_dir": str(tmp_path)})
    try:
        assert again.node._recordings == [bag]
        wait_until(lambda: again.status().get("recordings") == "1", what="status")
    finally:
        again.close()
    # Images are counted as messages: under load the first images can arrive before the
    # first CameraInfo (then they make no frame), which is not what is measured here.
    with Recording(bag) as recording:
        images = recording.recovered.messages[f"{run.namespace}/image"]
    assert run.sent - IMAGES_PER_CHUNK <= images <= run.sent, (run.sent, recording.recovered)
    # Recovered once: a later node does not queue it again.
    later = TrainerNode(parameter_overrides=[Parameter("output_dir", value=str(tmp_path))])
    try:
        assert later._recordings == []
    finally:
        later.destroy_node()


def test_a_recorder_killed_while_splitting_keeps_its_closed_files_and_their_successor(
        ros, tmp_path):
    # Files of at most 3 MB: three images each; the fourth file is being written at the end.
    run = record_in_a_process(tmp_path, 11, recorded(11), signal.SIGKILL, max_file_mb=3.0)
    closed = sorted(run.bag.glob("*.mcap"))
    assert [f.name for f in closed] == [f"{run.bag.name}_{i}.mcap" for i in range(3)]
    digests = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in closed}
    assert unfinished(run.bag)[-1].parent.name == f"{run.bag.name}_3"
    with Recording(run.bag) as recording:
        images = recording.recovered.messages[f"{run.namespace}/image"]
    assert run.sent - IMAGES_PER_CHUNK <= images <= run.sent, (run.sent, recording.recovered)
    # Each closed file is a whole MCAP of its own: three images, and left untouched.
    for f in closed:
        with AnyReader([f]) as reader:
            assert sum(c.msgcount for c in reader.connections
                       if c.topic.endswith("/image")) == 3
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in closed} == digests


def test_a_write_failing_on_the_file_size_limit_keeps_every_chunk_before(ros, tmp_path):
    limit = 6_000_000  # three chunks of two images fit, the fourth does not
    # 20 frames for the 8 that reach the limit: frames sent without waiting may be dropped
    # on a loaded machine (once seen in CI with 12), and the limit must still be reached.
    run = record_in_a_process(tmp_path, 20, lambda g: bool(g.statuses) and "failed" in
                              g.statuses[-1].message, signal.SIGINT, file_size_limit=limit)
    with Recording(run.bag) as recording:
        images = recording.recovered.messages[f"{run.namespace}/image"]
    assert "holds at least 6 readable images" in run.status and "File too large" in run.status
    assert images == 3 * IMAGES_PER_CHUNK, run.status


def fine_tune_graph(tmp_path: Path, student: Path, teacher: Path, **overrides: object
                    ) -> tuple[TrainerGraph, DepthNode, OutputRecorder]:
    """A depth node serving `student` beside a trainer with tiny fine-tunes, both in one
    namespace, and a recording of 20 corridor frames already made."""
    namespace = f"/trtrain{next(_names)}"
    depth = DepthNode(namespace=namespace, parameter_overrides=[
        Parameter("model_path", value=str(student)), Parameter("backend", value="torch"),
        Parameter("threads", value=1)])
    outputs = OutputRecorder(namespace=namespace, topics=("depth/image",))
    settings = {"output_dir": str(tmp_path / "lumde"), "keyframes": "all",
                "teacher_path": str(teacher), "teacher_steps": 2, "student_steps": 2,
                "holdout": 0.3, "learning_rate": 1e-4, "status_period_s": 0.2,
                "train_config": str(finetune_overlay(tmp_path / "tiny.yaml")), **overrides}
    g = TrainerGraph(settings, extra_nodes=(depth, outputs), namespace=namespace)
    assert g.start().success
    g.stream(20)
    assert g.call("stop_recording").success
    return g, depth, outputs


def wait_phase(g: TrainerGraph, phase: str, timeout_s: float = 240.0) -> None:
    wait_until(lambda: g.status().get("phase") == phase, timeout_s, f"phase {phase}: "
               f"{g.statuses[-1].message if g.statuses else ''}")


def test_training_runs_in_the_background_deploys_the_accepted_student_and_rolls_back(
        ros, tmp_path, student_path, tiny_teacher):
    # A wide margin: these two tiny steps must pass the gate whatever they change.
    g, depth, outputs = fine_tune_graph(tmp_path, student_path, tiny_teacher, gate_margin=10.0)
    try:
        run = g.train()
        before = len(outputs.received("depth/image"))
        while g.status().get("phase") not in ("deployed", "failed", "rejected"):
            g.stream(1, recording=False)  # the camera keeps streaming into the depth node
            assert time.monotonic() - g.started < 240, g.statuses[-1].message
        assert g.status()["phase"] == "deployed", g.statuses[-1].message
        served = depth.get_parameter("model_path").value
        assert Path(served).parent == tmp_path / "lumde" / "models" and Path(served).is_file()
        assert depth._served.name == served
        assert len(outputs.received("depth/image")) > before  # depth flowed during training
        assert (run / "gate.json").is_file() and "held-out photometric error" in \
            g.statuses[-1].message
        assert g.status()["accepted"] == "True" and g.status()["exit_status"] == "0"

        # Started again beside a depth node that serves its default model, the trainer has
        # it serve the fine-tuned student again: a relaunch keeps what the robot learned.
        namespace = f"/trrestart{next(_names)}"
        fresh = DepthNode(namespace=namespace, parameter_overrides=[
            Parameter("backend", value="torch"), Parameter("threads", value=1)])
        restarted = TrainerGraph({"output_dir": str(tmp_path / "lumde"),
                                  "status_period_s": 0.2}, extra_nodes=(fresh,),
                                 namespace=namespace)
        try:
            wait_phase(restarted, "restored", 60)
            assert fresh.get_parameter("model_path").value == served
            assert restarted.status()["models_served_before"] == "1"
            # Only the trainer restarted: the depth node serves the saved model already, and
            # the rollback history comes back all the same.
            restarted.node._serve_saved({"model_path": served, "served_before": ["a", "b"]})
            assert restarted.node._history == ["a", "b"]
        finally:
            restarted.close()
            fresh.destroy_node()

        back = g.call("rollback")
        assert back.success, back.message
        assert depth.get_parameter("model_path").value == str(student_path)
        again = g.call("rollback")
        assert not again.success and "no earlier model" in again.message
        saved = json.loads((tmp_path / "lumde" / "models" / "serving.json").read_text())
        assert saved == {"model_path": str(student_path), "served_before": []}
        # The recording was trained on: the next ~/train needs new data.
        assert "nothing recorded" in g.call("train").message
    finally:
        g.close()


def test_a_cancelled_fine_tune_is_resumable_and_a_corrupted_student_is_rejected(
        ros, tmp_path, student_path, tiny_teacher):
    g, depth, _ = fine_tune_graph(tmp_path, student_path, tiny_teacher, teacher_steps=100000)
    try:
        run = g.train()
        wait_phase(g, "training teacher", 120)
        cancelled = g.call("cancel")
        assert cancelled.success and "--resume" in cancelled.message
        assert (run / "teacher" / "state.pt").is_file()
        wait_phase(g, "cancelled")

        # A student whose weights blow up (learning rate 1e30) cannot serve: the gate says
        # so, and the depth node keeps its model.
        g.node.set_parameters([
            Parameter("teacher_steps", value=2), Parameter("train_config", value=str(
                finetune_overlay(tmp_path / "blowup.yaml", learning_rate=1e30)))])
        g.train()
        wait_phase(g, "rejected")
        assert "cannot serve" in g.statuses[-1].message
        assert g.status()["accepted"] == "False" and g.status()["exit_status"] == "3"
        assert depth.get_parameter("model_path").value == str(student_path)
        assert not g.call("rollback").success
    finally:
        g.close()
