"""The one checkpoint format every network of the project is saved in and loaded from.

A checkpoint is a plain dict of primitives and tensors, read with `torch.load(weights_only=True)`
so loading a file never runs pickled code. Metadata (architecture, input size, scale,
provenance) sits beside the weights, never inside the state_dict.
"""
from __future__ import annotations

import datetime as dt
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lumde_ros import __version__
from lumde_ros.errors import ModelLoadError
from lumde_ros.files import atomic_path
from lumde_ros.models import ARCHITECTURES, build_depth_net

FORMAT = "lumde_ros.checkpoint"
FORMAT_VERSION = 1
# The seed of the untrained student served while no trained model is configured.
UNTRAINED_SEED = 0

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "arch": str, "arch_config": dict, "input_width": int, "input_height": int,
    "metric": bool, "depth_scale": (float, int), "state_dict": dict, "provenance": dict}


@dataclass(frozen=True)
class Checkpoint:
    """A depth network's weights and what is needed to serve them.

    input_width/input_height: the size the network was trained at (pixels).
    metric: True when depth * depth_scale is in metres (trained with odometry, or scaled from
    the camera's height: see scale_source); False for relative depth that needs a scale from
    the user.
    depth_scale: metres per network depth unit.
    provenance: how it was made (command, seed, data, versions), for reproducibility.
    """

    arch: str
    arch_config: dict[str, Any]
    input_width: int
    input_height: int
    metric: bool
    depth_scale: float
    state_dict: dict[str, torch.Tensor]
    provenance: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        """The network with these weights, in eval mode."""
        net = build_depth_net(self.arch, self.arch_config)
        try:
            net.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as err:
            raise ModelLoadError(f"weights do not fit architecture '{self.arch}' "
                                 f"{self.arch_config}: {err}") from err
        return net.eval()

    @property
    def trained(self) -> bool:
        """False only for the seeded placeholder (`untrained_student`)."""
        return self.provenance.get("trained", True) is not False

    @property
    def scale_source(self) -> str:
        """Where its metres come from: "odometry" (trained on it), "camera_height" (the floor
        fitted in its depth against the camera's height from tf, after training), or
        "relative" (none: the user supplies a scale)."""
        if not self.metric:
            return "relative"
        return self.provenance.get("scale", {}).get("source", "odometry")

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        origin = self.provenance.get("source", "trained")
        scale = f"metric ({self.scale_source.replace('_', ' ')})" if self.metric \
            else "relative scale"
        prior = ", takes the floor prior" if self.arch_config.get("floor_prior") else ""
        return f"{self.arch} {self.input_width}x{self.input_height}, {scale}{prior}, {origin}"


def resolved_arch_config(arch: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture's full constructor arguments (defaults plus `overrides`), so a
    checkpoint records every number needed to rebuild it even if defaults change later."""
    params = inspect.signature(ARCHITECTURES[arch].__init__).parameters
    config = {name: p.default for name, p in params.items() if name != "self"}
    config.update(overrides or {})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def checkpoint_from_net(net: nn.Module, arch: str, arch_config: dict[str, Any], input_width: int,
                        input_height: int, metric: bool, depth_scale: float = 1.0,
                        provenance: dict[str, Any] | None = None) -> Checkpoint:
    """Wrap a trained network into a Checkpoint (weights copied to CPU)."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    info = {"lumde_ros_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    info.update(provenance or {})
    return Checkpoint(arch=arch, arch_config=arch_config, input_width=input_width,
                      input_height=input_height, metric=metric, depth_scale=float(depth_scale),
                      state_dict=state, provenance=info)


def untrained_student(input_width: int = 320, input_height: int = 256,
                      seed: int = UNTRAINED_SEED) -> Checkpoint:
    """A student of the project's architecture initialised from `seed`: served until trained
    weights are configured, so the node and its tests run; its depth is not meaningful."""
    torch.manual_seed(seed)
    config = resolved_arch_config("student")
    net = build_depth_net("student", config)
    return checkpoint_from_net(net, "student", config, input_width, input_height, metric=False,
                               provenance={"source": f"untrained, seed {seed}", "seed": seed,
                                           "trained": False})


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write atomically (temporary file in the same directory, then rename), so a crash never
    leaves a half-written checkpoint where a node or a resumed run would read it."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": checkpoint.arch,
               "arch_config": checkpoint.arch_config, "input_width": checkpoint.input_width,
               "input_height": checkpoint.input_height, "metric": checkpoint.metric,
               "depth_scale": checkpoint.depth_scale, "state_dict": checkpoint.state_dict,
               "provenance": checkpoint.provenance}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint; any problem is a ModelLoadError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"checkpoint {path} is an empty file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        # torch's own text advises loading untrusted files with pickled code: never shown.
        why = ("it holds Python objects, not only tensors (a foreign or TorchScript file; "
               "pickled code is never run)" if "Weights only load failed" in str(err)
               else f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200]}")
        raise ModelLoadError(f"{path} is not a readable lumde_ros checkpoint (corrupt, truncated "
                             f"or another format): {why}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not a lumde_ros checkpoint (no '{FORMAT}' tag); "
                             "save models with lumde_ros's training commands")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(f"{path} has checkpoint format {version}; this lumde_ros "
                             f"({__version__}) reads up to {FORMAT_VERSION}: upgrade lumde_ros")
    for name, kind in _FIELDS.items():
        if not isinstance(payload.get(name), kind):
            raise ModelLoadError(f"{path} field '{name}' is missing or not {kind}")
    checkpoint = Checkpoint(**{name: payload[name] for name in _FIELDS})
    if checkpoint.input_width <= 0 or checkpoint.input_height <= 0:
        raise ModelLoadError(f"{path} has input size {checkpoint.input_width}x"
                             f"{checkpoint.input_height}; expected positive")
    if not (math.isfinite(checkpoint.depth_scale) and checkpoint.depth_scale > 0):
        raise ModelLoadError(f"{path} has depth_scale {checkpoint.depth_scale}; expected > 0")
    for name, tensor in checkpoint.state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ModelLoadError(f"{path} weight '{name}' is not a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelLoadError(f"{path} weight '{name}' contains NaN or Inf: the training run "
                                 "that wrote it diverged; use an earlier checkpoint")
    return checkpoint
