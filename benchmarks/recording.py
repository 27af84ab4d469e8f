"""Reading a long robot recording: time to open it (tf is read whole then), frames per second
through Recording.frames(), and peak memory, for a camera with /odom alone, with a busy /tf
beside it (a mobile manipulator's: many joints at 100 Hz), and with /tf alone (poses from its
odom frame, a bag recorded without /odom). Synthetic messages: the figures are the reader's.

    .venv/bin/python benchmarks/recording.py [--seconds 120] [--joints 30]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.sim.recording import (FRAMES, TYPESTORE, _camera_info, _image, _msg, _odometry,
                                     _transform)
from lumde_ros.sim.scene import camera_intrinsics

CAMERA_HZ, ODOM_HZ, TF_HZ = 30, 50, 100
WIDTH, HEIGHT = 160, 120


def write(path: Path, seconds: float, joints: int, odom: bool, tf: bool) -> None:
    """A robot driving a circle at 0.5 m/s with a camera on a static mount and, with `tf`,
    odom -> base_link and `joints` arm joints on /tf."""
    intrinsics = camera_intrinsics(WIDTH, HEIGHT, 70.0)
    pixels = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    events = sorted([(round(k * 1e9 / CAMERA_HZ), "camera") for k in
                     range(int(seconds * CAMERA_HZ))]
                    + ([(round(k * 1e9 / ODOM_HZ), "odom") for k in range(int(seconds * ODOM_HZ))]
                       if odom else [])
                    + ([(round(k * 1e9 / TF_HZ), "tf") for k in range(int(seconds * TF_HZ))]
                       if tf else []))
    mount = pose_matrix(np.array([0.2, 0.0, 0.5]), quaternion_from_rpy(-np.pi / 2, 0, -np.pi / 2))
    start = 10**18
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {name: writer.add_connection(topic, kind, typestore=TYPESTORE) for name, topic, kind
                 in (("image", "/camera/image_raw", "sensor_msgs/msg/Image"),
                     ("info", "/camera/camera_info", "sensor_msgs/msg/CameraInfo"),
                     ("odom", "/odom", "nav_msgs/msg/Odometry"),
                     ("tf", "/tf", "tf2_msgs/msg/TFMessage"),
                     ("tf_static", "/tf_static", "tf2_msgs/msg/TFMessage"))}

        def put(name: str, stamp: int, msg) -> None:
            writer.write(conns[name], stamp, TYPESTORE.serialize_cdr(msg, conns[name].msgtype))
        put("tf_static", start, _msg("tf2_msgs/msg/TFMessage", transforms=[
            _transform(start, FRAMES["base"], FRAMES["optical"], mount)]))
        for offset, kind in events:
            stamp = start + offset
            yaw = 0.5 * offset * 1e-9
            base = pose_matrix(np.array([np.sin(yaw), 1 - np.cos(yaw), 0.0]),
                               quaternion_from_rpy(0.0, 0.0, yaw))
            if kind == "camera":
                put("info", stamp, _camera_info(stamp, FRAMES["optical"], intrinsics))
                put("image", stamp, _image(stamp, FRAMES["optical"], pixels, "rgb8"))
            elif kind == "odom":
                put("odom", stamp, _odometry(stamp, base, (0.5, 0, 0), (0, 0, 0.5)))
            else:
                arm = [_transform(stamp, f"arm_{j}", f"arm_{j + 1}",
                                  pose_matrix(np.array([0.1, 0, 0]),
                                              quaternion_from_rpy(0, 0, 0.01 * j)))
                       for j in range(joints - 1)]
                put("tf", stamp, _msg("tf2_msgs/msg/TFMessage", transforms=[
                    _transform(stamp, FRAMES["odom"], FRAMES["base"], base), *arm]))


def measure(path: str) -> None:
    """In its own process (peak memory is per process): open, read every frame, print."""
    from lumde_ros.data import Recording
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with Recording(path) as recording:
        opened = time.perf_counter() - t0
        t1 = time.perf_counter()
        frames = posed = 0
        for frame in recording.frames():
            frames += 1
            posed += frame.odom_from_camera is not None
        reading = time.perf_counter() - t1
        source = recording.odom_topic
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"{opened:.2f} {frames / reading:.0f} {frames} {posed} {peak:.0f} {source}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--joints", type=int, default=30)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure)
        return
    cases = (("/odom, no /tf", True, False), (f"/odom + /tf ({args.joints} transforms)", True,
                                              True), ("/tf alone", False, True))
    print(f"{args.seconds:.0f} s at {CAMERA_HZ} Hz ({WIDTH}x{HEIGHT} rgb8), /odom {ODOM_HZ} Hz, "
          f"/tf {TF_HZ} Hz")
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, odom, tf) in enumerate(cases):
            path = Path(tmp) / str(k)
            write(path, args.seconds, args.joints, odom, tf)
            out = subprocess.run([sys.executable, __file__, "--measure", str(path)],
                                 capture_output=True, text=True, check=True).stdout.split()
            opened, fps, frames, posed, peak, source = out
            rates.append(float(fps))
            print(f"{name:>28}: open {float(opened):5.2f} s, {float(fps):5.0f} frames/s, "
                  f"{posed}/{frames} posed (from {source}), peak +{peak} MB")
    print(f"frames/s with /tf beside /odom: {rates[1] / rates[0]:.2f} of without")


if __name__ == "__main__":
    main()
