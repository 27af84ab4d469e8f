"""`lumde finetune`: adapt the depth model to the robot's own recordings, without ground
truth. The teacher is fine-tuned self-supervised, the student is distilled from it (starting
from the serving student), and the new student is judged by the gate on frames held out of
training. The trainer node runs exactly this in a background process.

A run folder holds finetune.json (what was asked), teacher/ and student/ (ordinary training
runs, each resumable), train-overlay.yaml (the settings both phases used) and gate.json."""
from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lumde_ros.checkpoint import load_checkpoint
from lumde_ros.config import load_yaml, node_defaults
from lumde_ros.data.triplets import TripletData, load_triplets
from lumde_ros.errors import ConfigError, LumdeError, TrainingError
from lumde_ros.files import atomic_path
from lumde_ros.floor import FloorConfig
from lumde_ros.inference import limit_threads, load_model_or_default, shipped_weights
from lumde_ros.models import PoseNet, construct
from lumde_ros.training.config import DistillConfig, load_section
from lumde_ros.training.distill import distill
from lumde_ros.training.gate import gate, relative_reason
from lumde_ros.training.run import STATE_FILE, read_state
from lumde_ros.training.teacher import train_teacher

TRAINER_CONFIG = "trainer.yaml"
RECORD_FILE = "finetune.json"
OVERLAY_FILE = "train-overlay.yaml"
GATE_FILE = "gate.json"
PHASES = ("teacher", "student")


@dataclass(frozen=True)
class FinetuneOptions:
    """How a fine-tune runs; defaults in config/trainer.yaml (the trainer node's parameters
    of the same names)."""

    teacher_steps: int
    student_steps: int
    learning_rate: float
    holdout: float
    gate_margin: float
    threads: int

    def __post_init__(self) -> None:
        for name in ("teacher_steps", "student_steps", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} is {getattr(self, name)}; expected > 0")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"holdout is {self.holdout}; expected a fraction between 0 and 1 "
                              "(the gate needs held-out frames)")
        if self.gate_margin < 0 or self.threads < 0:
            raise ConfigError("gate_margin and threads must not be negative")

    @classmethod
    def defaults(cls, **overrides: Any) -> FinetuneOptions:
        """config/trainer.yaml's values, with `overrides` that are not None."""
        values = node_defaults(TRAINER_CONFIG)
        fields = [f.name for f in dataclasses.fields(cls)]
        chosen = {name: values[name] for name in fields}
        chosen.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**chosen)


def _overlay(out: Path, options: FinetuneOptions, config_path: str | Path | None) -> Path:
    """The user's train.yaml overlay with the fine-tune's threads and hold-out on top, and its
    learning rate where the overlay sets none for a phase; written to the run folder so both
    phases (and a reader later) see the same settings."""
    overlay = load_yaml(Path(config_path)) if config_path else {}
    # Both phases read the same recordings: topics named in one section hold for both.
    named = [{k: v for k, v in ((overlay.get(section) or {}).get("data") or {}).items()
              if k in ("image_topic", "camera_info_topic") and v}
             for section in ("teacher", "distill")]
    topics = next((pair for pair in named if pair), {})
    for section in ("teacher", "distill"):
        values = overlay.setdefault(section, {})
        run = values.setdefault("run", {})
        run.setdefault("learning_rate", options.learning_rate)
        run["threads"] = options.threads
        data = values.setdefault("data", {})
        data.update(holdout=options.holdout)
        if not any(data.get(key) for key in ("image_topic", "camera_info_topic")):
            data.update(topics)
    path = out / OVERLAY_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


def _record(out: Path, resume: bool, asked: dict[str, Any]) -> dict[str, Any]:
    """What this fine-tune was asked to do: written on a new run, read back on resume."""
    path = out / RECORD_FILE
    if resume:
        if not path.is_file():
            raise TrainingError(f"{out} holds no fine-tune to resume ({RECORD_FILE} missing)")
        return json.loads(path.read_text())
    if path.exists():
        raise TrainingError(f"{out} already holds a fine-tune; pass --resume to continue it "
                            "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asked, indent=2))
    return asked


def finetune(bags: Sequence[str | Path], teacher: str | Path | None,
             student: str | Path | None, out: str | Path, options: FinetuneOptions | None,
             config_path: str | Path | None = None, resume: bool = False,
             steps: dict[str, int] | None = None) -> dict[str, Any]:
    """Fine-tune `teacher` (default: the shipped one) on `bags`, distil into `student`
    (default: the shipped one, else a fresh student), gate the result against `student`.
    With `resume` everything comes from the run folder (`options` None) and continues where
    it stopped; `steps` may extend a phase (teacher_steps, student_steps)."""
    out = Path(out)
    if resume:
        if bags or teacher or student or config_path or options:
            raise TrainingError("--resume continues the fine-tune as it was started; give only "
                                "--out (and optionally --teacher-steps/--student-steps)")
        asked = _record(out, True, {})
        options = dataclasses.replace(FinetuneOptions(**asked["options"]), **(steps or {}))
    else:
        teacher = teacher or shipped_weights("teacher")
        if not Path(teacher).is_file():
            raise TrainingError(f"no teacher at {teacher}: pass --teacher (train one with "
                                "lumde train-teacher)")
        if load_checkpoint(teacher).arch != "teacher":
            raise TrainingError(f"{teacher} is not a teacher; pass the teacher as --teacher "
                                "and the serving student as --student")
        if student is None and shipped_weights("student").is_file():
            student = shipped_weights("student")
        asked = _record(out, False, {
            "bags": [str(Path(b).resolve()) for b in bags],
            "teacher": str(Path(teacher).resolve()),
            "student": str(Path(student).resolve()) if student else None,
            "options": dataclasses.asdict(options), "config": str(config_path or "")})
        _overlay(out, options, config_path)
    try:
        check_before_training(out, asked["bags"], asked["student"], options)
    except LumdeError:
        if not resume:  # the run never started: --out stays free for the corrected command
            for name in (RECORD_FILE, OVERLAY_FILE):
                (out / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    overlay = out / OVERLAY_FILE
    summary: dict[str, Any] = {"out": str(out), "finished": False}
    for phase, phase_steps in zip(PHASES, (options.teacher_steps, options.student_steps)):
        folder = out / phase
        again = (folder / STATE_FILE).exists()
        done = read_state(folder)["step"] if again else 0
        if done >= phase_steps:
            # Finished before: leave its checkpoint untouched (the next phase checks it).
            summary[phase] = {"checkpoint": str(folder / f"{phase}.pt"), "finished": True,
                              "step": done, "steps": phase_steps}
            continue
        given = {"bags": [] if again else asked["bags"], "out": folder,
                 "config_path": None if again else overlay, "steps": phase_steps,
                 "resume": again, "init": None if again else asked[phase]}
        if phase == "teacher":
            summary[phase] = train_teacher(**given)
        else:
            summary[phase] = distill(teacher_path=out / "teacher" / "teacher.pt", **given)
        if not summary[phase]["finished"]:
            summary.update(phase=phase, step=summary[phase]["step"],
                           steps=summary[phase]["steps"])
            return summary
    verdict = judge(out, asked["bags"], asked["student"], options)
    summary.update(finished=True, phase="done", accepted=verdict["accepted"],
                   model=summary["student"]["checkpoint"], gate=verdict,
                   step=summary["student"]["step"], steps=summary["student"]["steps"])
    return summary


def _held_out(out: Path, bags: list[str], options: FinetuneOptions) -> TripletData:
    config = load_section("distill", DistillConfig, out / OVERLAY_FILE)
    return load_triplets(bags, config.data.input_width, config.data.input_height,
                         config.data.pose, config.data.min_baseline_m, options.holdout,
                         held_out=True, image_topic=config.data.image_topic,
                         camera_info_topic=config.data.camera_info_topic)


def check_before_training(out: Path, bags: list[str], serving: str | None,
                          options: FinetuneOptions) -> None:
    """Refuse before any training what would fail or be refused after it: a serving model
    that is not a readable student, recordings whose held-out end has no triplet for the gate,
    or recordings without usable odometry when the serving model gives metres and tf does
    not place the camera over the floor either (the fine-tune would learn relative depth;
    with the camera's mount its scale comes from the camera's height, camera_height.py)."""
    serving_checkpoint = load_model_or_default(serving)[0]
    if serving_checkpoint.arch != "student":
        raise TrainingError(f"{serving} is not a student; pass the serving student as "
                            "--student")
    data = _held_out(out, bags, options)
    if serving_checkpoint.metric and not data.metric:
        floor = load_section("floor", FloorConfig, out / OVERLAY_FILE)
        over_floor = (data.floors[:, 2, 3] > 0).split([r["frames"] for r in data.recordings])
        unplaced = [r["bag"] for r, placed in zip(data.recordings, over_floor)
                    if not placed.any()]
        if unplaced or not floor.calibration_frames:
            where = (f"tf does not place the camera over the floor in {', '.join(unplaced)}"
                     if unplaced else "floor.calibration_frames is 0")
            raise TrainingError(f"the serving model's depth is metric but {relative_reason(data)}"
                                f"; and {where}, so no scale can come from the camera's height "
                                "either: a fine-tune on these recordings would learn relative "
                                "depth")


def judge(out: Path, bags: list[str], serving: str | None,
          options: FinetuneOptions) -> dict[str, Any]:
    """Run the gate on the held-out end of every recording; writes gate.json."""
    config = load_section("distill", DistillConfig, out / OVERLAY_FILE)
    data = _held_out(out, bags, options)
    pose_net = None
    if not data.metric:  # only then is the run's pose network needed (its state is large)
        modules = read_state(out / "student")["modules"]
        if "pose" not in modules:
            raise TrainingError("the recordings have no odometry and the distillation trained "
                                "no pose network (losses without photo): the gate has no "
                                "motion to reproject with")
        pose_net = construct(PoseNet, config.pose_model)
        pose_net.load_state_dict(modules["pose"])
    limit_threads(options.threads)
    verdict = gate(out / "student" / "student.pt", serving, data, pose_net, options.gate_margin,
                   config.photo.ssim_weight, load_section("floor", FloorConfig, out / OVERLAY_FILE))
    with atomic_path(out / GATE_FILE) as tmp:
        tmp.write_text(json.dumps(verdict, indent=2))
    return verdict
