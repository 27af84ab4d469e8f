"""`lumde distill`: LUMDE, the light-weight student learns from a frozen teacher through
pixel-wise (depth), pair-wise (feature affinities) and holistic (adversarial, Transformer
discriminator) distillation, plus its own self-supervised loss through its own pose network.
The result is a student checkpoint the depth node serves, metric when the teacher is."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from lumde_ros.checkpoint import Checkpoint, load_checkpoint
from lumde_ros.data.triplets import Batch, TripletData
from lumde_ros.errors import ConfigError, TrainingError
from lumde_ros.export import checkpoint_digest
from lumde_ros.geometry import disp_to_depth, floor_prior
from lumde_ros.losses.distillation import (discriminator_hinge, generator_hinge, pairwise_loss,
                                           pixel_loss)
from lumde_ros.losses.self_supervised import reprojection, self_supervised
from lumde_ros.models import DepthNetOutput, PoseNet, StudentDepthNet, construct
from lumde_ros.models.discriminator import TransformerDiscriminator
from lumde_ros.training.config import DistillConfig
from lumde_ros.training.run import (Distributed, Objective, Update, initial_depth_net,
                                    model_provenance, read_state, run_trainer)

LOSSES = ("pixel", "pair", "gan", "photo")
# Losses that read the teacher; `photo` alone trains a student without one.
TEACHER_LOSSES = ("pixel", "pair", "gan")


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into `module`'s parameters (the student's turn against the discriminator)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class TeacherView(NamedTuple):
    """What the student learns from the teacher about a batch: its finest disparity
    (B, 1, H, W) and its pair-layer features pooled to the pair grid (B, C, rows, columns)."""

    disp: torch.Tensor
    nodes: torch.Tensor


class TeacherOutputs:
    """The frozen teacher's view of every training target, computed once before training
    instead of a teacher forward pass every step, for both orientations, so a flipped target
    looks up the teacher's output of the flipped frame exactly. The one augmentation the
    teacher does not see is colour jitter: it judges the frame as recorded, and the student
    learns to give the same depth through the jitter. A teacher with the floor prior is always
    told the floor where tf gives it (never dropped out), so it teaches its best depth. Kept
    at half precision."""

    def __init__(self, teacher: nn.Module, data: TripletData, layer: int,
                 grid: tuple[int, int], device: torch.device, chunk: int = 16) -> None:
        targets = data.triplets[:, 1].unique()
        self.slot = torch.full((len(data.images),), -1, dtype=torch.long)
        self.slot[targets] = torch.arange(len(targets))
        disps: list[list[torch.Tensor]] = [[], []]
        nodes: list[list[torch.Tensor]] = [[], []]
        with torch.no_grad():
            for start in range(0, len(targets), chunk):
                frames = targets[start:start + chunk]
                images = (data.images[frames].float() / 255).to(device)
                prior = None
                if getattr(teacher, "floor_prior", False) and data.floors is not None:
                    prior = floor_prior(data.k[frames], data.floors[frames],
                                        *images.shape[-2:]).float().to(device)
                views = ((images, prior),
                         (images.flip(-1), None if prior is None else prior.flip(-1)))
                for orientation, (seen, told) in enumerate(views):
                    out = teacher(seen, told)
                    disps[orientation].append(out.disps[0].half().cpu())
                    nodes[orientation].append(
                        F.adaptive_avg_pool2d(out.features[layer], grid).half().cpu())
        self.disps = torch.stack([torch.cat(d) for d in disps])  # (2, T, 1, H, W)
        self.nodes = torch.stack([torch.cat(n) for n in nodes])  # (2, T, C, rows, columns)

    @property
    def megabytes(self) -> float:
        return (self.disps.numel() + self.nodes.numel()) * 2 / 1e6

    def view(self, batch: Batch, device: torch.device) -> TeacherView:
        """The teacher's view of `batch`'s targets (drawn from the data this was built on)."""
        orientation, slot = batch.flipped.long(), self.slot[batch.frames]
        return TeacherView(self.disps[orientation, slot].float().to(device),
                           self.nodes[orientation, slot].float().to(device))


class DistillObjective(Objective):
    """Student depth network (+ its pose network with `photo`, + the discriminator with
    `gan`); the teacher is frozen. With `gan` each step updates the discriminator, then the
    student. `init`: a student checkpoint to fine-tune instead of starting fresh."""

    name = "student"

    def __init__(self, config: DistillConfig, data: TripletData, dist: Distributed,
                 teacher: Checkpoint | None, init: Checkpoint | None = None) -> None:
        self.config, self.losses = config, config.loss.losses
        unknown = set(self.losses) - set(LOSSES)
        if unknown or not self.losses:
            raise ConfigError(f"losses {self.losses}: choose one or more of {', '.join(LOSSES)}")
        if teacher is None and set(self.losses) & set(TEACHER_LOSSES):
            raise TrainingError(f"losses {', '.join(set(self.losses) & set(TEACHER_LOSSES))} "
                                "need --teacher")
        if teacher is not None and data.metric and not teacher.metric:
            raise TrainingError(
                "the teacher's depth is relative but the recordings have odometry (metric): "
                "the student's own view synthesis would pull it to metres and the teacher to "
                "another scale; train the teacher on these recordings (it becomes metric) or "
                "set data.pose: learned")
        self.teacher_checkpoint = teacher
        self.metric = teacher.metric if teacher is not None else data.metric
        self.depth_scale = teacher.depth_scale if teacher is not None else 1.0
        torch.manual_seed(config.run.seed)
        student, self.arch_config = initial_depth_net("student", config.model, init)
        self.modules: dict[str, nn.Module] = {"depth": student}
        if "photo" in self.losses:
            self.modules["pose"] = construct(PoseNet, config.pose_model)
        if "gan" in self.losses:
            size = [config.data.input_height, config.data.input_width]
            self.modules["discriminator"] = construct(
                TransformerDiscriminator, {**config.discriminator, "input_size": size})
        self.wrapped = {name: dist.wrap(module) for name, module in self.modules.items()}
        self.teacher_outputs = None
        if teacher is not None and set(self.losses) & set(TEACHER_LOSSES):
            net = teacher.build().to(dist.device).requires_grad_(False)
            self.teacher_range = (net.near_m, net.far_m)
            self.teacher_outputs = TeacherOutputs(net, data, config.loss.pair_layer,
                                                  tuple(config.loss.pair_grid), dist.device)
            dist.say(f"teacher outputs cached for {self.teacher_outputs.slot.ge(0).sum()} "
                     f"frames ({self.teacher_outputs.megabytes:.0f} MB)")
        self.device = dist.device
        student_params = [p for n in ("depth", "pose") if n in self.modules
                          for p in self.modules[n].parameters()]
        self.updates = []
        if "gan" in self.losses:
            self.updates.append(Update(
                "discriminator", torch.optim.Adam(self.modules["discriminator"].parameters(),
                                                  betas=tuple(config.loss.discriminator_betas)),
                self.discriminator_loss, config.loss.discriminator_lr))
        self.updates.append(Update("student", torch.optim.Adam(student_params),
                                   self.student_loss, config.run.learning_rate))
        self._cache: tuple[Batch, TeacherView | None, DepthNetOutput] | None = None

    def _outputs(self, batch: Batch) -> tuple[TeacherView | None, DepthNetOutput]:
        """Teacher (cached) and student outputs of this batch, the student's computed once
        per step and shared by the discriminator's and the student's updates."""
        if self._cache is None or self._cache[0] is not batch:
            teacher = None
            if self.teacher_outputs is not None:
                teacher = self.teacher_outputs.view(batch, self.device)
            self._cache = (batch, teacher, self.wrapped["depth"](batch.target, batch.prior))
        return self._cache[1], self._cache[2]

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        teacher, student = self._outputs(batch)
        fake = student.disps[0].detach()
        # Real and fake in one forward pass (DistributedDataParallel allows one per backward).
        scores = self.wrapped["discriminator"](torch.cat([teacher.disp, fake]),
                                               torch.cat([batch.target, batch.target]))
        real, fake_scores = scores.chunk(2)
        loss = discriminator_hinge(real, fake_scores)
        return loss, {"gan_d": float(loss.detach()), "d_real": float(real.detach().mean()),
                      "d_fake": float(fake_scores.detach().mean())}

    def student_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        teacher, student = self._outputs(batch)
        config, net = self.config.loss, self.modules["depth"]
        terms: dict[str, torch.Tensor] = {}
        loss = student.disps[0].new_zeros(())
        if "pixel" in self.losses:
            weight = self._confidence(teacher, batch) if config.pixel_confidence else None
            terms["pixel"] = pixel_loss(student.disps, (net.near_m, net.far_m), teacher.disp,
                                        self.teacher_range, weight)
            loss = loss + config.pixel_weight * terms["pixel"]
        if "pair" in self.losses:
            layer = config.pair_layer
            terms["pair"] = pairwise_loss(student.features[layer], teacher.nodes,
                                          tuple(config.pair_grid))
            loss = loss + config.pair_weight * terms["pair"]
        if "gan" in self.losses:
            discriminator = self.modules["discriminator"]
            with _frozen(discriminator):
                terms["gan_g"] = generator_hinge(discriminator(student.disps[0], batch.target))
            loss = loss + config.gan_weight * terms["gan_g"]
        if "photo" in self.losses:
            photo, parts = self_supervised(student.disps, self.wrapped["pose"], batch,
                                           net.near_m, net.far_m, self.config.photo)
            terms.update({"self_supervised": photo, **{k: v for k, v in parts.items()
                                                       if k in ("photo", "pose")}})
            loss = loss + config.photo_weight * photo
        self._cache = None  # the student's graph is consumed by this update's backward
        return loss, {"loss": float(loss.detach()),
                      **{k: float(v.detach()) for k, v in terms.items()}}

    def _teacher_depth(self, teacher: TeacherView) -> torch.Tensor:
        """The teacher's full-resolution depth in its served units (metres when metric)."""
        return disp_to_depth(teacher.disp, *self.teacher_range) \
            * self.teacher_checkpoint.depth_scale

    def _confidence(self, teacher: TeacherView, batch: Batch) -> torch.Tensor | None:
        """Per-pixel weight in (0, 1]: high where the teacher's depth, with the odometry
        motion, synthesises the target well from the better of the two sources. Without
        odometry (no trustworthy motion) every pixel counts the same."""
        if batch.motions is None:
            return None
        with torch.no_grad():
            errors, _ = reprojection(self._teacher_depth(teacher), batch, batch.motions,
                                     self.config.photo.ssim_weight)
            scale = errors.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)
            return torch.exp(-errors / scale)


def distill(bags: Sequence[str | Path], teacher_path: str | Path | None, out: str | Path,
            config_path: str | Path | None, steps: int | None = None, resume: bool = False,
            losses: list[str] | None = None, init: str | Path | None = None) -> dict[str, Any]:
    """Train (or with `resume` continue) a student in `out`, from scratch or from the student
    checkpoint `init` (fine-tuning); returns a summary. A resumed run uses the teacher it
    started with (a different file given with --teacher is refused)."""
    teacher, started = None, None
    if resume:
        if losses is not None:
            raise TrainingError("--resume continues with the losses the run started with; "
                                "drop --losses")
        started = read_state(Path(out))["provenance"].get("teacher")
        if started and teacher_path is None:
            teacher_path = started["path"]
        if not started and teacher_path is not None:
            raise TrainingError("this run started without a teacher; resume it without "
                                "--teacher")
    if teacher_path is not None:
        teacher = load_checkpoint(teacher_path)
        if teacher.arch != "teacher":
            raise TrainingError(f"{teacher_path} is a {teacher.arch}, not a teacher (lumde "
                                "train-teacher makes one)")
        if started and checkpoint_digest(teacher) != started["digest"]:
            raise TrainingError(f"{teacher_path} is not the teacher this run started with "
                                f"({started['path']})")

    start = load_checkpoint(init) if init is not None and not resume else None

    def make(config: DistillConfig, data: TripletData, dist: Distributed) -> DistillObjective:
        return DistillObjective(config, data, dist, teacher, start)

    provenance: dict[str, Any] = {"source": "lumde distill"}
    if teacher is not None:
        provenance["teacher"] = model_provenance(teacher_path, teacher)
        if "scale" in teacher.provenance:  # the student serves the teacher's scale
            provenance["scale"] = teacher.provenance["scale"]
    if start is not None:
        provenance["init"] = model_provenance(init, start)
    return run_trainer("distill", DistillConfig, out, list(bags), config_path, steps, resume,
                       StudentDepthNet.STRIDE, make, provenance,
                       configure=lambda config: config.with_losses(losses))
