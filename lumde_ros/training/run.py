"""The loop every trainer shares: deterministic sampling, the learning-rate schedule, the
non-finite guard, atomic resumable checkpoints, Ctrl-C / SIGTERM handling, logs, and
DistributedDataParallel under torchrun. A trainer supplies an Objective: its networks, its
updates (one optimiser each, e.g. a GAN's two) and how to export the served network."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lumde_ros.checkpoint import (Checkpoint, checkpoint_from_net, resolved_arch_config,
                                  save_checkpoint)
from lumde_ros.data.hints import HintConfig
from lumde_ros.data.image_motion import ImageMotionConfig
from lumde_ros.data.triplets import Batch, TripletData, load_triplets
from lumde_ros.errors import TrainingError
from lumde_ros.evaluation import CAMERA_HEIGHT
from lumde_ros.export import checkpoint_digest
from lumde_ros.files import atomic_path
from lumde_ros.floor import FloorConfig
from lumde_ros.inference import limit_threads
from lumde_ros.models import build_depth_net
from lumde_ros.training.camera_height import scale_from_camera_height
from lumde_ros.training.config import DataConfig, RunConfig, from_dict, load_section
from lumde_ros.training.log import RunLog

STATE_FILE = "state.pt"
HINTS_FOLDER = "hints"  # a run's depth hints, kept for its resumption
STATE_FORMAT = "lumde_ros.training_state"
# 2: data.channel_shuffle and image_motion.keyframe_parallax, which version 1 states lack.
# 3: hints.relative_*; the learned route's pose target in units of the median depth, its hints.
# 4: data.floor_prior_dropout.
# 5: PoseNet compares the two frames' encodings (pose_model features, radius, channels), given K.
# 6: PoseNet fits the rotation to the matches (pose_model temperature, refinements).
# 7: PoseNet's first fit is on coarse cells (pose_model coarse).
# 8: PoseNet's rotation fits leave the border cells out.
STATE_VERSION = 8
PREVIEWS = 3


@dataclass
class Update:
    """One optimiser and the loss it minimises. `loss` returns the scalar to minimise and the
    terms to log (floats); `learning_rate` is the rate before the schedule's decay."""

    name: str
    optimizer: torch.optim.Optimizer
    loss: Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]
    learning_rate: float

    def parameters(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


class Objective:
    """What a trainer provides to `train`: its modules (everything trained, saved and restored
    by name; the served depth network is modules["depth"]), its updates, its settings and what
    its checkpoint says about the depth (metric, scale)."""

    name: str                       # the exported checkpoint's file name (<name>.pt) and arch
    modules: dict[str, nn.Module]
    updates: list[Update]
    config: Any                     # a TrainerConfig
    arch_config: dict[str, Any]
    metric: bool
    depth_scale: float = 1.0

    def export(self, provenance: dict[str, Any]) -> Checkpoint:
        """The served network as a checkpoint in the common format."""
        data = self.config.data
        return checkpoint_from_net(self.modules["depth"], self.name, self.arch_config,
                                   data.input_width, data.input_height, self.metric,
                                   self.depth_scale, provenance)

    def preview(self, images: torch.Tensor) -> torch.Tensor:
        """Finest disparity (B, 1, H, W) in [0, 1] of images (B, 3, H, W), for training.png."""
        return self.modules["depth"](images).disps[0]


def initial_depth_net(arch: str, model_config: dict[str, Any],
                      init: Checkpoint | None) -> tuple[nn.Module, dict[str, Any]]:
    """The depth network a run starts from and its full arguments: a fresh one built from
    the settings' `model` section, or (fine-tuning) the weights and architecture of `init`,
    whose own arguments then win over the settings'."""
    if init is None:
        arch_config = resolved_arch_config(arch, model_config)
        return build_depth_net(arch, arch_config), arch_config
    if init.arch != arch:
        raise TrainingError(f"cannot start a {arch} from a {init.arch} checkpoint "
                            f"({init.describe()})")
    return init.build().train(), init.arch_config


def model_provenance(path: str | Path, checkpoint: Checkpoint) -> dict[str, Any]:
    """How a run names a checkpoint it read (its teacher, the weights it started from)."""
    return {"path": str(Path(path).resolve()), "digest": checkpoint_digest(checkpoint),
            "metric": checkpoint.metric}


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` on this device, under DistributedDataParallel when there are several."""
        module = module.to(self.device)
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def say(self, line: str) -> None:
        """Progress for the user on stderr, from rank 0 only (it speaks for the job)."""
        if self.main:
            print(line, file=sys.stderr, flush=True)

    def all_true(self, flag: bool) -> bool:
        """True only when `flag` holds on every process (they must agree to skip or stop)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
        return bool(value.item() > 0)


def start_distributed(device: str) -> Distributed:
    """Join the torchrun job if there is one (gloo on CPU, NCCL on GPUs); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device not in ("auto", "cpu", "cuda"):
        raise TrainingError(f"device '{device}' is not one of auto, cpu, cuda")
    if cuda and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' asked for but torch sees no CUDA device; use cpu")
    chosen = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(chosen)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Distributed(rank, world, chosen)


def lr_factor(config: RunConfig, step: int) -> float:
    """Step decay of every learning rate: a pure function of the step, so a resumed run
    continues the schedule."""
    return config.lr_decay if step >= config.lr_decay_at * config.steps else 1.0


# Streams drawn from the run's seed: the sampling order of each epoch, each step's augmentation.
_ORDER, _AUGMENT = 0, 1


def derived_seed(*keys: int) -> int:
    """A well-mixed seed from non-negative integers (run seed, stream, step, ...)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


@functools.lru_cache(maxsize=4)
def _epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(derived_seed(seed, _ORDER, epoch))
    return torch.randperm(size, generator=generator)


def sample_indices(size: int, batch: int, seed: int, step: int, rank: int,
                   world: int) -> list[int]:
    """The triplets of `step` on process `rank`: consecutive slices of a seeded shuffle per
    epoch, so every triplet is seen once per epoch and the order depends on nothing but the
    step (a resumed run draws exactly what the uninterrupted one would)."""
    start = (step * world + rank) * batch
    return [int(_epoch_order(size, seed, pos // size)[pos % size])
            for pos in range(start, start + batch)]


class _StopSignals:
    """Ctrl-C and SIGTERM ask the loop to stop after the current step (then it saves); a
    second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopSignals]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signal handlers can only be set from the main thread
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def read_state(folder: Path) -> dict[str, Any]:
    """The saved state of the run in `folder`, validated."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise TrainingError(f"{folder} holds no training state ({STATE_FILE}); start a new run "
                            "without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise TrainingError(f"{path} is unreadable (corrupt or truncated): "
                            f"{type(err).__name__}: {err}; start a new run in another folder")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path} is not a lumde_ros training state")
    if state.get("version") != STATE_VERSION:
        raise TrainingError(f"{path} has state version {state.get('version')}; this lumde_ros "
                            f"resumes version {STATE_VERSION}: resume it with the lumde_ros "
                            "that started it, or start a new run in another folder")
    return state


def train(objective: Objective, data: TripletData, run: RunConfig, data_config: DataConfig,
          out: Path, dist: Distributed, state: dict[str, Any] | None,
          saved: dict[str, Any]) -> dict[str, Any]:
    """Train `objective` on `data` to `run.steps`, from `state` when resuming. `saved`: what
    the state file records besides the weights (config, recordings, provenance). Returns a
    summary. Only rank 0 writes files."""
    step, skipped, in_row = 0, 0, 0
    if state is not None:
        if state["objective"] != objective.name:
            raise TrainingError(f"{out} holds a '{state['objective']}' run, not "
                                f"'{objective.name}'")
        for name, module in objective.modules.items():
            module.load_state_dict(state["modules"][name])
        for update in objective.updates:
            update.optimizer.load_state_dict(state["optimizers"][update.name])
        if state["processes"] != dist.world:
            raise TrainingError(f"{out} was trained by {state['processes']} process(es); resume "
                                f"it with as many (sampling and batch depend on it), not "
                                f"{dist.world}")
        step, skipped, in_row = state["step"], state["skipped"], state["skipped_in_row"]
        torch.set_rng_state(state["torch_rng"])
    prior = data_config.floor_prior_dropout \
        if getattr(objective.modules["depth"], "floor_prior", False) else None
    log = RunLog(out, objective.name, run.steps, run.log_every, step, enabled=dist.main)
    spread = np.linspace(0, len(data) - 1, min(PREVIEWS, len(data))).round().astype(int)
    shown = data.batch(spread.tolist(), torch.Generator(), False, 0.0).target
    started, first_step = time.monotonic(), step

    def save() -> None:
        if not dist.main:
            return
        provenance = dict(saved["provenance"], steps=step, skipped_steps=skipped)
        save_checkpoint(objective.export(provenance), out / f"{objective.name}.pt")
        payload = {"format": STATE_FORMAT, "version": STATE_VERSION,
                   "objective": objective.name, "step": step, "skipped": skipped,
                   "skipped_in_row": in_row, "processes": dist.world,
                   "modules": {n: m.state_dict() for n, m in objective.modules.items()},
                   "optimizers": {u.name: u.optimizer.state_dict() for u in objective.updates},
                   "torch_rng": torch.get_rng_state(), **saved}
        with atomic_path(out / STATE_FILE) as tmp:
            torch.save(payload, tmp)
        log.plot(_previews(objective, shown, dist.device))

    with _StopSignals().installed() as stop:
        while step < run.steps and dist.all_true(not stop.requested):
            indices = sample_indices(len(data), run.batch_size, run.seed, step, dist.rank,
                                     dist.world)
            generator = torch.Generator().manual_seed(derived_seed(run.seed, _AUGMENT, step,
                                                                   dist.rank))
            batch = data.batch(indices, generator, data_config.flip, data_config.color_jitter,
                               data_config.channel_shuffle, prior).to(dist.device)
            factor = lr_factor(run, step)
            values, ok = {}, True
            for update in objective.updates:
                for group in update.optimizer.param_groups:
                    group["lr"] = update.learning_rate * factor
                ok = _apply(update, batch, run.grad_clip, dist, values) and ok
            step += 1
            if ok:
                in_row = 0
            else:
                skipped, in_row = skipped + 1, in_row + 1
                if in_row > run.max_skipped_in_row:
                    save()
                    raise TrainingError(
                        f"training diverged: {in_row} steps in a row had a non-finite loss or "
                        f"gradient (step {step}); lower learning_rate or check the recordings. "
                        f"Skipped steps change no weight: the run so far is saved in {out}")
            log.record(step, values, run.learning_rate * factor, skipped)
            if step % run.checkpoint_every == 0 and step < run.steps:
                save()
        save()
    done = step >= run.steps
    return {"out": str(out), "checkpoint": str(out / f"{objective.name}.pt"), "step": step,
            "steps": run.steps, "finished": done, "skipped_steps": skipped,
            "seconds": round(time.monotonic() - started, 1),
            "s_per_step": round(log.seconds_per_step(), 3) if step > first_step else None,
            "final_losses": {k: round(v, 5) for k, v in (log.rows[-1] if log.rows else {}).items()
                             if k not in ("step", "lr", "skipped", "s_per_step")}}


def _apply(update: Update, batch: Batch, grad_clip: float, dist: Distributed,
           values: dict[str, float]) -> bool:
    """One optimiser step, skipped (gradients dropped) when the loss or the gradient norm is
    not finite on any process. Returns whether it stepped."""
    update.optimizer.zero_grad(set_to_none=True)
    loss, terms = update.loss(batch)
    values.update(terms)
    if not dist.all_true(bool(torch.isfinite(loss))):
        return False
    loss.backward()
    norm = nn.utils.clip_grad_norm_(update.parameters(), grad_clip)
    if not dist.all_true(bool(torch.isfinite(norm))):
        update.optimizer.zero_grad(set_to_none=True)
        return False
    update.optimizer.step()
    return True


def _previews(objective: Objective, images: torch.Tensor,
              device: torch.device) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB, disparity) of the preview frames from the current weights."""
    modules = list(objective.modules.values())
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    with torch.no_grad():
        disps = objective.preview(images.to(device)).cpu()
    for m, mode in zip(modules, modes):
        m.train(mode)
    rgb = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    return [(rgb[i], disps[i, 0].numpy()) for i in range(len(rgb))]



def run_trainer(section: str, config_type: type, out: str | Path, bags: list[str | Path],
                config_path: str | Path | None, steps: int | None, resume: bool, stride: int,
                make_objective: Callable[[Any, TripletData, Distributed], Objective],
                provenance: dict[str, Any],
                configure: Callable[[Any], Any] = lambda config: config) -> dict[str, Any]:
    """Everything around `train` every trainer needs: its settings (section `section` of
    config/train.yaml overlaid by `config_path`, or on `resume` the run's own, where only
    `steps` may change), its recordings (on resume the same ones, or none given), threads,
    torchrun, data, provenance. `configure` adjusts a new run's settings (command-line flags);
    `make_objective(config, data, dist)` builds the trainer."""
    out = Path(out)
    paths = [str(Path(b).resolve()) for b in bags]
    state = None
    if resume:
        state = read_state(out)
        if config_path is not None:
            raise TrainingError("--resume continues with the settings the run started with; "
                                "drop --config (only --steps may change)")
        config = from_dict(config_type, state["config"]).with_steps(steps, keep_decay_step=True)
        if paths and paths != state["bags"]:
            raise TrainingError(f"--resume with other recordings than the run started with "
                                f"({', '.join(state['bags'])}); give the same --bag list or none")
        paths = state["bags"]
    else:
        if (out / STATE_FILE).exists():
            raise TrainingError(f"{out} already holds a training run; pass --resume to continue "
                                "it or choose another --out")
        config = configure(load_section(section, config_type, config_path).with_steps(steps))
    size = (config.data.input_width, config.data.input_height)
    if min(size) <= 0 or size[0] % stride or size[1] % stride:
        raise TrainingError(f"input size {size[0]}x{size[1]}: both must be positive multiples "
                            f"of {stride}")
    dist = start_distributed(config.run.device)
    # CPU processes of one torchrun job share the cores unless told how many each may use.
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = config.run.threads or (max(1, (os.cpu_count() or 1) // local) if local > 1 else 0)
    limit_threads(threads)
    hints = None  # a resumed run uses the hints it started with, or none if it had none
    if state is not None:
        hints = from_dict(HintConfig, state["hints"]) if "hints" in state else None
    elif config.synthesis.hint_weight > 0:
        hints = load_section("hints", HintConfig, config_path)
    motion = None  # likewise the image motion settings of a run on the learned route
    if state is not None:
        motion = from_dict(ImageMotionConfig, state["image_motion"]) \
            if "image_motion" in state else None
    elif config.data.pose != "odometry" and config.synthesis.pose_weight > 0:
        motion = load_section("image_motion", ImageMotionConfig, config_path)
    data = load_triplets(paths, *size, config.data.pose, config.data.min_baseline_m,
                         config.data.holdout, image_topic=config.data.image_topic,
                         camera_info_topic=config.data.camera_info_topic, hints=hints,
                         hint_cache=out / HINTS_FOLDER, say=dist.say, motion=motion)
    route = "odometry" if data.metric else "learned"
    why = {"why_relative": data.why_relative} if data.why_relative else {}
    if data.why_relative and state is None:
        dist.say(f"learned pose route (relative depth): {data.why_relative}")
    if state is not None and state["metric"] != data.metric:
        raise TrainingError(f"the run started on the {'odometry' if state['metric'] else 'learned'}"
                            f" pose route but the recordings now give the {route} route")
    objective = make_objective(config, data, dist)
    derived = {**({} if data.hints is None else {"hints": dataclasses.asdict(hints)}),
               **({} if data.image_motions is None
                  else {"image_motion": dataclasses.asdict(motion)})}
    provenance = {"trained": True, "command": shlex.join(sys.argv), "seed": config.run.seed,
                  "pose_route": route, **why, "recordings": data.recordings,
                  "config": config.as_dict(),
                  "torch_version": str(torch.__version__), **derived, **provenance}
    saved = {"config": config.as_dict(), "bags": paths, "metric": data.metric,
             "provenance": provenance, **derived}
    try:
        summary = train(objective, data, config.run, config.data, out, dist, state, saved)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()
    summary.update(metric=objective.metric, pose_route=route, **why, triplets=len(data),
                   processes=dist.world)
    floor = load_section("floor", FloorConfig, config_path)
    if summary["finished"] and dist.main and not objective.metric and floor.calibration_frames:
        dist.say("fitting the floor in the model's depth for a metric scale")
        summary[CAMERA_HEIGHT] = scale_from_camera_height(
            Path(summary["checkpoint"]), paths, config.data, floor, threads)
        summary["metric"] = summary[CAMERA_HEIGHT]["metres_per_unit"] is not None
    if data.image_motions is not None:  # how much of the learned route the images guided
        summary["image_motion_known"] = round(data.image_motion_known.float().mean().item(), 3)
    recovered = [f"{r['bag']}: {r['recovered']['messages']} messages read from its repaired "
                 f"copy {r['recovered']['copy']}" for r in data.recordings if "recovered" in r]
    if recovered:  # said where the user looks: what a dead recorder left was recovered
        summary["recovered"] = recovered
    return summary
