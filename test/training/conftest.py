"""Tiny training configurations, so real training runs take seconds in tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lumde_ros.checkpoint import checkpoint_from_net, resolved_arch_config, save_checkpoint
from lumde_ros.models import build_depth_net

RUN = {"batch_size": 2, "threads": 1, "learning_rate": 1.0e-3, "checkpoint_every": 4,
       "log_every": 1, "device": "cpu"}
DATA = {"input_width": 96, "input_height": 64}
TINY_TEACHER = {"enc_channels": [16, 16, 32, 64, 128], "dec_channels": [8, 16, 16, 32, 64]}
TINY = {"teacher": {"run": RUN, "data": DATA, "model": TINY_TEACHER},
        "distill": {"run": RUN, "data": DATA, "pose_model": {"channels": [8, 16, 16, 32]},
                    "discriminator": {"dim": 32, "layers": 1}}}


@pytest.fixture()
def tiny_config(tmp_path: Path):
    """Write a tiny config of `section` with `overrides` merged per subsection."""
    def make(section: str = "teacher", **overrides: dict) -> Path:
        tiny = TINY[section]
        sections = {name: {**tiny.get(name, {}), **overrides.get(name, {})}
                    for name in {*tiny, *overrides}}
        path = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump({section: sections}))
        return path
    return make


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A metric teacher checkpoint of the tiny architecture, untrained but seeing everything
    about 4 m away (the student starts at 1.4 m), so what a student learns from it shows."""
    torch.manual_seed(0)
    config = resolved_arch_config("teacher", TINY_TEACHER)
    net = build_depth_net("teacher", config)
    for head in net.heads:
        torch.nn.init.constant_(head[1].bias, -4.0)
    checkpoint = checkpoint_from_net(net, "teacher", config, 96, 64, metric=True,
                                     provenance={"source": "test"})
    return save_checkpoint(checkpoint, tmp_path_factory.mktemp("teacher") / "teacher.pt")

