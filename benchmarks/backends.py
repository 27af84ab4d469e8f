"""Backends compared in one run: the network forward alone per backend (median of 50 after
warm-up, 320x256) for the default student and the default teacher, then the depth node end to
end per backend (serving the default student at its own input size) with a 30 Hz 640x480
camera in another process and the point cloud on.

    .venv/bin/python benchmarks/backends.py [--seconds 15] [--threads 2]
"""
from __future__ import annotations

import argparse

from depth_node import bare_forward_ms, measure_node

from lumde_ros.inference import installed_backends


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    backends = installed_backends()
    for role in ("student", "teacher"):
        forward = {b: bare_forward_ms(args.threads, b, role=role, width=320, height=256)
                   for b in backends}
        print(f"default {role}, 320x256, {args.threads} threads: forward median of 50")
        for b, ms in forward.items():
            print(f"  {b:>12}: {ms:7.2f} ms  ({forward['torch'] / ms:4.1f}x PyTorch eager)")
    print("\ndepth node, 640x480 rgb8 camera at 30 Hz, points on:")
    print(f"  {'backend':>12} {'node Hz':>8} {'recv Hz':>8} {'lat p50':>8} {'lat p95':>8} "
          f"{'CPU ms/frame':>13} {'dropped':>8}")
    for b in backends:
        m = measure_node(b, args.threads, args.seconds, args.warmup, 30.0)
        print(f"  {b:>12} {m['frames'] / args.seconds:8.2f} {m['rate_hz']:8.2f} "
              f"{m['latency_p50_ms']:8.2f} "
              f"{m['latency_p95_ms']:8.2f} {m['cpu_ms_per_frame']:13.2f} {m['dropped']:8d}")


if __name__ == "__main__":
    main()
