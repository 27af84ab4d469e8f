"""`lumde demo`: the depth node as a separate process, fed a built-in moving sequence over DDS
by a camera player node, with a recorder node saving everything it publishes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from lumde_ros.config import config_path
from lumde_ros.errors import LumdeError
from lumde_ros.geometry import Intrinsics
from lumde_ros.nodes.depth_node import diagnostic_name
from lumde_ros.nodes.qos import profile
from lumde_ros.ros.camera_info import pinhole_camera_info
from lumde_ros.ros.diagnostics import diagnostic_values
from lumde_ros.ros.image import colorize_depth, image_to_depth, rgb_to_image
from lumde_ros.ros.pointcloud import cloud_to_arrays
from lumde_ros.sim.corridor import CorridorSequence

CAMERA_FRAME = "camera_optical_frame"
# Colour scale of the saved panels: the depths the corridor sequence contains.
DEMO_RANGE_M = (0.5, 15.0)


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

    def __init__(self, name: str = "output_recorder", namespace: str = "",
                 depth: int = 50) -> None:
        super().__init__(name, namespace=namespace)
        qos = profile("reliable", depth)
        self.lock = threading.Lock()
        self.messages: dict[str, list] = {"depth/image": [], "depth/camera_info": [],
                                          "points": [], "depth/colored": [], "diagnostics": []}
        for topic, kind in (("depth/image", Image), ("depth/camera_info", CameraInfo),
                            ("points", PointCloud2), ("depth/colored", Image)):
            self.create_subscription(kind, topic, self._keeper(topic), qos)
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
        for msg in reversed(self.received("diagnostics")):
            values = diagnostic_values(msg, diagnostic_name(node_fqn))
            if values:
                return values
        return {}


def depth_node_command(params_file: Path | None = None, remaps: Sequence[str] = (),
                       extra: Sequence[str] = ()) -> list[str]:
    """Command line that starts the depth node as its own process."""
    cmd = [sys.executable, "-m", "lumde_ros.nodes.depth_node", "--ros-args",
           "--params-file", str(params_file or config_path("depth.yaml"))]
    for remap in remaps:
        cmd += ["-r", remap]
    return cmd + list(extra)


def wait_for(condition, timeout_s: float, executor, what: str) -> None:
    """Spin `executor` until `condition()` holds; LumdeError naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise LumdeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


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


def run_demo(out_dir: Path, frames: int, rate_hz: float, width: int = 640,
             height: int = 480) -> dict[str, object]:
    """Start the depth node, stream the sequence to it, save what it publishes in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    intrinsics = Intrinsics.from_hfov(width, height, 70.0)
    sequence = CorridorSequence(intrinsics, frames=frames, rate_hz=rate_hz)
    node_log = open(out_dir / "depth_node.log", "w")
    process = subprocess.Popen(depth_node_command(remaps=("image:=camera/image_raw",
                                                          "camera_info:=camera/camera_info")),
                               stdout=node_log, stderr=subprocess.STDOUT, env=os.environ.copy())
    rclpy.init()
    executor = SingleThreadedExecutor()
    player = CameraPlayer(intrinsics, profile("reliable", 1), image_topic="camera/image_raw",
                          info_topic="camera/camera_info")
    recorder = OutputRecorder()
    try:
        return _stream(sequence, process, executor, player, recorder, out_dir)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        node_log.close()
        executor.shutdown()
        rclpy.try_shutdown()


def _stream(sequence: CorridorSequence, process: subprocess.Popen, executor, player: CameraPlayer,
            recorder: OutputRecorder, out_dir: Path) -> dict[str, object]:
    executor.add_node(player)
    executor.add_node(recorder)
    wait_for(lambda: process.poll() is not None or (
        player.image_pub.get_subscription_count() > 0
        and recorder.count_publishers("depth/image") > 0), 60.0, executor, "the depth node")
    if process.poll() is not None:
        raise LumdeError(f"the depth node exited with code {process.returncode}; see "
                         f"{out_dir / 'depth_node.log'}")
    truth: dict[tuple[int, int], np.ndarray] = {}
    images: dict[tuple[int, int], np.ndarray] = {}
    period = 1.0 / sequence.rate_hz
    next_time = time.monotonic()
    for frame in sequence:
        header = player.publish(frame.rgb)
        key = (header.stamp.sec, header.stamp.nanosec)
        truth[key], images[key] = frame.depth, frame.rgb
        next_time += period
        while time.monotonic() < next_time:
            executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
    wait_for(lambda: recorder.received("depth/image") and len(recorder.received("diagnostics")) > 1,
             5.0, executor, "the last outputs")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return _save(recorder, truth, images, out_dir)


def _save(recorder: OutputRecorder, truth: dict, images: dict, out_dir: Path) -> dict[str, object]:
    depths = recorder.received("depth/image")
    lo, hi = DEMO_RANGE_M
    saved = 0
    for msg in depths[:: max(1, len(depths) // 4)][:4]:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        if key not in truth:
            continue
        rgb = images[key]
        size = (rgb.shape[1], rgb.shape[0])
        pred = cv2.resize(image_to_depth(msg), size, interpolation=cv2.INTER_NEAREST)
        panel = np.hstack([rgb, colorize_depth(truth[key], lo, hi), colorize_depth(pred, lo, hi)])
        cv2.imwrite(str(out_dir / f"frame_{saved:02d}.png"), panel[:, :, ::-1])
        saved += 1
    summary: dict[str, object] = {
        "frames_sent": len(truth), "panels": "image | ground truth | prediction (inverse depth, "
        f"{lo}-{hi} m, Turbo)", **{f"received_{t.replace('/', '_')}": len(recorder.received(t))
                                   for t in recorder.messages}}
    clouds = recorder.received("points")
    if clouds:
        summary["ply_points"] = write_ply(out_dir / "points.ply", *cloud_to_arrays(clouds[-1]))
    summary["diagnostics"] = recorder.last_diagnostics()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
