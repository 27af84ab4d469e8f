"""`lumde demo`: simulate an evaluation recording, play it through the ROS 2 graph into the
depth node (its own process, on the recording's clock), record what the node publishes into a
new bag, and judge it against the ground truth. Also the camera player and output recorder
nodes the tests drive the depth node with."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from rosbags.highlevel import AnyReader

from lumde_ros.config import config_path
from lumde_ros.data import Recording
from lumde_ros.errors import LumdeError
from lumde_ros.evaluation import ProtocolMetrics, format_table
from lumde_ros.floor import mount_of
from lumde_ros.geometry import Intrinsics
from lumde_ros.nodes.bag_io import BagPlayer, BagRecorder
from lumde_ros.nodes.depth_node import diagnostic_name
from lumde_ros.nodes.entry import spin
from lumde_ros.nodes.qos import profile
from lumde_ros.ros.camera_info import pinhole_camera_info
from lumde_ros.ros.diagnostics import diagnostic_values
from lumde_ros.ros.image import colorize_depth, image_to_depth, rgb_to_image
from lumde_ros.ros.pointcloud import cloud_to_arrays
from lumde_ros.sim.recording import EVAL_SEED_START, TOPICS, SimulateOptions, simulate

CAMERA_FRAME = "camera_optical_frame"
# Evaluation range and colour scale of the panels (metres): indoor scenes.
DEMO_RANGE_M = (0.3, 10.0)
# The demo's default scene: a held-out hall (evaluation split, never trained on) with chairs,
# benches and cylinders standing in the room; the README's figures are on it.
DEMO_SEED, DEMO_LAYOUT = EVAL_SEED_START + 6, "hall"


class CameraPlayer(Node):
    """Publishes RGB frames and their CameraInfo, stamped now, like a camera driver;
    `qos` is its publishers' profile."""

    def __init__(self, intrinsics: Intrinsics, qos: QoSProfile, name: str = "camera_player",
                 namespace: str = "", image_topic: str = "image",
                 info_topic: str = "camera_info", frame_id: str = CAMERA_FRAME) -> None:
        super().__init__(name, namespace=namespace)
        self.intrinsics, self.frame_id = intrinsics, frame_id
        self.image_pub = self.create_publisher(Image, image_topic, qos)
        self.info_pub = self.create_publisher(CameraInfo, info_topic, qos)

    def publish(self, rgb: np.ndarray, info: CameraInfo | None = None) -> Header:
        """Publish one frame (and `info`, default this camera's); returns the header used."""
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        self.info_pub.publish(info or pinhole_camera_info(self.intrinsics, header))
        self.image_pub.publish(rgb_to_image(rgb, header))
        return header


class OutputRecorder(Node):
    """Subscribes (reliable, as RViz does) to every output of a depth node and keeps them."""

    OUTPUTS = {"depth/image": Image, "depth/camera_info": CameraInfo, "points": PointCloud2,
               "depth/colored": Image}

    def __init__(self, name: str = "output_recorder", namespace: str = "", depth: int = 50,
                 topics: tuple[str, ...] = tuple(OUTPUTS)) -> None:
        super().__init__(name, namespace=namespace)
        qos = profile("reliable", depth)
        self.lock = threading.Lock()
        self.messages: dict[str, list] = {topic: [] for topic in (*self.OUTPUTS, "diagnostics")}
        for topic in topics:
            self.create_subscription(self.OUTPUTS[topic], topic, self._keeper(topic), qos)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._keeper("diagnostics"), 10)

    def _keeper(self, topic: str):
        def keep(msg: object) -> None:
            with self.lock:
                self.messages[topic].append(msg)
        return keep

    def received(self, topic: str) -> list:
        with self.lock:
            return list(self.messages[topic])

    def last_diagnostics(self, node_fqn: str = "/depth_node") -> dict[str, str]:
        """Values of the latest diagnostics of the depth node `node_fqn` ({} before any)."""
        return self.last_stamped_diagnostics(node_fqn)[1]

    def last_stamped_diagnostics(self, node_fqn: str = "/depth_node"
                                 ) -> tuple[float, dict[str, str]]:
        """Stamp (s) and values of the latest diagnostics of `node_fqn` ((0.0, {}) before
        any): rates measured between two of them count over the node's own clock."""
        for msg in reversed(self.received("diagnostics")):
            values = diagnostic_values(msg, diagnostic_name(node_fqn))
            if values:
                return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, values
        return 0.0, {}


def depth_node_command(params_file: Path | None = None, remaps: Sequence[str] = (),
                       extra: Sequence[str] = ()) -> list[str]:
    """Command line that starts the depth node as its own process."""
    cmd = [sys.executable, "-m", "lumde_ros.nodes.depth_node", "--ros-args",
           "--params-file", str(params_file or config_path("depth.yaml"))]
    for remap in remaps:
        cmd += ["-r", remap]
    return cmd + list(extra)


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray | None) -> int:
    """Write the finite points of a cloud as binary PLY (MeshLab, CloudCompare, Open3D read
    it); returns the point count."""
    valid = np.isfinite(xyz).all(axis=-1)
    points = xyz[valid].astype("<f4")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}",
              "property float x", "property float y", "property float z"]
    record = [("xyz", "<f4", 3)]
    if rgb is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        record.append(("rgb", "u1", 3))
    table = np.empty(len(points), record)
    table["xyz"] = points
    if rgb is not None:
        table["rgb"] = rgb[valid]
    with open(path, "wb") as f:
        f.write(("\n".join(header + ["end_header"]) + "\n").encode())
        f.write(table.tobytes())
    return len(points)


def camera_mount(recording: Path) -> tuple[float, float]:
    """The simulated robot's camera_height_m and camera_tilt_deg, from its first frame's
    pose over the floor: what a user sets for their own robot's mount."""
    with Recording(recording, ground_truth=False) as bag:
        pose = next(frame.floor_from_camera for frame in bag.frames())
    return (0.0, 0.0) if pose is None else mount_of(pose)


def run_demo(out_dir: Path, frames: int, rate_hz: float, seed: int | None = None
             ) -> dict[str, object]:
    """The whole demo on the simulated scene `seed` (None: DEMO_SEED's DEMO_LAYOUT); returns
    the summary also written to `out_dir`/summary.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in ("recording", "outputs"):
        shutil.rmtree(out_dir / old, ignore_errors=True)
    recording = out_dir / "recording"
    scene = dict(seed=DEMO_SEED, layout=DEMO_LAYOUT) if seed is None else dict(seed=seed)
    simulate(SimulateOptions(out=recording, frames=frames, rate_hz=rate_hz, **scene),
             progress=True)
    height_m, tilt_deg = camera_mount(recording)
    log = open(out_dir / "depth_node.log", "w")
    process = subprocess.Popen(depth_node_command(
        remaps=(f"image:={TOPICS['image']}", f"camera_info:={TOPICS['camera_info']}"),
        extra=["-p", "use_sim_time:=true", "-p", "depth_resolution:=input",
               "-p", "points_stride:=2", "-p", f"camera_height_m:={height_m:.3f}",
               "-p", f"camera_tilt_deg:={tilt_deg:.2f}"]),
        stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    executor = SingleThreadedExecutor()
    try:
        player = BagPlayer(recording, [TOPICS["image"], TOPICS["camera_info"]])
        recorder = BagRecorder(out_dir / "outputs", {
            "/depth/image": Image, "/depth/camera_info": CameraInfo, "/points": PointCloud2,
            "/diagnostics": DiagnosticArray})
        for node in (player, recorder):
            executor.add_node(node)
        spinner = threading.Thread(target=spin, args=(executor,), daemon=True)
        spinner.start()
        deadline = time.monotonic() + 60.0
        while not (player.subscribers_ready()
                   and recorder.count_publishers("/depth/image") > 0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise LumdeError(f"the depth node did not come up; see {log.name}")
            time.sleep(0.1)
        played = player.play()
        time.sleep(2.0)  # the last frame's outputs
        recorder.close()
        counts = dict(recorder.counts)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        executor.shutdown()
        rclpy.try_shutdown()
    return _report(recording, out_dir, played, counts)


def _report(recording: Path, out_dir: Path, played: int,
            counts: dict[str, int]) -> dict[str, object]:
    """Evaluate the recorded outputs against the ground truth; panels, GIF, table, cloud."""
    outputs: dict[int, np.ndarray] = {}
    diagnostics: dict[str, str] = {}
    last_cloud = None
    with AnyReader([out_dir / "outputs"]) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == "/depth/image":
                outputs[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = \
                    image_to_depth(msg)
            elif conn.topic == "/points":
                last_cloud = msg
            elif conn.topic == "/diagnostics":
                diagnostics = diagnostic_values(msg, diagnostic_name("/depth_node")) or diagnostics
    lo, hi = DEMO_RANGE_M
    metrics = ProtocolMetrics(lo, hi)
    panels = []
    with Recording(recording) as rec:
        for frame in rec.frames():
            pred = outputs.get(frame.stamp_ns)
            if pred is None or frame.depth is None:
                continue
            metrics.add(pred, frame.depth)
            panels.append(np.hstack([frame.rgb, colorize_depth(frame.depth, lo, hi),
                                     colorize_depth(pred, lo, hi)]))
    for k, panel in enumerate(panels[:: max(1, len(panels) // 4)][:4]):
        cv2.imwrite(str(out_dir / f"frame_{k:02d}.png"), panel[:, :, ::-1])
    if panels:
        iio.imwrite(out_dir / "demo.gif", [p[::2, ::2] for p in panels], duration=100, loop=0)
    table = format_table(metrics.results())
    (out_dir / "evaluation.txt").write_text(table + "\n")
    summary: dict[str, object] = {
        "recording": str(recording), "messages_played": played,
        "outputs_recorded": counts, "frames_evaluated": metrics.frames,
        "panels": f"image | ground truth | prediction, log depth {lo}-{hi} m, Turbo",
        **metrics.results(), "diagnostics": diagnostics}
    if last_cloud is not None:
        summary["ply_points"] = write_ply(out_dir / "points.ply", *cloud_to_arrays(last_cloud))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
