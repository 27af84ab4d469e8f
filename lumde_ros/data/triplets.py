"""Training data: frame triplets from recordings, held in memory at the network's input size,
with the camera motion between frames from odometry where the recording has it.

Ground-truth depth, when a recording has it, is never read here: it exists for evaluation only.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from lumde_ros.data.hints import HintConfig, cached_hints
from lumde_ros.data.image_motion import (ImageMotion, ImageMotionConfig, is_keyframe,
                                         keyframe_poses, motion_of_tracks, tracked_points)
from lumde_ros.data.recording import Recording
from lumde_ros.data.sampling import triplets
from lumde_ros.data.transforms import ODOM_FRAME
from lumde_ros.errors import TrainingError
from lumde_ros.geometry import floor_prior as floor_prior_of
from lumde_ros.inference import resize_image

# How view synthesis gets the camera motion: from odometry (metric depth), from the pose
# network (relative depth), or odometry when every recording has it.
POSE_ROUTES = ("auto", "odometry", "learned")


@dataclass(frozen=True)
class Batch:
    """One training batch. target (B, 3, H, W) and sources (two of them) RGB in [0, 1];
    k (B, 3, 3) at the batch's size; motions (B, 2, 4, 4) target -> each source from odometry,
    or None on the learned-pose route; hints (B, 1, H, W) the targets' depth hints in metres
    (learned route: in units of the frame's median depth; 0: none there), or None when the
    run uses none; frames (B,) which frame of the data each target is and flipped (B,)
    whether it was mirrored (what per-frame caches look up), None for a batch not drawn from
    TripletData. image_motions (B, 2, 4, 4) target -> each source as the images alone show
    it, translation in units of the scene's median depth (learned route; see
    data/image_motion.py), valid where image_motion_known (B, 2); None without. prior
    (B, 2, H, W): the targets' floor prior (geometry.floor_prior), or None when the run uses
    none."""

    target: torch.Tensor
    sources: list[torch.Tensor]
    k: torch.Tensor
    motions: torch.Tensor | None
    hints: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    flipped: torch.Tensor | None = None
    image_motions: torch.Tensor | None = None
    image_motion_known: torch.Tensor | None = None
    prior: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(self.target.to(device), [s.to(device) for s in self.sources],
                     self.k.to(device), _to(self.motions, device), _to(self.hints, device),
                     self.frames, self.flipped, _to(self.image_motions, device),
                     _to(self.image_motion_known, device), _to(self.prior, device))


def _to(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(device)


@dataclass(frozen=True)
class TripletData:
    """Frames (N, 3, H, W) uint8, their camera matrices (N, 3, 3) at that size, camera poses
    in the odometry frame (N, 4, 4) or None, and index triplets (M, 3) (previous, target, next).
    `recordings`: per recording, its path, frames kept and triplets (for logs and provenance).
    `why_relative`: without poses, which recordings lacked usable odometry and why.
    `hints`: depth hints (N, 1, H, W) in metres (without poses: in units of each frame's
    median depth), 0 where none (data/hints.py), or None.
    `image_motions`: per triplet, target -> previous and next as the images show them
    (M, 2, 4, 4), translation in units of the scene's median depth, valid where
    `image_motion_known` (M, 2); None on the odometry route or when not asked for.
    `floors`: each frame's pose over the floor (N, 4, 4; RecordedFrame.floor_from_camera),
    NaN where tf does not give it: what the floor prior is made of."""

    images: torch.Tensor
    k: torch.Tensor
    poses: torch.Tensor | None
    triplets: torch.Tensor
    recordings: list[dict[str, object]]
    why_relative: str = ""
    hints: torch.Tensor | None = None
    image_motions: torch.Tensor | None = None
    image_motion_known: torch.Tensor | None = None
    floors: torch.Tensor | None = None

    @property
    def metric(self) -> bool:
        """True when the camera motion comes from odometry, so depth is learned in metres."""
        return self.poses is not None

    def __len__(self) -> int:
        return len(self.triplets)

    def batch(self, indices: Sequence[int], generator: torch.Generator, flip: bool,
              color_jitter: float, channel_shuffle: bool = False,
              floor_prior: float | None = None) -> Batch:
        """The triplets at `indices`, augmented with draws from `generator`: a horizontal flip
        (image, camera matrix, motion, hint and prior mirrored together), one brightness /
        contrast / saturation change and, with `channel_shuffle`, one order of the colour
        channels, each shared by a triplet's three frames, so photometric consistency holds.
        `floor_prior`: the targets' floor prior comes along, left out (unknown) for this
        share of them, so the network also learns to do without; None: no prior."""
        picked = torch.as_tensor(list(indices), dtype=torch.long)
        rows = self.triplets[picked]
        frames = self.images[rows].float() / 255  # (B, 3, C, H, W)
        k = self.k[rows[:, 1]].clone()
        prior = None if floor_prior is None else floor_prior_of(
            k, self.floors[rows[:, 1]], *frames.shape[-2:])
        motions = None if self.poses is None else camera_motions(self.poses, rows)
        hints = None if self.hints is None else self.hints[rows[:, 1]].float()
        seen, known = (None, None) if self.image_motions is None else (
            self.image_motions[picked].clone(), self.image_motion_known[picked])
        flipped = torch.zeros(len(rows), dtype=torch.bool)
        if flip:
            flipped = torch.rand(len(rows), generator=generator) < 0.5
            frames[flipped], k[flipped], moved = mirrored(
                frames[flipped], k[flipped], None if motions is None else motions[flipped])
            if motions is not None:
                motions[flipped] = moved
            if hints is not None:
                hints[flipped] = hints[flipped].flip(-1)
            if prior is not None:
                prior[flipped] = prior[flipped].flip(-1)
            if seen is not None:
                seen[flipped] = mirrored_motions(seen[flipped])
        if color_jitter > 0:
            frames = _jitter(frames, generator, color_jitter)
        if channel_shuffle:
            frames = _shuffle_channels(frames, generator)
        if prior is not None and floor_prior > 0:
            prior[torch.rand(len(rows), generator=generator) < floor_prior] = 0
        return Batch(frames[:, 1], [frames[:, 0], frames[:, 2]], k,
                     None if motions is None else motions.float(), hints, rows[:, 1], flipped,
                     seen, known, prior)


def camera_motions(poses: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Transforms (B, 2, 4, 4) of points from each triplet's target camera frame to its
    previous and next camera's (what geometry.warp takes), from camera poses in the odometry
    frame (N, 4, 4) and index triplets `rows` (B, 3)."""
    target = poses[rows[:, 1]]
    return torch.stack([torch.linalg.inv(poses[rows[:, j]]) @ target for j in (0, 2)], dim=1)


def mirrored(images: torch.Tensor, k: torch.Tensor, motions: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The left-right mirrored views (images (..., H, W), camera matrices (B, 3, 3), motions
    (B, n, 4, 4) or None): a mirrored image is what a camera sees of the mirrored world, so
    the principal point reflects and each motion is conjugated by the mirror x -> -x."""
    k = k.clone()
    k[:, 0, 2] = (images.shape[-1] - 1) - k[:, 0, 2]
    return images.flip(-1), k, None if motions is None else mirrored_motions(motions)


def mirrored_motions(motions: torch.Tensor) -> torch.Tensor:
    """Motions (..., 4, 4) as seen in the mirrored world: conjugated by the mirror x -> -x."""
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=motions.dtype))
    return mirror @ motions @ mirror


def _jitter(frames: torch.Tensor, generator: torch.Generator, amount: float) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 - amount, 1 + amount], one set per
    triplet (frames (B, 3, C, H, W))."""
    b = frames.shape[0]
    brightness, contrast, saturation = (
        1 + amount * (2 * torch.rand(3, b, 1, 1, 1, 1, generator=generator) - 1))
    frames = frames * brightness
    mean = frames.mean(dim=(1, 2, 3, 4), keepdim=True)  # one contrast pivot per triplet
    frames = (frames - mean) * contrast + mean
    gray = frames.mean(dim=2, keepdim=True)
    return ((frames - gray) * saturation + gray).clamp(0, 1)


_CHANNEL_ORDERS = torch.tensor(list(itertools.permutations(range(3))))


def _shuffle_channels(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The colour channels of each triplet (frames (B, 3, C, H, W)) in one of the six
    orders: a surface's hue then tells the network nothing about what it is or how far."""
    order = _CHANNEL_ORDERS[torch.randint(len(_CHANNEL_ORDERS), (frames.shape[0],),
                                          generator=generator)]
    return torch.gather(frames, 2, order[:, None, :, None, None].expand(frames.shape))


def load_triplets(bags: Sequence[str | Path], width: int, height: int, pose_route: str,
                  min_baseline_m: float, holdout: float = 0.0, held_out: bool = False,
                  image_topic: str = "", camera_info_topic: str = "",
                  hints: HintConfig | None = None, hint_cache: Path | None = None,
                  say: Callable[[str], None] = lambda line: None,
                  motion: ImageMotionConfig | None = None) -> TripletData:
    """Read every recording, resize its frames to `width` x `height` (intrinsics scaled with
    them) and sample triplets. With odometry only frames the robot moved at least
    `min_baseline_m` between are used. The last `holdout` fraction of each recording's usable
    frames is kept out of training: `held_out` returns those frames' triplets instead (what
    a new model is validated on), so the two never share a frame. With `hints`, each target
    gets its depth hints (kept in folder `hint_cache`; `say` reports progress): through
    odometry, or on the learned route with `motion` through the keyframes' image motion.
    On the learned route and with `motion`, only keyframes are used, each once the image has
    moved `motion.keyframe_parallax` from the one before (the learned route's `min_baseline_m`),
    and each triplet gets the camera motion its images show (data/image_motion.py), found
    between consecutive keyframes at the recording's own resolution, where tracking is best.
    Raises TrainingError when a recording cannot serve the chosen `pose_route` or yields no
    triplet."""
    if pose_route not in POSE_ROUTES:
        raise TrainingError(f"pose route '{pose_route}' is not one of {', '.join(POSE_ROUTES)}")
    if not bags:
        raise TrainingError("no recording given; pass at least one --bag")
    loaded = [_read(Path(bag), width, height, image_topic, camera_info_topic,
                    motion if pose_route != "odometry" else None, pose_route == "learned")
              for bag in bags]
    without = [(bag, why) for bag, (_, _, _, why, _, _, _) in zip(bags, loaded) if why]
    if pose_route == "odometry" and without:
        raise TrainingError("pose route 'odometry' needs odometry and the camera mounting in "
                            "every recording: " + "; ".join(f"{b}: {w}" for b, w in without))
    use_odometry = pose_route == "odometry" or (pose_route == "auto" and not without)
    images, ks, poses, found_hints, rows, recordings, offset = [], [], [], [], [], [], 0
    seen, known, floors = [], [], []
    for bag, (rgb, k, pose, _, notes, steps, floor) in zip(bags, loaded):
        for warning in notes.get("camera_warnings", []):
            say(f"warning: {bag}: {warning}")
        keep = [i for i in range(len(rgb)) if pose[i] is not None] if use_odometry \
            else sorted(steps) if steps is not None else list(range(len(rgb)))
        cut = len(keep) - round(holdout * len(keep))
        keep = keep[cut:] if held_out else keep[:cut]
        found = triplets([_Frame(pose[i] if use_odometry else None) for i in keep],
                         min_baseline_m)
        if not found:
            apart = f" each {min_baseline_m} m apart" if use_odometry else ""
            if held_out:
                why = (f"the held-out last {holdout:.0%} of its usable frames ({len(keep)}) "
                       f"give no triplet of three frames{apart}: record longer or raise "
                       "--holdout" + (" (and the robot must move)" if use_odometry else ""))
            else:
                why = (f"{len(keep)} usable frames give no training triplet; a recording needs "
                       f"at least three frames{apart}"
                       + (" (the robot must move)" if use_odometry else ""))
            raise TrainingError(f"{bag}: {why}")
        images += [rgb[i] for i in keep]
        ks += [k[i] for i in keep]
        floors += [np.full((4, 4), np.nan) if floor[i] is None else floor[i] for i in keep]
        poses += [pose[i] for i in keep] if use_odometry else []
        if hints is not None and (use_odometry or steps is not None):
            identity = {"bag": str(Path(bag).resolve()), "bytes": _size_on_disk(Path(bag)),
                        "frames": keep}
            frames = torch.from_numpy(np.stack(images[offset:])).permute(0, 3, 1, 2)
            matrices = torch.from_numpy(np.stack(ks[offset:])).float()
            targets = sorted({b for _, b, _ in found})
            found_hints.append(
                cached_hints(hint_cache, identity, frames, matrices,
                             torch.from_numpy(np.stack(poses[offset:])), hints, targets, say)
                if use_odometry else _relative_hints(
                    [None] + [steps[i] for i in keep[1:]], hint_cache, identity, frames,
                    matrices, hints.in_median_depths(), targets, say))
        rows += [(a + offset, b + offset, c + offset) for a, b, c in found]
        if motion is not None and not use_odometry:
            motions = [_triplet_motions(steps or {}, keep[b], keep[c]) for _, b, c in found]
            seen += [m for m, _ in motions]
            known += [ok for _, ok in motions]
            notes = {**notes, "image_motion_known": round(float(np.mean(
                [ok for _, ok in motions])), 3)}
        recordings.append({"bag": str(bag), "frames": len(keep), "triplets": len(found),
                           **notes})
        offset += len(keep)
    return TripletData(
        images=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        k=torch.from_numpy(np.stack(ks)).float(),
        poses=torch.from_numpy(np.stack(poses)) if use_odometry else None,
        triplets=torch.tensor(rows, dtype=torch.long), recordings=recordings,
        why_relative="" if use_odometry else "the configuration sets pose: learned"
        if pose_route == "learned" else "; ".join(f"{b}: {w}" for b, w in without),
        hints=torch.cat(found_hints) if found_hints else None,
        image_motions=torch.from_numpy(np.stack(seen)).float() if seen else None,
        image_motion_known=torch.tensor(known) if seen else None,
        floors=torch.from_numpy(np.stack(floors)))


def _relative_hints(steps: list[ImageMotion | None], cache: Path | None,
                    identity: dict[str, object], images: torch.Tensor, k: torch.Tensor,
                    config: HintConfig, targets: list[int],
                    say: Callable[[str], None]) -> torch.Tensor:
    """Hints (N, 1, H, W) of consecutive keyframes without odometry, in units of each one's
    median depth: the sweep runs through the keyframes' chained image motion (`steps[i]`:
    keyframe i-1 -> i), one chain at a time since chains share no unit."""
    poses, scales, starts = keyframe_poses(steps)
    hints = []
    for start, end in zip(starts, [*starts[1:], len(steps)]):
        wanted = [t - start for t in targets if start <= t < end]
        chain = cached_hints(cache, {**identity, "chain": start}, images[start:end],
                             k[start:end], torch.from_numpy(poses[start:end]), config, wanted,
                             say) if wanted else torch.zeros(end - start, 1, *images.shape[-2:])
        hints.append(chain / torch.from_numpy(scales[start:end]).float().view(-1, 1, 1, 1))
    return torch.cat(hints)


def _triplet_motions(steps: dict[int, ImageMotion | None], target: int,
                     following: int) -> tuple[np.ndarray, list[bool]]:
    """Target -> previous and target -> next (2, 4, 4) from the motions between consecutive
    keyframes (`steps[i]`: the keyframe before i -> keyframe i), translations in units of the
    scene's median depth, and which two are known."""
    back, ahead = steps.get(target), steps.get(following)
    return (np.stack([np.eye(4) if back is None else back.matrix(inverse=True),
                      np.eye(4) if ahead is None else ahead.matrix()]),
            [back is not None, ahead is not None])


def _size_on_disk(bag: Path) -> int:
    """Bytes of a recording (a bag folder or a single file): part of what names its kept
    hints, so a recording rewritten in place gets new ones."""
    files = [bag] if bag.is_file() else [f for f in bag.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files)


@dataclass(frozen=True)
class _Frame:
    """The pose alone, as sampling.triplets reads it (None: sample direct neighbours)."""

    odom_from_camera: np.ndarray | None


def _read(bag: Path, width: int, height: int, image_topic: str, camera_info_topic: str,
          motion: ImageMotionConfig | None = None, motion_with_odometry: bool = False
          ) -> tuple[list, list, list, str, dict[str, object], list | None, list]:
    """Resized RGB frames, their camera matrices and poses (None where odometry does not reach
    the frame), why the recording has no usable odometry ('' when it has), what the run
    should remember of how it was read (messages skipped as damaged per topic, the repaired
    copy a dead recorder's recording was read from), and with `motion` the keyframes (see
    load_triplets), each with the image motion from the keyframe before (None: not found),
    for a recording without odometry or, with `motion_with_odometry`, any; and the frames'
    poses over the floor (None where tf does not give one). Topics '' are found in the
    recording."""
    rgb, k, pose, floor = [], [], [], []
    steps: dict[int, ImageMotion | None] | None = None
    with Recording(bag, image_topic or None, camera_info_topic or None,
                   ground_truth=False) as recording:
        key = None  # the last keyframe, gray
        first_ns = last_ns = 0
        for i, frame in enumerate(recording.frames()):
            # Without a pose for the first frame, odometry may give none at all (a /tf on
            # another clock): the images' own motion is found until a frame has one.
            if i == 0 and motion is not None and (motion_with_odometry
                                                  or frame.odom_from_camera is None):
                steps = {}
            elif steps is not None and not motion_with_odometry \
                    and frame.odom_from_camera is not None:
                steps = None  # odometry started late: the recording has it after all
            first_ns, last_ns = first_ns or frame.stamp_ns, frame.stamp_ns
            rgb.append(resize_image(frame.rgb, width, height))
            k.append(frame.intrinsics.resized(width, height).matrix())
            pose.append(frame.odom_from_camera)
            floor.append(frame.floor_from_camera)
            if steps is None:
                continue
            gray = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
            if key is None or key.shape != gray.shape:
                steps[i], key = None, gray
                continue
            tracks = tracked_points(key, gray, motion)
            found = motion_of_tracks(*tracks, frame.intrinsics.matrix(), motion)[0]
            if is_keyframe(len(tracks[0]), found, gray.shape[1], motion):
                steps[i], key = found, gray
        odom_topic, unusable = recording.odom_topic, recording.unusable_poses
        linked, span = recording.linked, recording.pose_span
        frames = (recording.camera_frame or "empty frame_id", recording.odom_child or "none")
        notes = {**recording.notes(),
                 **({"recovered": recording.recovered.as_dict()} if recording.recovered
                    else {})}
    if odom_topic is None:
        why = (f"no nav_msgs/msg/Odometry topic, and no frame named {ODOM_FRAME} (or "
               f"<namespace>/{ODOM_FRAME}, REP 105) in tf above the image's frame "
               f"({frames[0]})")
    elif all(p is None for p in pose) and unusable:
        why = (f"odometry on {odom_topic} has {unusable} poses that are not finite or have a "
               "zero quaternion, and none that reaches the camera")
    elif all(p is None for p in pose) and not linked:
        why = (f"odometry on {odom_topic} does not reach the camera: tf has no chain "
               f"from the image's frame ({frames[0]}) to the odometry's child frame "
               f"({frames[1]})")
    elif all(p is None for p in pose):
        poses = (f"from {span[0] / 1e9:.1f} s to {span[1] / 1e9:.1f} s"
                 if span and span[0] <= span[1] else "at no time")
        why = (f"odometry on {odom_topic} with tf from the image's frame ({frames[0]}) to "
               f"{frames[1]} gives poses {poses}, the images are stamped from "
               f"{first_ns / 1e9:.1f} s to {last_ns / 1e9:.1f} s: none falls within them (one "
               "stamped in simulated time and the other in wall time?)")
    else:
        why = ""
    return rgb, k, pose, why, notes, steps, floor
