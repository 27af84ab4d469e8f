"""Depth node end to end: a camera process publishing 640x480 rgb8 + CameraInfo at 30 Hz, the
depth node (installed console script) in its own process with the point cloud on, and this
process subscribing like RViz. Prints output rate, latency, CPU and, measured in the same run
before the node starts, the bare network forward time, so the node's overhead is a ratio.

    .venv/bin/python benchmarks/depth_node.py [--seconds 20] [--rate-hz 30] [--backend torch]
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
CAMERA_RATE = "camera_rate_hz"


def publish(rate_hz: float) -> None:
    """Camera process: a moving sequence published with ROS's default QoS (reliable, depth
    10), as most camera drivers do."""
    import rclpy
    from lumde_ros.geometry import Intrinsics
    from lumde_ros.nodes.demo import CameraPlayer
    from lumde_ros.nodes.qos import profile
    from lumde_ros.sim.corridor import CorridorSequence

    rclpy.init()
    intrinsics = Intrinsics.from_hfov(WIDTH, HEIGHT, 70.0)
    frames = [f.rgb for f in CorridorSequence(intrinsics, frames=30)]
    player = CameraPlayer(intrinsics, profile("reliable", 10), name="bench_camera")
    period, k, start = 1.0 / rate_hz, 0, time.monotonic()
    next_t = start
    try:
        while rclpy.ok():
            player.publish(frames[k % len(frames)])
            k += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
    except KeyboardInterrupt:
        pass
    # What the camera achieved, for the measuring process (a loaded machine can slow it too).
    print(f"{CAMERA_RATE} {k / (time.monotonic() - start):.3f}", flush=True)


def default_predictor(threads: int, backend: str = "torch", role: str = "student",
                      width: int = 0, height: int = 0):
    """A Predictor of the default `role` model (shipped, else the untrained student) at
    width x height (0: the model's own size)."""
    from lumde_ros.checkpoint import load_checkpoint
    from lumde_ros.inference import Predictor, default_model, shipped_weights

    checkpoint = default_model()[0] if role == "student" else load_checkpoint(
        shipped_weights(role))
    return Predictor(checkpoint, threads=threads, backend=backend, input_width=width,
                     input_height=height)


def forward_ms(predictor, runs: int = 50, warmup: int = 10) -> float:
    """Median network forward alone over `runs`, after `warmup` untimed ones."""
    rgb = np.random.default_rng(0).integers(0, 256, (predictor.height, predictor.width, 3),
                                            np.uint8)
    times = []
    for k in range(runs + warmup):
        predictor.forward(rgb)
        if k >= warmup:
            times.append(predictor.last_forward_s * 1e3)
    return statistics.median(times)


def stop(*processes: subprocess.Popen) -> None:
    """Ctrl-C each process (nodes shut down cleanly on it) and wait for it."""
    for p in processes:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_node(backend: str, threads: int, seconds: float, warmup: float,
                 rate_hz: float) -> dict[str, float]:
    """The depth node (own process) fed by a camera process, measured from a subscriber."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from lumde_ros.nodes.demo import OutputRecorder, depth_node_command
    from lumde_ros.nodes.entry import spin
    from lumde_ros.nodes.qos import profile

    node = subprocess.Popen(depth_node_command(extra=["-p", f"threads:={threads}",
                                                      "-p", f"backend:={backend}"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    camera = subprocess.Popen([sys.executable, __file__, "--publish", "--rate-hz", str(rate_hz)],
                              stdout=subprocess.PIPE, text=True)
    rclpy.init()
    recorder = OutputRecorder(name="bench_recorder", depth=5, topics=("points",))
    arrivals: list[tuple[float, float]] = []
    lock = threading.Lock()

    def on_depth(msg) -> None:
        with lock:
            arrivals.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    recorder.create_subscription(Image, "depth/image", on_depth, profile("reliable", 5))
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    thread = threading.Thread(target=spin, args=(executor,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60.0  # a loaded machine starts the node slower
        while int(recorder.last_diagnostics().get("processed_frames", 0)) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the depth node processed no frame within a minute")
            time.sleep(0.5)
        time.sleep(warmup)  # measured from the first frame on: a start-up is no steady rate
        with lock:
            arrivals.clear()
        points_before = len(recorder.received("points"))
        (stamp0, diag0), cpu0, wall0 = recorder.last_stamped_diagnostics(), \
            cpu_seconds(node.pid), time.monotonic()
        time.sleep(seconds)
        (stamp1, diag1), cpu1, wall1 = recorder.last_stamped_diagnostics(), \
            cpu_seconds(node.pid), time.monotonic()
        with lock:
            window = list(arrivals)
        clouds = len(recorder.received("points")) - points_before
    finally:
        stop(camera, node)
        executor.shutdown()
        rclpy.try_shutdown()
    camera_hz = float(camera.stdout.read().split(CAMERA_RATE)[-1])
    frames = int(diag1["processed_frames"]) - int(diag0["processed_frames"])
    # Diagnostics come once a second: count frames between two of them, over their own stamps.
    node_hz = frames / (stamp1 - stamp0)
    e2e = [1e3 * (t - s) for t, s in window]
    return {"backend": diag1["backend"], "camera_hz": camera_hz, "node_hz": node_hz,
            "rate_hz": len(window) / seconds,
            "points_hz": clouds / seconds,
            "latency_p50_ms": float(diag1["latency_p50_ms"]),
            "latency_p95_ms": float(diag1["latency_p95_ms"]),
            "e2e_p50_ms": float(np.percentile(e2e, 50)),
            "e2e_p95_ms": float(np.percentile(e2e, 95)),
            "processing_p50_ms": float(diag1["processing_p50_ms"]),
            "forward_p50_ms": float(diag1["forward_p50_ms"]),
            "cpu_ms_per_frame": 1e3 * (cpu1 - cpu0) / max(node_hz * (wall1 - wall0), 1.0),
            "dropped": int(diag1["dropped_frames"]) - int(diag0["dropped_frames"]),
            "frames": frames}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish(args.rate_hz)
        return
    bare_ms = forward_ms(default_predictor(args.threads, args.backend))
    m = measure_node(args.backend, args.threads, args.seconds, args.warmup, args.rate_hz)
    print(f"camera: {WIDTH}x{HEIGHT} rgb8 at {args.rate_hz:g} Hz (reliable), default model, "
          f"points on, backend {m['backend']}, threads {args.threads}, {args.seconds:g} s after "
          f"{args.warmup:g} s warm-up")
    print(f"bare forward (same run, node not started)  median {bare_ms:7.2f} ms")
    print(f"camera publishing rate (its own count)      {m['camera_hz']:7.2f} Hz")
    print(f"node output rate (its diagnostics)          {m['node_hz']:7.2f} Hz")
    print(f"output rate at the subscriber               {m['rate_hz']:7.2f} Hz depth/image, "
          f"{m['points_hz']:.2f} Hz points")
    print(f"node latency, stamp -> publish (diag)       p50 {m['latency_p50_ms']:7.2f} ms   "
          f"p95 {m['latency_p95_ms']:7.2f} ms")
    print(f"end-to-end, stamp -> subscriber             p50 {m['e2e_p50_ms']:7.2f} ms   "
          f"p95 {m['e2e_p95_ms']:7.2f} ms")
    print(f"node processing, decode -> last publish     p50 {m['processing_p50_ms']:7.2f} ms")
    print(f"forward inside the node under load          p50 {m['forward_p50_ms']:7.2f} ms")
    overhead = m["processing_p50_ms"] - m["forward_p50_ms"]
    print(f"node overhead (processing - forward, p50)       {overhead:7.2f} ms = "
          f"{overhead / m['forward_p50_ms']:.0%} of the in-node forward")
    print(f"node CPU per processed frame                    {m['cpu_ms_per_frame']:7.2f} ms "
          f"({m['frames']} frames, {m['dropped']} dropped)")


if __name__ == "__main__":
    main()
