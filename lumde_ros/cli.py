"""The `lumde` command: `lumde info`, `lumde demo` (later issues add training and evaluation).
A LumdeError is printed without a traceback and exits with status 1."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lumde_ros.errors import LumdeError


def _info(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.checkpoint import load_checkpoint, untrained_student
    from lumde_ros.inference import network_size
    from lumde_ros.models import count_macs

    checkpoint = load_checkpoint(args.model) if args.model else untrained_student()
    net = checkpoint.build()
    width, height = network_size(checkpoint, args.width, args.height, getattr(net, "STRIDE", 1))
    return {"model": str(args.model or "(built-in untrained student)"),
            "arch": checkpoint.arch, "arch_config": checkpoint.arch_config,
            "input_width": width, "input_height": height,
            "parameters": sum(p.numel() for p in net.parameters()),
            "macs": count_macs(net, width, height), "metric": checkpoint.metric,
            "depth_scale": checkpoint.depth_scale, "provenance": checkpoint.provenance}


def _demo(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.nodes.demo import run_demo

    return run_demo(Path(args.out), args.frames, args.rate_hz)


def _print(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if key == "macs":
            value = f"{value / 1e9:.3f} G"
        elif key == "parameters":
            value = f"{value / 1e6:.3f} M"
        print(f"{key:>20}: {value}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lumde", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="architecture, parameter count and MACs of a model")
    info.add_argument("--model", type=Path, help="checkpoint (.pt); default: untrained student")
    info.add_argument("--width", type=int, default=0, help="input width (default: the model's)")
    info.add_argument("--height", type=int, default=0, help="input height (default: the model's)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_info)
    demo = sub.add_parser("demo", help="run the depth node on a built-in sequence over ROS 2")
    demo.add_argument("--out", default="demo_output", help="output directory")
    demo.add_argument("--frames", type=int, default=40, help="frames to stream")
    demo.add_argument("--rate-hz", type=float, default=10.0, help="camera rate")
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.set_defaults(run=_demo)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = args.run(args)
    except LumdeError as err:
        print(f"lumde {args.command}: error: {err}", file=sys.stderr)
        return 1
    _print(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
