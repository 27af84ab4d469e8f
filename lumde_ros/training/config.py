"""Training settings, read from `config/train.yaml` (the one place their defaults live) and
optionally overlaid by a user's file holding only the keys it changes."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumde_ros.config import config_path, load_yaml
from lumde_ros.errors import ConfigError
from lumde_ros.losses.self_supervised import ViewSynthesisLoss

TRAIN_CONFIG = "train.yaml"


@dataclass(frozen=True)
class RunConfig:
    """How a run proceeds: shared by every trainer (see config/train.yaml for meanings)."""

    seed: int
    steps: int
    batch_size: int
    threads: int
    device: str
    learning_rate: float
    lr_decay_at: float
    lr_decay: float
    grad_clip: float
    checkpoint_every: int
    log_every: int
    max_skipped_in_row: int

    def __post_init__(self) -> None:
        _require(self, "run", positive=("steps", "batch_size", "learning_rate", "lr_decay",
                                        "grad_clip", "checkpoint_every", "log_every"),
                 non_negative=("seed", "threads", "max_skipped_in_row"),
                 fractions=("lr_decay_at",))
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"run.device '{self.device}' is not one of auto, cpu, cuda")


@dataclass(frozen=True)
class DataConfig:
    """What the network sees: input size, pose route, frame sampling, augmentation."""

    input_width: int
    input_height: int
    pose: str
    min_baseline_m: float
    flip: bool
    color_jitter: float
    channel_shuffle: bool
    floor_prior_dropout: float
    holdout: float
    image_topic: str
    camera_info_topic: str

    def __post_init__(self) -> None:
        _require(self, "data", positive=("input_width", "input_height"),
                 non_negative=("min_baseline_m",),
                 fractions=("color_jitter", "floor_prior_dropout", "holdout"))


def _require(config: Any, where: str, positive: tuple[str, ...] = (),
             non_negative: tuple[str, ...] = (), fractions: tuple[str, ...] = ()) -> None:
    """Range checks with the setting's full name in the message."""
    for name in positive:
        if not getattr(config, name) > 0:
            raise ConfigError(f"{where}.{name} is {getattr(config, name)}; expected > 0")
    for name in non_negative:
        if not getattr(config, name) >= 0:
            raise ConfigError(f"{where}.{name} is {getattr(config, name)}; expected >= 0")
    for name in fractions:
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"{where}.{name} is {getattr(config, name)}; expected 0..1")


class TrainerConfig:
    """What every trainer's settings have: `run` and `data` sections, and a self-supervised
    loss (`synthesis`)."""

    run: RunConfig
    data: DataConfig
    synthesis: ViewSynthesisLoss

    def with_steps(self, steps: int | None, keep_decay_step: bool = False) -> Any:
        """This config with `steps` (the --steps flag) when given. `keep_decay_step` (a
        resumed run) keeps the step the learning rate decays at where it was, so extending a
        run never raises its rate again."""
        if steps is None or steps == self.run.steps:
            return self
        if steps <= 0:
            raise ConfigError(f"--steps {steps}: expected a positive number of steps")
        decay_at = self.run.lr_decay_at
        if keep_decay_step:
            decay_at = min(1.0, decay_at * self.run.steps / steps)
        return dataclasses.replace(self, run=dataclasses.replace(self.run, steps=steps,
                                                                 lr_decay_at=decay_at))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TeacherConfig(TrainerConfig):
    """Everything `lumde train-teacher` reads (section `teacher` of config/train.yaml).
    model, pose_model: constructor overrides of the teacher and its pose network."""

    run: RunConfig
    data: DataConfig
    loss: ViewSynthesisLoss
    model: dict[str, Any]
    pose_model: dict[str, Any]

    @property
    def synthesis(self) -> ViewSynthesisLoss:
        """Its self-supervised loss's settings."""
        return self.loss


@dataclass(frozen=True)
class DistillLoss:
    """Which distillation losses train the student, and their weights (see train.yaml)."""

    losses: list[str]
    pixel_weight: float
    pair_weight: float
    gan_weight: float
    photo_weight: float
    pixel_confidence: bool
    pair_layer: int
    pair_grid: list[int]
    discriminator_lr: float
    discriminator_betas: list[float]


@dataclass(frozen=True)
class DistillConfig(TrainerConfig):
    """Everything `lumde distill` reads (section `distill` of config/train.yaml). model,
    pose_model, discriminator: constructor overrides of the student, its pose network and the
    Transformer discriminator."""

    run: RunConfig
    data: DataConfig
    loss: DistillLoss
    photo: ViewSynthesisLoss
    model: dict[str, Any]
    pose_model: dict[str, Any]
    discriminator: dict[str, Any]

    @property
    def synthesis(self) -> ViewSynthesisLoss:
        """Its self-supervised (photo) loss's settings."""
        return self.photo

    def with_losses(self, losses: list[str] | None) -> DistillConfig:
        """This config with the --losses list when given."""
        if losses is None:
            return self
        return dataclasses.replace(self, loss=dataclasses.replace(self.loss, losses=losses))


# Sections whose keys are constructor arguments, checked when the network is built.
_FREE_SECTIONS = ("model", "pose_model", "discriminator")


def _merge(base: dict[str, Any], override: dict[str, Any], where: str,
           free: bool = False) -> dict[str, Any]:
    """`base` with `override`'s keys replaced recursively; unknown keys are errors (typos),
    except in the `free` sections (constructor arguments, checked when the network is built)."""
    merged = dict(base)
    for key, value in override.items():
        if key not in base and not free:
            raise ConfigError(f"unknown setting '{where}{key}'; known: "
                              f"{', '.join(sorted(base))}")
        if isinstance(base.get(key), dict):
            if not isinstance(value, dict):
                raise ConfigError(f"'{where}{key}' must be a mapping")
            merged[key] = _merge(base[key], value, f"{where}{key}.", key in _FREE_SECTIONS)
        else:
            merged[key] = value
    return merged


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `values`, checking every field is present and typed."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            raise ConfigError(f"setting '{where}{f.name}' is missing")
        value, kind = values[f.name], hints[f.name]
        if dataclasses.is_dataclass(kind):
            value = _build(kind, value, f"{where}{f.name}.")
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif typing.get_origin(kind) in (dict, list):
            if not isinstance(value, typing.get_origin(kind)):
                raise ConfigError(f"'{where}{f.name}' must be a "
                                  f"{'mapping' if typing.get_origin(kind) is dict else 'list'}")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"'{where}{f.name}' is {value!r}; expected {kind.__name__}")
        kwargs[f.name] = value
    return cls(**kwargs)


def load_section(section: str, cls: type, user_path: str | Path | None = None) -> Any:
    """Section `section` of the shipped config/train.yaml as dataclass `cls`, with the same
    section of `user_path` (if given) overlaid. Every section of the user's file is checked
    for misspelt settings, not only this one: a typo in the section a later phase (or another
    command) reads is refused now, not after reading recordings or training."""
    shipped = load_yaml(config_path(TRAIN_CONFIG))
    if section not in shipped:
        raise ConfigError(f"{config_path(TRAIN_CONFIG)} has no section '{section}'")
    values = shipped[section]
    if user_path is not None:
        user = load_yaml(Path(user_path))
        unknown = set(user) - set(shipped)
        if unknown:
            raise ConfigError(f"{user_path}: unknown section(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(shipped))}")
        values = _merge(shipped, {k: v or {} for k, v in user.items()}, "")[section]
    return _build(cls, values, f"{section}.")


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config saved with `as_dict` (a resumed run uses the config it started with)."""
    return _build(cls, values, "")
