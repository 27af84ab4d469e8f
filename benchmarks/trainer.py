"""Trainer node costs, one run: (1) the depth node's output rate with a 30 Hz 640x480 camera,
alone and while a fine-tune (`lumde finetune`, as ~/train starts it: `threads` and `nice`
from config/trainer.yaml) runs on the same machine, and their ratio; (2) what recording costs:
the trainer node's CPU while it records every frame of that camera, and the frames and
megabytes it wrote.

    .venv/bin/python benchmarks/trainer.py --work /tmp/trainer-bench [--seconds 20]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from depth_node import HEIGHT, WIDTH, cpu_seconds, measure_node, stop

from lumde_ros.training.background import FinetuneProcess
from lumde_ros.training.finetune import FinetuneOptions
from lumde_ros.training.log import PROGRESS_FILE

LUMDE = [sys.executable, "-m", "lumde_ros.cli"]


def fine_tune(work: Path) -> FinetuneProcess:
    """A long fine-tune on a simulated recording, started the way ~/train starts it; returns
    once it is training (past loading its data)."""
    bag = work / "room"
    if not bag.exists():
        subprocess.run([*LUMDE, "simulate", "--out", str(bag), "--frames", "150", "--json",
                        "/dev/null"], check=True)
    options = FinetuneOptions.defaults(teacher_steps=100000)
    run = work / f"run-{time.strftime('%H%M%S')}"
    process = FinetuneProcess(run, [bag], None, None, options, None,
                              _trainer_default("nice"))
    while not (run / "teacher" / PROGRESS_FILE).exists():
        if process.returncode() is not None:
            raise RuntimeError(f"the fine-tune ended: {process.log_tail()}")
        time.sleep(0.5)
    print(f"fine-tune running: threads {options.threads}, nice {_trainer_default('nice')}")
    return process


def _trainer_default(name: str) -> object:
    from lumde_ros.config import node_defaults
    return node_defaults("trainer.yaml")[name]


def measure_recording(work: Path, seconds: float, rate_hz: float) -> dict[str, float]:
    """The trainer node (own process, every frame kept) fed by a camera process: its CPU while
    idle and while recording, and what the bag holds."""
    import rclpy
    from rclpy.node import Node
    from std_srvs.srv import Trigger

    from lumde_ros.data import Recording

    node = subprocess.Popen([sys.executable, "-m", "lumde_ros.nodes.trainer_node", "--ros-args",
                             "-p", f"output_dir:={work / 'trainer'}", "-p", "keyframes:=all",
                             "-p", "max_recording_mb:=100000.0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    camera = subprocess.Popen([sys.executable, str(Path(__file__).parent / "depth_node.py"),
                               "--publish", "--rate-hz", str(rate_hz)])
    rclpy.init()
    client_node = Node("bench_trainer_client")

    def call(name: str) -> str:
        client = client_node.create_client(Trigger, f"trainer_node/{name}")
        assert client.wait_for_service(timeout_sec=30.0)
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(client_node, future, timeout_sec=30.0)
        return future.result().message

    try:
        time.sleep(3.0)
        cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
        time.sleep(seconds / 2)
        idle = (cpu_seconds(node.pid) - cpu0) / (time.monotonic() - t0)
        bag = Path(call("start_recording").split("recording into ")[1])
        cpu0, t0 = cpu_seconds(node.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(node.pid), time.monotonic()
        call("stop_recording")
    finally:
        stop(camera, node)
        client_node.destroy_node()
        rclpy.try_shutdown()
    with Recording(bag, ground_truth=False) as recording:
        images = sum(1 for _ in recording.frames())
    size = sum(f.stat().st_size for f in bag.iterdir())
    elapsed = t1 - t0
    return {"idle_cpu_percent": 100 * idle, "recording_cpu_percent": 100 * (cpu1 - cpu0) / elapsed,
            "cpu_ms_per_frame": 1e3 * (cpu1 - cpu0) / max(images, 1),
            "frames_recorded": images, "frames_offered": rate_hz * elapsed,
            "mb_per_s": size / 1e6 / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2, help="depth node inference threads")
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    alone = measure_node(args.backend, args.threads, args.seconds, args.warmup, args.rate_hz)
    training = fine_tune(args.work)
    try:
        loaded = measure_node(args.backend, args.threads, args.seconds, args.warmup,
                              args.rate_hz)
        progress = json.loads((training.out / "teacher" / PROGRESS_FILE).read_text())
    finally:
        training.stop()
    recording = measure_recording(args.work, args.seconds, args.rate_hz)
    print(f"\ncamera {WIDTH}x{HEIGHT} rgb8 at {args.rate_hz:g} Hz; depth node backend "
          f"{alone['backend']}, {args.threads} threads, points on; {args.seconds:g} s windows")
    for name, m in (("alone", alone), ("while fine-tuning", loaded)):
        print(f"depth node {name:<18} {m['node_hz']:6.2f} Hz, latency p50 "
              f"{m['latency_p50_ms']:6.1f} ms p95 {m['latency_p95_ms']:6.1f} ms, CPU "
              f"{m['cpu_ms_per_frame']:5.1f} ms/frame")
    print(f"rate ratio (while fine-tuning / alone)  {loaded['node_hz'] / alone['node_hz']:.2f} "
          f"(target >= 0.8); the fine-tune meanwhile: {progress['s_per_step']:.2f} s/step")
    r = recording
    print(f"recording every frame: trainer node CPU {r['recording_cpu_percent']:.1f} % of a core "
          f"(idle {r['idle_cpu_percent']:.1f} %), {r['cpu_ms_per_frame']:.2f} ms per frame, "
          f"{r['frames_recorded']} of {r['frames_offered']:.0f} frames, {r['mb_per_s']:.1f} MB/s")


if __name__ == "__main__":
    main()
