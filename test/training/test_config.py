"""Training settings: shipped defaults, partial overrides, clear errors for typos."""
from __future__ import annotations

import pytest

from lumde_ros.errors import ConfigError
from lumde_ros.training.config import DistillConfig, TeacherConfig, from_dict, load_section


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
    ("teacher:\n  run: {log_every: 0}\n", "run.log_every is 0; expected > 0"),
    ("teacher:\n  data: {color_jitter: 1.5}\n", "data.color_jitter is 1.5; expected 0..1"),
    ("teacher:\n  run: {device: gpu}\n", "run.device 'gpu'"),
    ("teacher:\n  pose_model: []\n", "'teacher.pose_model' must be a mapping"),
    ("distill:\n  run: {stpes: 3}\n", "unknown setting 'distill.run.stpes'"),  # not read here
    ("floor: [1]\n", "'floor' must be a mapping"),
])
def test_mistakes_are_named(tmp_path, text, message):
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_section("teacher", TeacherConfig, user)
    with pytest.raises(ConfigError, match="positive"):
        load_section("teacher", TeacherConfig).with_steps(0)


def test_network_sections_merge_key_by_key(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("distill:\n  discriminator: {dim: 128}\n")
    mine = load_section("distill", DistillConfig, user)
    shipped = load_section("distill", DistillConfig)
    assert mine.discriminator == {**shipped.discriminator, "dim": 128}


def test_extending_a_resumed_run_keeps_its_decay_step():
    config = load_section("teacher", TeacherConfig)
    decay_step = config.run.lr_decay_at * config.run.steps
    longer = config.with_steps(2 * config.run.steps, keep_decay_step=True)
    assert longer.run.lr_decay_at * longer.run.steps == decay_step
    assert config.with_steps(2 * config.run.steps).run.lr_decay_at == config.run.lr_decay_at
