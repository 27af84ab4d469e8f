"""Metres for a run on the learned route: its depth is right only up to scale, but where tf
places the camera over the floor (odometry, or the camera's /tf_static chain down to the
robot's base) the finished model's floor, fitted in its own depth, gives the scale. The
checkpoint is marked metric only when that scale holds over the run's recordings."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lumde_ros.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lumde_ros.data.recording import Recording
from lumde_ros.errors import ModelLoadError
from lumde_ros.floor import FloorCalibration, FloorConfig, calibrate
from lumde_ros.geometry import Intrinsics
from lumde_ros.inference import DepthScale, Predictor
from lumde_ros.training.config import DataConfig

SOURCE = "camera_height"  # Checkpoint.scale_source of a model scaled here


def _frames(bags: Sequence[str | Path], data: DataConfig, count: int
            ) -> Iterator[tuple[np.ndarray, Intrinsics, np.ndarray]]:
    """(rgb, intrinsics, floor_from_camera) of about `count` frames spread evenly over the
    recordings' frames that tf places over the floor."""
    topics = {"image_topic": data.image_topic or None,
              "camera_info_topic": data.camera_info_topic or None}
    total = 0
    for bag in bags:
        with Recording(bag, ground_truth=False, **topics) as recording:
            total += recording.image_messages
    stride, k = max(1, total // count), 0
    for bag in bags:
        with Recording(bag, ground_truth=False, **topics) as recording:
            for frame in recording.frames():
                k += 1
                if k % stride == 0 and frame.floor_from_camera is not None:
                    yield frame.rgb, frame.intrinsics, frame.floor_from_camera


def camera_height_scale(checkpoint: Checkpoint, bags: Sequence[str | Path], data: DataConfig,
                        floor: FloorConfig, threads: int = 0) -> FloorCalibration:
    """The floor's scale of `checkpoint`'s depth (network units, through the predictor the
    node serves with) over `floor.calibration_frames` frames of `bags`."""
    predictor = Predictor(checkpoint, threads=threads)
    unit = DepthScale(1.0, False)
    frames = ((predictor.predict(rgb, unit, (rgb.shape[1], rgb.shape[0]),
                                 intrinsics=intrinsics, floor_from_camera=pose), intrinsics, pose)
              for rgb, intrinsics, pose in _frames(bags, data, floor.calibration_frames))
    return calibrate(frames, floor)


def scale_from_camera_height(path: Path, bags: Sequence[str | Path], data: DataConfig,
                             floor: FloorConfig, threads: int = 0) -> dict[str, Any]:
    """Rewrite the relative checkpoint at `path` as metric when `camera_height_scale` finds
    its scale, recording how in its provenance ("scale"), or why not; returns what was found
    (with the reason when the checkpoint stays relative)."""
    try:
        checkpoint = load_checkpoint(path)
        found = camera_height_scale(checkpoint, bags, data, floor, threads)
    except ModelLoadError as err:  # e.g. a diverged run: the gate, not this, turns it away
        return FloorCalibration(None, 0, 0, math.nan, f"the model cannot serve: {err}").as_dict()
    # Either way the checkpoint says so: metric with how, or relative with why (a student
    # distilled from it inherits this, and the fine-tune's gate quotes the reason).
    if found.scale is not None:
        scale = {"source": SOURCE, **found.as_dict()}
        checkpoint = dataclasses.replace(checkpoint, metric=True, depth_scale=found.scale)
    else:
        scale = found.as_dict()  # no "source": the checkpoint stays relative
    save_checkpoint(dataclasses.replace(
        checkpoint, provenance=dict(checkpoint.provenance, scale=scale)), path)
    return found.as_dict()
