"""Pose network benchmark: does it learn how the image moved, or which training pair it saw?
Trains the teacher's pose network (config/train.yaml `teacher.pose_model`; `--section
distill`: the student's) alone, supervised by odometry between frames as the odometry route
supervises it (`motion_error`, random flips with the motion mirrored, Adam at that section's
rate and decay), and prints its yaw slope and correlation against odometry (#21's figures)
on pairs of its own training recordings and on held-out recordings of the evaluation split,
every few hundred steps. A network that memorises scores well on the first and near 0 on
the second. At the end, the same per held-out recording, the turn it reads from each
held-out frame against itself (a robot standing still), and from each held-out frame turned
by a known angle (a pure turn: no parallax, only a strip of smeared edge entering at the
side, so a shortfall there is the matching's). `--apart` pairs frames further apart than
consecutive ones: larger motions, as keyframes and a hand-held camera give.

    .venv/bin/python benchmarks/pose_network.py --work /tmp/pose-bench [--train-bags 60]

Recordings in --work are reused.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from training_runs import simulate

from lumde_ros.data.triplets import mirrored
from lumde_ros.evaluation import frame_pairs, pose_yaws, yaw_fit
from lumde_ros.geometry import pose_from_vector, turned_view
from lumde_ros.losses.self_supervised import motion_error
from lumde_ros.models import PoseNet, construct
from lumde_ros.sim.recording import EVAL_SEED_START
from lumde_ros.training.config import DistillConfig, TeacherConfig, load_section
from lumde_ros.training.run import lr_factor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the recordings")
    ap.add_argument("--train-bags", type=int, default=60)
    ap.add_argument("--train-frames", type=int, default=40)
    ap.add_argument("--eval-bags", type=int, default=8)
    ap.add_argument("--eval-frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=250, help="steps between measurements")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--apart", type=int, default=1, help="frames between the two of a pair, "
                    "training and held out (1: consecutive, as the odometry route's triplets)")
    ap.add_argument("--section", choices=("teacher", "distill"), default="teacher",
                    help="whose pose network, at its rate: the teacher's or the student's")
    ap.add_argument("--pose-model", nargs="*", default=[], metavar="KEY=VALUE",
                    help="pose_model settings instead of the config's, e.g. refinements=2")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = (args.width, args.height)
    first, second, cameras, odometry = frame_pairs(simulate(
        args.work / "train", range(args.train_bags), args.train_frames), size, args.apart)
    recordings = [frame_pairs([bag], size, args.apart) for bag in simulate(
        args.work / "eval", range(EVAL_SEED_START, EVAL_SEED_START + args.eval_bags),
        args.eval_frames)]
    held_out = [torch.cat(x) for x in zip(*recordings)]
    both = torch.stack([first, second], 1)  # (N, 2, 3, H, W): a pair mirrors as one
    del first, second  # `both` holds them
    config = load_section(args.section, {"teacher": TeacherConfig, "distill": DistillConfig}[
        args.section]).with_steps(args.steps)
    pose_model = dict(config.pose_model)
    for item in args.pose_model:
        key, equals, value = item.partition("=")
        if not equals:
            ap.error(f"--pose-model takes KEY=VALUE, not {item!r}")
        pose_model[key] = yaml.safe_load(value)
    net = construct(PoseNet, pose_model)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.run.learning_rate)
    batch = 2 * config.run.batch_size  # a triplet gives the pose network two pairs
    print(f"{len(both)} training pairs, {len(held_out[0])} held out, {args.apart} frames "
          f"apart, {size[0]}x{size[1]}, batch {batch}, pose_model {pose_model}")
    print("step | training pairs: slope, correlation | held out: slope, correlation | s/step")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in optimiser.param_groups:
            group["lr"] = config.run.learning_rate * lr_factor(config.run, step - 1)
        pick = torch.randint(len(both), (batch,))
        pairs, k, motions = (x[pick] for x in (both, cameras, odometry))
        flip = torch.rand(batch) < 0.5
        pairs[flip], k[flip], motions[flip] = mirrored(pairs[flip], k[flip], motions[flip])
        found = net(pairs[:, 0], pairs[:, 1], k)
        loss = motion_error(pose_from_vector(found.axis_angle, found.translation)[:, None],
                            motions[:, None])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % args.every == 0 or step == args.steps:
            seconds = (time.perf_counter() - start) / step
            own = yaw_fit(*pose_yaws(net, both[:600, 0], both[:600, 1], cameras[:600],
                                          odometry[:600]))
            other = yaw_fit(*pose_yaws(net, *held_out))
            print(f"{step} | {own['slope']:.2f}, {own['correlation']:.2f} | "
                  f"{other['slope']:.2f}, {other['correlation']:.2f} | {seconds:.3f}",
                  flush=True)
    print("held-out recording (seed) | pairs | slope, correlation | spread of the true turns")
    for seed, (first, second, k, motions) in enumerate(recordings, EVAL_SEED_START):
        truth, found = pose_yaws(net, first, second, k, motions)
        fit = yaw_fit(truth, found)
        print(f"{seed} | {len(truth)} | {fit['slope']:.2f}, {fit['correlation']:.2f} | "
              f"{truth.std():.2f} deg")
    # A robot standing still: each held-out frame against itself should be no turn at all.
    first, _, k, motions = held_out
    _, standing = pose_yaws(net, first, first, k, motions)
    print(f"the same frame twice, {len(standing)} held out: yaw found |median| "
          f"{np.median(np.abs(standing)):.3f} deg, largest {np.abs(standing).max():.3f} deg")
    # The same frame turned by a known yaw (no parallax; a smeared strip enters at the side):
    # what the network reads of a pure turn of each size, which the slope above mixes with
    # everything else.
    print("each held-out frame turned by | median turn read | its ratio")
    for degrees in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0):
        turn = torch.zeros(len(first), 3)
        turn[:, 1] = np.radians(degrees)
        # viewed through the opposite turn, `first` is what a camera turned by `turn` sees
        turned = turned_view(first, -turn, k)
        _, read = pose_yaws(net, first, turned, k, pose_from_vector(turn, torch.zeros_like(turn)))
        print(f"{degrees:g} deg | {np.median(read):.3f} deg | {np.median(read) / degrees:.2f}")


if __name__ == "__main__":
    main()
