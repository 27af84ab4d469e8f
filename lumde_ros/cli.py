"""The `lumde` command: info, simulate, eval, export, demo, train-teacher, distill, finetune.
A LumdeError or a file-system error is printed without a traceback and exits with status 1."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from lumde_ros.errors import LumdeError
from lumde_ros.files import atomic_path

STDOUT = "-"
# Exit status of a run stopped by Ctrl-C or SIGTERM after saving (the shell's 128 + SIGINT).
INTERRUPTED = 130
# Exit status of a fine-tune whose student the gate rejected (it is kept, not deployed).
REJECTED = 3


def _number(kind: type, accept: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse type: a finite `kind` that `accept`s, else an error saying `what` it must
    be (a zero frame rate or size failed deep inside with a traceback)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value
    return parse


COUNT = _number(int, lambda v: v > 0, "a positive integer")
SIZE = _number(int, lambda v: v >= 0, "a size in pixels (0: the model's)")
SEED = _number(int, lambda v: v >= 0, "a seed (0 or more)")
VISIT = _number(int, lambda v: v >= 0, "a visit number (0 or more)")
POSITIVE = _number(float, lambda v: v > 0, "a positive number")
MILLISECONDS = _number(float, lambda v: v >= 0, "milliseconds (0 or more)")
FOV = _number(float, lambda v: 1 <= v <= 179, "a field of view of 1-179 degrees")


def _info(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.checkpoint import resolved_arch_config
    from lumde_ros.errors import ConfigError
    from lumde_ros.inference import load_model, load_model_or_default, network_size
    from lumde_ros.models import build_depth_net, count_macs
    from lumde_ros.training.config import DistillConfig, TeacherConfig, load_section

    checkpoint, _, name = load_model_or_default(args.model)
    width, height = network_size(checkpoint, args.width, args.height)

    def cost(arch: str, arch_config: dict) -> dict[str, int]:
        net = build_depth_net(arch, arch_config)  # weights do not matter
        return {"parameters": sum(p.numel() for p in net.parameters()),
                "macs": count_macs(net, width, height)}

    # The student/teacher pair: this model and --teacher, or the default of the other role
    # (config/train.yaml), both at this input size.
    own = cost(checkpoint.arch, checkpoint.arch_config)
    sizes = {checkpoint.arch: own}
    if args.teacher:
        other = load_model(args.teacher)[0]
        if other.arch != "teacher" or checkpoint.arch != "student":
            raise ConfigError(f"--teacher compares a student with a teacher; got a "
                              f"{checkpoint.arch} model and a {other.arch} --teacher")
        sizes["teacher"] = cost(other.arch, other.arch_config)
    for role, section, kind in (("teacher", "teacher", TeacherConfig),
                                ("student", "distill", DistillConfig)):
        if role not in sizes:
            sizes[role] = cost(role, resolved_arch_config(role, load_section(section,
                                                                             kind).model))
    return {"model": name,
            "arch": checkpoint.arch, "arch_config": checkpoint.arch_config,
            "input_width": width, "input_height": height, **own,
            "metric": checkpoint.metric, "depth_scale": checkpoint.depth_scale,
            "provenance": checkpoint.provenance,
            "student_vs_teacher": {
                "student": sizes["student"], "teacher": sizes["teacher"],
                "teacher_from": str(args.teacher or "config/train.yaml"),
                "parameter_ratio": round(sizes["student"]["parameters"]
                                         / sizes["teacher"]["parameters"], 4),
                "mac_ratio": round(sizes["student"]["macs"] / sizes["teacher"]["macs"], 4)}}


def _simulate(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.sim.recording import SimulateOptions, simulate

    return simulate(SimulateOptions(out=Path(args.out), seed=args.seed, frames=args.frames,
                                    width=args.width, height=args.height,
                                    hfov_deg=args.hfov_deg, rate_hz=args.rate_hz,
                                    world=args.world, layout=args.layout, motion=args.motion,
                                    visit=args.visit, odometry=args.odometry, storage=args.storage),
                    progress=args.json != STDOUT)


def _export(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.checkpoint import load_checkpoint
    from lumde_ros.export import export_onnx
    from lumde_ros.inference import default_model, network_size

    checkpoint = load_checkpoint(args.model) if args.model else default_model()[0]
    width, height = network_size(checkpoint, args.width, args.height)
    return export_onnx(checkpoint, args.out, width, height, dynamic=args.dynamic)


def _eval(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.evaluation import (CAMERA_HEIGHT, CONSTANT, PROTOCOLS, evaluate_middlebury,
                                      evaluate_recording, format_table)

    if args.middlebury:
        result = evaluate_middlebury(args.model, args.min_depth_m, args.max_depth_m,
                                     backend=args.backend)
    else:
        topics = {f"{name}_topic": getattr(args, f"{name}_topic")
                  for name in ("image", "camera_info", "depth")}
        result = evaluate_recording(args.bag, args.model, args.min_depth_m, args.max_depth_m,
                                    backend=args.backend, topics=topics,
                                    depth_slop_ms=args.depth_slop_ms)
    if args.json != STDOUT:
        print(format_table({name: result[name] for name in (*PROTOCOLS, CONSTANT, CAMERA_HEIGHT)
                            if name in result}))
        if args.middlebury:
            print("(one real photograph: a domain-gap figure, not a benchmark)")
    return result


def _demo(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.nodes.demo import run_demo

    result = run_demo(Path(args.out), args.frames, args.rate_hz, args.seed)
    if args.json != STDOUT:
        print((Path(args.out) / "evaluation.txt").read_text())
    return result


def _train_teacher(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.training.teacher import train_teacher

    return train_teacher(args.bag or [], args.out, args.config, args.steps, args.resume)


def _distill(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.training.distill import distill

    losses = [name.strip() for name in args.losses.split(",")] if args.losses else None
    return distill(args.bag or [], args.teacher, args.out, args.config, args.steps, args.resume,
                   losses)


def _finetune(args: argparse.Namespace) -> dict[str, object]:
    from lumde_ros.training.finetune import FinetuneOptions, finetune

    given = {name: getattr(args, name) for name in (
        "teacher_steps", "student_steps", "learning_rate", "holdout", "gate_margin", "threads")}
    if args.resume:  # the run's own options; only the step counts may grow
        steps = {k: v for k, v in given.items() if k.endswith("_steps") and v is not None}
        return finetune(args.bag or [], args.teacher, args.student, args.out, None,
                        args.config, resume=True, steps=steps)
    return finetune(args.bag or [], args.teacher, args.student, args.out,
                    FinetuneOptions.defaults(**given), args.config)


def _print(result: dict[str, object], json_to: str | None) -> None:
    from lumde_ros.evaluation import CAMERA_HEIGHT, CONSTANT, PROTOCOLS

    if json_to == STDOUT:
        print(json.dumps(result, indent=2))
        return
    if json_to:
        with atomic_path(Path(json_to)) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        if key in (*PROTOCOLS, CONSTANT, CAMERA_HEIGHT):
            continue  # shown in the table
        if key == "macs":
            value = f"{value / 1e9:.3f} G"
        elif key == "parameters":
            value = f"{value / 1e6:.3f} M"
        elif key == "student_vs_teacher":
            value = (f"student {value['student']['parameters'] / 1e6:.3f} M, "
                     f"{value['student']['macs'] / 1e9:.3f} GMAC; teacher "
                     f"{value['teacher']['parameters'] / 1e6:.2f} M, "
                     f"{value['teacher']['macs'] / 1e9:.2f} GMAC ({value['teacher_from']}): "
                     f"{value['parameter_ratio']:.2%} of the parameters, "
                     f"{value['mac_ratio']:.2%} of the MACs")
        print(f"{key:>20}: {value}")


def _training_arguments(command: argparse.ArgumentParser, section: str,
                        steps: bool = True) -> None:
    """The flags every trainer takes (`steps`: one --steps; fine-tuning counts per phase)."""
    command.add_argument("--bag", action="append", help="rosbag2 recording (repeatable)")
    command.add_argument("--out", required=True, help="run directory")
    command.add_argument("--config", type=Path,
                         help=f"YAML overriding keys of config/train.yaml (section {section})")
    if steps:
        command.add_argument("--steps", type=COUNT,
                             help="total optimiser steps (default: config)")
    command.add_argument("--resume", action="store_true",
                         help="continue the run in --out exactly where its last checkpoint was")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lumde", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="architecture, parameter count and MACs of a model")
    info.add_argument("--model", type=Path,
                      help="checkpoint (.pt) or export (.onnx); default: the shipped student")
    info.add_argument("--width", type=SIZE, default=0, help="input width (default: the model's)")
    info.add_argument("--height", type=SIZE, default=0,
                      help="input height (default: the model's)")
    info.add_argument("--teacher", type=Path, help="teacher to compare a student with "
                                                   "(default: config/train.yaml's)")
    info.set_defaults(run=_info)
    sim = sub.add_parser("simulate", help="render a robot-camera recording with ground truth",
                         description="Everything not given is drawn from the seed "
                                     "(config/sim.yaml). Seeds below 1000 are for training, "
                                     "1000 and above for evaluation, whose layouts, objects "
                                     "and textures training never sees; different seeds never "
                                     "share a scene.")
    sim.add_argument("--out", required=True, help="new rosbag2 directory")
    sim.add_argument("--seed", type=SEED, default=0)
    sim.add_argument("--frames", type=COUNT, default=300)
    sim.add_argument("--width", type=COUNT, help="image width (default: drawn)")
    sim.add_argument("--height", type=COUNT, help="image height (default: drawn)")
    sim.add_argument("--hfov-deg", type=FOV, help="horizontal field of view (default: drawn)")
    sim.add_argument("--rate-hz", type=POSITIVE, default=10.0)
    sim.add_argument("--world", choices=("varied", "classic"), default="varied",
                     help="varied (default) or classic: the first simulator's scenes, on which "
                          "the shipped weights were trained")
    sim.add_argument("--layout", help="room, corridor, aisles (training seeds), hall, office "
                                      "(evaluation seeds); classic: room, corridor "
                                      "(default: drawn)")
    sim.add_argument("--motion", choices=("drive", "handheld"), default="drive",
                     help="drive: a wheeled robot; handheld: 6-DoF hand-held camera")
    sim.add_argument("--visit", type=VISIT, default=0,
                     help="another path through the same scene, camera and light: 0 (default) "
                          "is the seed's own recording, each N > 0 a new start, route and "
                          "sensor noise, as a robot that comes back to the place")
    sim.add_argument("--no-odometry", dest="odometry", action="store_false",
                     help="write no /odom and no odom->base_link tf")
    sim.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    sim.set_defaults(run=_simulate)
    ev = sub.add_parser("eval", help="standard depth metrics of a model on a recording",
                        description="Prints median-scaled and unscaled (metric) metrics and, "
                                    "on the same frames, the constant baseline: each image's "
                                    "own median depth everywhere.")
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", help="rosbag2 with ground-truth depth")
    source.add_argument("--middlebury", action="store_true",
                        help="the real Middlebury 2014 Motorcycle photograph scikit-image "
                             "ships, with metric depth from its disparity (a domain-gap "
                             "figure)")
    ev.add_argument("--model", type=Path,
                    help="checkpoint (.pt) or export (.onnx); default: the shipped student")
    ev.add_argument("--backend", default="torch", choices=("auto", "torch", "onnxruntime",
                                                           "openvino"))
    ev.add_argument("--min-depth-m", "--min-depth", type=POSITIVE, default=0.1)
    ev.add_argument("--max-depth-m", "--max-depth", type=POSITIVE, default=10.0)
    for name, what in (("image", "camera image"), ("camera-info", "its CameraInfo"),
                       ("depth", "ground-truth depth")):
        ev.add_argument(f"--{name}-topic", help=f"{what} topic (default: found in the bag)")
    ev.add_argument("--depth-slop-ms", type=MILLISECONDS,
                    help="ground truth belongs to the image stamped nearest it within this "
                         "(an RGB-D camera stamps colour and depth apart; default 15; 0: "
                         "the same stamp only)")
    ev.set_defaults(run=_eval)
    export = sub.add_parser("export", help="ONNX graph of a model, verified against PyTorch",
                            description="Writes an ONNX graph (opset 17) with the checkpoint's "
                                        "metadata and checks it with ONNX Runtime before "
                                        "reporting success. Jetson: trtexec --onnx=OUT "
                                        "--saveEngine=model.plan")
    export.add_argument("--model", type=Path,
                        help="checkpoint (.pt); default: the shipped student")
    export.add_argument("--out", required=True, help="the .onnx file to write")
    export.add_argument("--width", type=SIZE, default=0, help="input width (default: model's)")
    export.add_argument("--height", type=SIZE, default=0, help="input height (default: model's)")
    export.add_argument("--dynamic", action="store_true", help="any input size (multiple of 32)")
    export.set_defaults(run=_export)
    demo = sub.add_parser("demo", help="simulate a recording, play it through the depth node "
                                       "over ROS 2, record and evaluate what it publishes")
    demo.add_argument("--out", default="demo_output", help="output directory")
    demo.add_argument("--frames", type=COUNT, default=80, help="frames to simulate and play")
    demo.add_argument("--rate-hz", type=POSITIVE, default=10.0, help="camera rate")
    demo.add_argument("--seed", type=SEED, help="simulated scene (default: a held-out hall "
                      "with furniture standing in it)")
    demo.set_defaults(run=_demo)
    teacher = sub.add_parser(
        "train-teacher", help="self-supervised teacher from recordings (no ground truth)",
        description="Learns depth from monocular video in rosbag2 recordings. With odometry and "
                    "the camera mounting in tf the depth is metric. Writes DIR/teacher.pt, "
                    "DIR/state.pt (for --resume), DIR/log.csv and DIR/training.png. Ctrl-C saves "
                    "and exits. Several GPUs: torchrun --nproc_per_node N -m lumde_ros.cli "
                    "train-teacher ...")
    _training_arguments(teacher, "teacher")
    teacher.set_defaults(run=_train_teacher)
    student = sub.add_parser(
        "distill", help="distil a teacher into the light-weight student (LUMDE)",
        description="Trains the student from a frozen teacher (pixel-wise, pair-wise and "
                    "adversarial distillation) and its own view synthesis through its own pose "
                    "network. Writes DIR/student.pt (metric when the teacher is), DIR/state.pt, "
                    "DIR/log.csv and DIR/training.png; --resume, Ctrl-C and torchrun as for "
                    "train-teacher.")
    _training_arguments(student, "distill")
    student.add_argument("--teacher", type=Path,
                         help="teacher checkpoint (lumde train-teacher); on --resume the run's own")
    student.add_argument("--losses", help="comma-separated subset of pixel,pair,gan,photo "
                                          "(default: config); photo alone needs no teacher")
    student.set_defaults(run=_distill)
    tune = sub.add_parser(
        "finetune", help="fine-tune teacher and student on recordings, then gate the student",
        description="Fine-tunes the teacher self-supervised on the recordings, distils it into "
                    "the student (starting from --student), and accepts the new student only if "
                    "it explains frames held out of training (photometric reprojection, with "
                    "odometry where recorded) at most --gate-margin worse than --student. "
                    f"Writes DIR/student/student.pt and DIR/gate.json; exit status {REJECTED} "
                    "when the gate rejects. Defaults: config/trainer.yaml.")
    _training_arguments(tune, "teacher and distill", steps=False)
    tune.add_argument("--teacher", type=Path, help="teacher to fine-tune (default: shipped)")
    tune.add_argument("--student", type=Path, help="serving student: starting point and what "
                                                   "the gate compares with (default: shipped)")
    tune.add_argument("--teacher-steps", type=COUNT)
    tune.add_argument("--student-steps", type=COUNT)
    tune.add_argument("--learning-rate", type=POSITIVE,
                      help="of both phases, unless --config sets one for a phase")
    tune.add_argument("--holdout", type=float, help="fraction of each recording kept out of "
                                                    "training for the gate")
    tune.add_argument("--gate-margin", type=float, help="relative error increase still accepted")
    tune.add_argument("--threads", type=int, help="CPU threads (0: all)")
    tune.set_defaults(run=_finetune)
    for command in (info, sim, ev, export, demo, teacher, student, tune):
        command.add_argument("--json", nargs="?", const=STDOUT, metavar="OUT",
                             help="print the result as JSON, or with OUT write it there")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("train-teacher", "distill", "finetune") and not args.bag \
            and not args.resume:
        parser().error(f"{args.command}: --bag is required (except with --resume)")
    if args.command == "eval" and args.min_depth_m >= args.max_depth_m:
        parser().error(f"eval: --min-depth-m {args.min_depth_m} is not below --max-depth-m "
                       f"{args.max_depth_m}")
    if args.json not in (None, STDOUT) and (Path(args.json).is_dir()
                                            or not Path(args.json).parent.is_dir()):
        parser().error(f"{args.command}: --json {args.json}: not a file in an existing "
                       "directory")  # checked now, not after the work is done
    try:
        result = args.run(args)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only the first reports
            _print(result, args.json)
    except LumdeError as err:
        print(f"lumde {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a read-only directory, a full disk, a path that is a directory
        print(f"lumde {args.command}: error: {err}", file=sys.stderr)
        return 1
    if result.get("finished") is False:
        print(f"lumde {args.command}: stopped at step {result['step']} of {result['steps']}; "
              f"continue with: lumde {args.command} --out {args.out} --resume", file=sys.stderr)
        return INTERRUPTED
    if result.get("accepted") is False:
        print(f"lumde {args.command}: the gate rejected the new student: "
              f"{result['gate']['reason']}", file=sys.stderr)
        return REJECTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
