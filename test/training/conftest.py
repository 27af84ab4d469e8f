"""A tiny teacher configuration, so real training runs take seconds in tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

TINY = {"run": {"batch_size": 2, "threads": 1, "learning_rate": 1.0e-3, "checkpoint_every": 4,
                "log_every": 1, "device": "cpu"},
        "data": {"input_width": 96, "input_height": 64},
        "model": {"enc_channels": [16, 16, 32, 64, 128], "dec_channels": [8, 16, 16, 32, 64]}}


@pytest.fixture()
def tiny_config(tmp_path: Path):
    """Write the tiny config with `overrides` merged per section; returns its path."""
    def make(**overrides: dict) -> Path:
        sections = {name: {**TINY.get(name, {}), **overrides.get(name, {})}
                    for name in {*TINY, *overrides}}
        path = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump({"teacher": sections}))
        return path
    return make


def summary(path: Path) -> dict:
    return json.loads(path.read_text())
