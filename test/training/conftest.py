"""Tiny training configurations, so real training runs take seconds in tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tiny import TINY


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
