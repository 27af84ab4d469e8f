"""Depth node end to end: a camera process publishing 640x480 rgb8 + CameraInfo at 30 Hz, the
depth node (installed console script) in its own process with the point cloud on, and this
process subscribing like RViz. Prints output rate, latency, CPU and, measured in the same run
before the node starts, the bare network forward time, so the node's overhead is a ratio.

    .venv/bin/python benchmarks/depth_node.py [--seconds 20] [--rate-hz 30]
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

WIDTH, HEIGHT = 640, 480


def publish(rate_hz: float) -> None:
    """Camera process: a driver-like reliable publisher of a moving sequence."""
    import rclpy
    from lumde_ros.geometry import Intrinsics
    from lumde_ros.nodes.demo import CameraPlayer
    from lumde_ros.nodes.qos import profile
    from lumde_ros.sim.corridor import CorridorSequence

    rclpy.init()
    intrinsics = Intrinsics.from_hfov(WIDTH, HEIGHT, 70.0)
    frames = [f.rgb for f in CorridorSequence(intrinsics, frames=30)]
    player = CameraPlayer(intrinsics, profile("reliable", 1), name="bench_camera")
    period, k, next_t = 1.0 / rate_hz, 0, time.monotonic()
    try:
        while rclpy.ok():
            player.publish(frames[k % len(frames)])
            k += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
    except KeyboardInterrupt:
        pass


def bare_forward_ms(threads: int, runs: int = 50) -> float:
    """Median network forward (the torch call only) at the default 320x256 input."""
    import torch
    from lumde_ros.checkpoint import untrained_student
    from lumde_ros.inference import Predictor

    predictor = Predictor(untrained_student(), threads=threads)
    rgb = np.random.default_rng(0).integers(0, 256, (predictor.height, predictor.width, 3),
                                            np.uint8)
    times = []
    for k in range(runs + 10):
        predictor.forward(rgb)
        if k >= 10:
            times.append(predictor.last_forward_s * 1e3)
    torch.set_num_threads(1)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish(args.rate_hz)
        return

    forward_ms = bare_forward_ms(args.threads)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from lumde_ros.nodes.demo import OutputRecorder, depth_node_command

    node = subprocess.Popen(depth_node_command(extra=["-p", f"threads:={args.threads}"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    camera = subprocess.Popen([sys.executable, __file__, "--publish", "--rate-hz",
                               str(args.rate_hz)])
    rclpy.init()
    recorder = OutputRecorder(name="bench_recorder", depth=5)
    arrivals: list[tuple[float, float]] = []  # (receive time, stamp) of depth/image
    lock = threading.Lock()

    def on_depth(msg) -> None:
        now = time.time()
        with lock:
            arrivals.append((now, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    from sensor_msgs.msg import Image
    from lumde_ros.nodes.qos import profile
    recorder.create_subscription(Image, "depth/image", on_depth, profile("reliable", 5))
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        time.sleep(args.warmup)
        with lock:
            arrivals.clear()
        points_before = len(recorder.received("points"))
        cpu_samples = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(1.0)
            d = recorder.last_diagnostics()
            if d:
                cpu_samples.append(float(d["cpu_percent"]))
        with lock:
            window = list(arrivals)
        diag = recorder.last_diagnostics()
        clouds = len(recorder.received("points")) - points_before
    finally:
        for p in (camera, node):
            p.send_signal(signal.SIGINT)
            p.wait(timeout=15)
        executor.shutdown()
        rclpy.try_shutdown()

    rate = len(window) / args.seconds
    e2e = [1e3 * (t - s) for t, s in window]
    node_p50 = float(diag["latency_p50_ms"])
    node_fwd = float(diag["forward_p50_ms"])
    node_proc = float(diag["processing_p50_ms"])
    print(f"camera: {WIDTH}x{HEIGHT} rgb8 at {args.rate_hz:g} Hz (reliable), network 320x256, "
          f"points on, threads {args.threads}, {args.seconds:g} s after {args.warmup:g} s warm-up")
    print(f"bare forward (same run, node not started)  median {forward_ms:7.2f} ms")
    print(f"output rate at the subscriber               {rate:7.2f} Hz depth/image, "
          f"{clouds / args.seconds:.2f} Hz points (node's own: {diag['rate_hz']} Hz)")
    print(f"node latency, stamp -> publish (diag)       p50 {node_p50:7.2f} ms   "
          f"p95 {float(diag['latency_p95_ms']):7.2f} ms")
    print(f"end-to-end, stamp -> subscriber             p50 {np.percentile(e2e, 50):7.2f} ms   "
          f"p95 {np.percentile(e2e, 95):7.2f} ms")
    print(f"node processing, decode -> last publish     p50 {node_proc:7.2f} ms")
    print(f"forward inside the node under load          p50 {node_fwd:7.2f} ms")
    print(f"node overhead (processing - forward, p50)       {node_proc - node_fwd:7.2f} ms = "
          f"{(node_proc - node_fwd) / node_fwd:.0%} of the in-node forward")
    print(f"latency beyond processing (transport, wait for the frame in flight) "
          f"{node_p50 - node_proc:.2f} ms")
    print(f"node CPU                                    median {statistics.median(cpu_samples):6.1f} % "
          f"of one core; dropped {diag['dropped_frames']} of "
          f"{int(diag['dropped_frames']) + int(diag['processed_frames'])} frames")


if __name__ == "__main__":
    main()
