"""Tiny training settings and a tiny teacher, so real training runs take seconds in tests."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from lumde_ros.checkpoint import checkpoint_from_net, resolved_arch_config, save_checkpoint
from lumde_ros.models import build_depth_net

RUN = {"batch_size": 2, "threads": 1, "learning_rate": 1.0e-3, "checkpoint_every": 4,
       "log_every": 1, "device": "cpu"}
DATA = {"input_width": 96, "input_height": 64}
TINY_TEACHER = {"enc_channels": [16, 16, 32, 64, 128], "dec_channels": [8, 16, 16, 32, 64]}
TINY = {"teacher": {"run": RUN, "data": DATA, "model": TINY_TEACHER},
        "distill": {"run": RUN, "data": DATA, "pose_model": {"features": [8, 8, 16], "radius": 2,
                                                                "channels": [16, 32]},
                    "discriminator": {"dim": 32, "layers": 1}}}


def finetune_overlay(path: Path, **distill_run: object) -> Path:
    """Both fine-tune phases tiny, every frame usable (the simulated robot moves slowly), the
    learning rate left to the fine-tune; `distill_run` overrides the distillation's run
    settings."""
    sections = {name: {**TINY[name], "data": {**TINY[name]["data"], "min_baseline_m": 0.0},
                       "run": {k: v for k, v in RUN.items() if k != "learning_rate"}}
                for name in ("teacher", "distill")}
    sections["distill"]["run"].update(distill_run)
    path.write_text(yaml.safe_dump(sections))
    return path


def write_tiny_teacher(path: Path) -> Path:
    """A metric teacher checkpoint of the tiny architecture, untrained but seeing everything
    about 4 m away (the student starts at 1.4 m), so what a student learns from it shows."""
    torch.manual_seed(0)
    config = resolved_arch_config("teacher", TINY_TEACHER)
    net = build_depth_net("teacher", config)
    for head in net.heads:
        torch.nn.init.constant_(head[1].bias, -4.0)
    checkpoint = checkpoint_from_net(net, "teacher", config, 96, 64, metric=True,
                                     provenance={"source": "test"})
    return save_checkpoint(checkpoint, path)
