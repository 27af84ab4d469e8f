"""Training settings: shipped defaults, partial overrides, clear errors for typos."""
from __future__ import annotations

import pytest

from lumde_ros.errors import ConfigError
from lumde_ros.training.config import TeacherConfig, from_dict, load_section


def test_shipped_defaults_and_a_partial_override(tmp_path):
    shipped = load_section("teacher", TeacherConfig)
    assert shipped.data.pose == "auto" and shipped.run.steps > 0
    user = tmp_path / "mine.yaml"
    user.write_text("teacher:\n  run: {steps: 7, learning_rate: 1}\n  model: {num_layers: 34}\n")
    mine = load_section("teacher", TeacherConfig, user)
    assert mine.run.steps == 7 and mine.run.learning_rate == 1.0
    assert mine.run.batch_size == shipped.run.batch_size and mine.model["num_layers"] == 34
    assert from_dict(TeacherConfig, mine.as_dict()) == mine
    assert mine.with_steps(9).run.steps == 9 and mine.with_steps(None) == mine


@pytest.mark.parametrize("text, message", [
    ("teacher:\n  run: {stpes: 3}\n", "unknown setting 'teacher.run.stpes'"),
    ("teacher:\n  run: {steps: many}\n", "'teacher.run.steps' is 'many'; expected int"),
    ("teacher:\n  run: {flip: true}\n", "unknown setting"),
    ("teachr: {}\n", "unknown section"),
    ("- a list\n", "must be a YAML mapping"),
])
def test_mistakes_are_named(tmp_path, text, message):
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_section("teacher", TeacherConfig, user)
    with pytest.raises(ConfigError, match="positive"):
        load_section("teacher", TeacherConfig).with_steps(0)
