"""`lumde train-teacher`: the self-supervised teacher (Monodepth2-class) learns depth from
monocular video. With odometry the camera motion between frames is known, so view synthesis
uses it and depth comes out in metres; the pose network is then trained to reproduce that
motion (the student module and recordings without odometry need it). Without odometry the
pose network supplies the motion and the checkpoint is marked relative."""
from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lumde_ros.checkpoint import Checkpoint, checkpoint_from_net, resolved_arch_config
from lumde_ros.data.triplets import Batch, load_triplets
from lumde_ros.errors import TrainingError
from lumde_ros.geometry import pose_from_vector
from lumde_ros.losses.photometric import view_synthesis
from lumde_ros.models import PoseNet, build_depth_net
from lumde_ros.training.config import TeacherConfig, from_dict, teacher_config
from lumde_ros.training.run import (STATE_FILE, Distributed, Update, read_state,
                                    start_distributed, train)


class TeacherObjective:
    """Teacher depth network and pose network, one Adam optimiser over both."""

    name = "teacher"

    def __init__(self, config: TeacherConfig, metric: bool, dist: Distributed) -> None:
        torch.manual_seed(config.run.seed)  # same initial weights on every process
        self.config, self.metric = config, metric
        self.arch_config = resolved_arch_config("teacher", config.model)
        depth, pose = build_depth_net("teacher", self.arch_config), PoseNet()
        self.modules = {"depth": depth, "pose": pose}
        self.depth, self.pose = dist.wrap(depth), dist.wrap(pose)
        optimizer = torch.optim.Adam([*depth.parameters(), *pose.parameters()],
                                     lr=config.run.learning_rate)
        self.updates = [Update("teacher", optimizer, self.loss)]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """View synthesis at every scale (+ odometry supervision of the pose network)."""
        loss_config = self.config.loss
        predicted = self.forward_motions(batch)
        if batch.motions is None:
            motions, pose_loss = predicted, None
        else:
            motions = batch.motions
            pose_loss = motion_error(predicted, motions)
        net = self.modules["depth"]
        loss, synthesis = view_synthesis(
            self.depth(batch.target).disps, batch.target, batch.sources, motions, batch.k,
            net.near_m, net.far_m, loss_config.ssim_weight, loss_config.smoothness_weight,
            loss_config.automask)
        terms = {"loss": loss, **synthesis}
        if pose_loss is not None:
            loss = loss + loss_config.pose_weight * pose_loss
            terms.update(loss=loss, pose=pose_loss)
        terms["translation_m"] = predicted[:, :, :3, 3].norm(dim=2).mean()
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    def forward_motions(self, batch: Batch) -> torch.Tensor:
        """Motions target -> each source (B, 2, 4, 4) from the pose network, which always
        sees its two frames in time order (earlier first), so a robot driving forward is one
        consistent motion to learn; the previous frame's motion is inverted."""
        previous, following = batch.sources
        back = self.pose(previous, batch.target)
        ahead = self.pose(batch.target, following)
        return torch.stack([torch.linalg.inv(pose_from_vector(back.axis_angle, back.translation)),
                            pose_from_vector(ahead.axis_angle, ahead.translation)], dim=1)

    def export(self, provenance: dict[str, Any]) -> Checkpoint:
        data = self.config.data
        return checkpoint_from_net(self.modules["depth"], "teacher", self.arch_config,
                                   data.input_width, data.input_height, self.metric, 1.0,
                                   provenance)

    def preview(self, images: torch.Tensor) -> torch.Tensor:
        return self.modules["depth"](images).disps[0]


def motion_error(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between motions (B, n, 4, 4): rotation matrices' entries (halved: for
    small rotations that is the axis-angle difference in radians, and unlike an angle it has
    a gradient at the identity) plus translation (metres)."""
    rotation = (predicted[..., :3, :3] - reference[..., :3, :3]).abs().sum((-2, -1)) / 2
    translation = (predicted[..., :3, 3] - reference[..., :3, 3]).abs().sum(-1)
    return (rotation + translation).mean()


def _check_size(config: TeacherConfig) -> None:
    from lumde_ros.models import TeacherDepthNet

    data = config.data
    stride = TeacherDepthNet.STRIDE
    if data.input_width % stride or data.input_height % stride or data.input_width <= 0 \
            or data.input_height <= 0:
        raise TrainingError(f"input size {data.input_width}x{data.input_height}: both must be "
                            f"positive multiples of {stride}")


def train_teacher(bags: Sequence[str | Path], out: str | Path, config_path: str | Path | None,
                  steps: int | None = None, resume: bool = False) -> dict[str, Any]:
    """Train (or with `resume` continue) a teacher in `out` on `bags`; returns a summary.
    A resumed run keeps the settings it started with (only `steps` may change) and must be
    given the same recordings, or none (then it reuses them)."""
    out = Path(out)
    bags = [str(Path(b).resolve()) for b in bags]
    state = None
    if resume:
        state = read_state(out)
        if config_path is not None:
            raise TrainingError("--resume continues with the settings the run started with; "
                                "drop --config (only --steps may change)")
        config = from_dict(TeacherConfig, state["config"]).with_steps(steps)
        if bags and bags != state["bags"]:
            raise TrainingError(f"--resume with other recordings than the run started with "
                                f"({', '.join(state['bags'])}); give the same --bag list or none")
        bags = state["bags"]
    else:
        if (out / STATE_FILE).exists():
            raise TrainingError(f"{out} already holds a training run; pass --resume to continue "
                                "it or choose another --out")
        config = teacher_config(config_path).with_steps(steps)
    _check_size(config)
    if config.run.threads > 0:
        torch.set_num_threads(config.run.threads)
    dist = start_distributed(config.run.device)
    data = load_triplets(bags, config.data.input_width, config.data.input_height,
                         config.data.pose, config.data.min_baseline_m)
    route = "odometry" if data.metric else "learned"
    if state is not None and state["metric"] != data.metric:
        raise TrainingError(f"the run started on the {'odometry' if state['metric'] else 'learned'}"
                            f" pose route but the recordings now give the {route} route")
    objective = TeacherObjective(config, data.metric, dist)
    provenance = {"source": "lumde train-teacher", "trained": True,
                  "command": shlex.join(sys.argv), "seed": config.run.seed,
                  "pose_route": route, "recordings": data.recordings,
                  "config": config.as_dict(), "torch_version": str(torch.__version__)}
    saved = {"config": config.as_dict(), "bags": bags, "metric": data.metric,
             "provenance": provenance}
    summary = train(objective, data, config.run, config.data, out, dist, state, saved)
    summary.update(metric=data.metric, pose_route=route, triplets=len(data),
                   processes=dist.world)
    return summary
