"""`lumde train-teacher`: the self-supervised teacher (Monodepth2-class) learns depth from
monocular video. With odometry the camera motion between frames is known, so view synthesis
uses it and depth comes out in metres; the pose network is then trained to reproduce that
motion (the student module and recordings without odometry need it). Without odometry the
pose network supplies the motion and the checkpoint is marked relative."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lumde_ros.checkpoint import Checkpoint, load_checkpoint
from lumde_ros.data.triplets import Batch, TripletData
from lumde_ros.losses.self_supervised import self_supervised
from lumde_ros.models import PoseNet, TeacherDepthNet, construct
from lumde_ros.training.config import TeacherConfig
from lumde_ros.training.run import (Distributed, Objective, Update, initial_depth_net,
                                    model_provenance, run_trainer)


class TeacherObjective(Objective):
    """Teacher depth network and pose network, one Adam optimiser over both. `init`: a
    teacher checkpoint to fine-tune (its pose network is not stored: that one starts fresh)."""

    name = "teacher"

    def __init__(self, config: TeacherConfig, data: TripletData, dist: Distributed,
                 init: Checkpoint | None = None) -> None:
        torch.manual_seed(config.run.seed)  # same initial weights on every process
        self.config, self.metric = config, data.metric
        depth, self.arch_config = initial_depth_net("teacher", config.model, init)
        pose = construct(PoseNet, config.pose_model)
        self.modules = {"depth": depth, "pose": pose}
        self.depth, self.pose = dist.wrap(depth), dist.wrap(pose)
        optimizer = torch.optim.Adam([*depth.parameters(), *pose.parameters()])
        self.updates = [Update("teacher", optimizer, self.loss, config.run.learning_rate)]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        net = self.modules["depth"]
        loss, terms = self_supervised(self.depth(batch.target, batch.prior).disps, self.pose,
                                      batch, net.near_m, net.far_m, self.config.loss)
        return loss, {k: float(v.detach()) for k, v in terms.items()}


def train_teacher(bags: Sequence[str | Path], out: str | Path, config_path: str | Path | None,
                  steps: int | None = None, resume: bool = False,
                  init: str | Path | None = None) -> dict[str, Any]:
    """Train (or with `resume` continue) a teacher in `out` on `bags`, from scratch or from
    the teacher checkpoint `init` (fine-tuning); returns a summary."""
    start = load_checkpoint(init) if init is not None and not resume else None
    provenance: dict[str, Any] = {"source": "lumde train-teacher"}
    if start is not None:
        provenance["init"] = model_provenance(init, start)

    def make(config: TeacherConfig, data: TripletData, dist: Distributed) -> TeacherObjective:
        return TeacherObjective(config, data, dist, start)

    return run_trainer("teacher", TeacherConfig, out, list(bags), config_path, steps, resume,
                       TeacherDepthNet.STRIDE, make, provenance)
