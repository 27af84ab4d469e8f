"""`lumde simulate`: a camera moving through a simulated indoor world (a robot driving, or
hand-held), written as a rosbag2 (MCAP or sqlite3) with rosbags, with exact ground-truth depth.

Seeds: scenes, camera, light and motion are drawn from the seed, so recordings with different
seeds never share a scene. Seeds below split.eval_seed_start (config/sim.yaml) are for training
and draw only training layouts, objects and texture families; the others only evaluation ones.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from lumde_ros.errors import BagError
from lumde_ros.geometry import (OPTICAL_FROM_LINK_RPY, Intrinsics, matrix_quaternion,
                                pose_matrix, quaternion_from_rpy)
from lumde_ros.sim import classic
from lumde_ros.sim.motion import MOTIONS, Clearance, drive, handheld
from lumde_ros.sim.scene import SceneRenderer, camera_intrinsics
from lumde_ros.sim.world import load_sim_config, random_world, split_name, uniform

EVAL_SEED_START = load_sim_config()["split"]["eval_seed_start"]
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
TOPICS = {"image": "/camera/image_raw", "camera_info": "/camera/camera_info",
          "depth": "/camera/depth/ground_truth", "odom": "/odom", "tf": "/tf",
          "tf_static": "/tf_static"}
FRAMES = {"odom": "odom", "base": "base_link", "link": "camera_link",
          "optical": "camera_optical_frame"}
# The recording's clock starts here (a fixed epoch keeps bags byte-for-byte reproducible).
START_NS = 1_700_000_000 * 10**9
# Renderer clip planes (metres): nearer than any camera-to-surface distance, beyond any room.
NEAR_M, FAR_M = 0.05, 60.0
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
# varied: drawn from config/sim.yaml; classic: the scenes the shipped weights were trained on.
WORLDS = ("varied", "classic")


@dataclass(frozen=True)
class SimulateOptions:
    """What `lumde simulate` renders. None: drawn from the seed (config/sim.yaml)."""

    out: Path
    seed: int = 0
    frames: int = 300
    width: int | None = None
    height: int | None = None
    hfov_deg: float | None = None
    rate_hz: float = 10.0
    world: str = "varied"
    layout: str | None = None
    motion: str = "drive"
    visit: int = 0
    odometry: bool = True
    storage: str = "mcap"


@dataclass(frozen=True)
class Camera:
    """The camera a recording draws: image size, field of view, mounting and sensor."""

    width: int
    height: int
    hfov_deg: float
    base_from_link: np.ndarray
    noise_sigma: float
    blur_sigma: float
    exposure_step: float


def _camera(rng: np.random.Generator, options: SimulateOptions, config: dict[str, Any]) -> Camera:
    """Size and field of view (unless given), mounting (height, pitch, roll on the robot;
    none when hand-held: the hand moves the camera) and sensor noise."""
    c = config["camera"]
    width, height = c["sizes"][int(rng.integers(len(c["sizes"])))]
    hfov = uniform(rng, c["hfov_deg"])
    mount = (uniform(rng, c["height_m"]), math.radians(uniform(rng, c["pitch_deg"])),
             math.radians(uniform(rng, c["roll_deg"])))
    if options.motion == "handheld":
        link = np.eye(4)
    else:
        link = pose_matrix(np.array([0.1, 0.0, mount[0]]),
                           quaternion_from_rpy(mount[2], -mount[1], 0.0))
    return Camera(options.width or width, options.height or height, options.hfov_deg or hfov,
                  link, uniform(rng, c["noise_sigma"]), uniform(rng, c["blur_sigma"]),
                  c["exposure_step"])


def _sensor(rgb: np.ndarray, camera: Camera, gain: float, rng: np.random.Generator) -> np.ndarray:
    """What a real sensor adds to a perfect rendering: exposure, blur and noise."""
    image = rgb.astype(np.float32) * gain
    if camera.blur_sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), camera.blur_sigma)
    image += camera.noise_sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _msg(name: str, **fields):
    return TYPESTORE.types[name](**fields)


def _header(stamp_ns: int, frame_id: str):
    time = _msg("builtin_interfaces/msg/Time", sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return _msg("std_msgs/msg/Header", stamp=time, frame_id=frame_id)


def _transform(stamp_ns: int, parent: str, child: str, matrix: np.ndarray):
    t, q = matrix[:3, 3], matrix_quaternion(matrix)
    transform = _msg("geometry_msgs/msg/Transform",
                     translation=_msg("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                     rotation=_msg("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2],
                                   w=q[3]))
    return _msg("geometry_msgs/msg/TransformStamped", header=_header(stamp_ns, parent),
                child_frame_id=child, transform=transform)


def _image(stamp_ns: int, frame: str, pixels: np.ndarray, encoding: str):
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels).view(np.uint8).reshape(-1)
    return _msg("sensor_msgs/msg/Image", header=_header(stamp_ns, frame), height=height,
                width=width, encoding=encoding, is_bigendian=int(sys.byteorder == "big"),
                step=data.size // height, data=data)


def _camera_info(stamp_ns: int, frame: str, i: Intrinsics):
    roi = _msg("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0,
               do_rectify=False)
    return _msg("sensor_msgs/msg/CameraInfo", header=_header(stamp_ns, frame), height=i.height,
                width=i.width, distortion_model="plumb_bob", d=np.zeros(5),
                k=np.array([i.fx, 0, i.cx, 0, i.fy, i.cy, 0, 0, 1.0]),
                r=np.eye(3).reshape(-1),
                p=np.array([i.fx, 0, i.cx, 0, 0, i.fy, i.cy, 0, 0, 0, 1.0, 0]),
                binning_x=0, binning_y=0, roi=roi)


def _odometry(stamp_ns: int, odom_from_base: np.ndarray, linear: tuple[float, ...],
              angular: tuple[float, ...]):
    t, q = odom_from_base[:3, 3], matrix_quaternion(odom_from_base)
    vector = "geometry_msgs/msg/Vector3"
    pose = _msg("geometry_msgs/msg/Pose",
                position=_msg("geometry_msgs/msg/Point", x=t[0], y=t[1], z=t[2]),
                orientation=_msg("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))
    twist = _msg("geometry_msgs/msg/Twist", linear=_msg(vector, x=linear[0], y=linear[1],
                                                        z=linear[2]),
                 angular=_msg(vector, x=angular[0], y=angular[1], z=angular[2]))
    return _msg("nav_msgs/msg/Odometry", header=_header(stamp_ns, FRAMES["odom"]),
                child_frame_id=FRAMES["base"],
                pose=_msg("geometry_msgs/msg/PoseWithCovariance", pose=pose,
                          covariance=np.zeros(36)),
                twist=_msg("geometry_msgs/msg/TwistWithCovariance", twist=twist,
                           covariance=np.zeros(36)))


def _check(options: SimulateOptions, config: dict[str, Any]) -> str:
    """The seed's split, after refusing options that cannot be honoured."""
    split = split_name(options.seed, config)
    if options.world not in WORLDS:
        raise BagError(f"world '{options.world}' is not one of {', '.join(WORLDS)}")
    layouts = config["split"][split]["layouts"] if options.world == "varied" else \
        list(classic.LAYOUTS)
    if options.world == "classic" and options.motion != "drive":
        raise BagError("classic worlds are driven only: use --world varied for "
                       f"--motion {options.motion}")
    if options.layout is not None and options.layout not in layouts:
        raise BagError(f"layout '{options.layout}' is not a {split} layout: seed "
                       f"{options.seed} may use {', '.join(layouts)} (seeds from "
                       f"{EVAL_SEED_START} on are evaluation scenes)")
    if options.motion not in MOTIONS:
        raise BagError(f"motion '{options.motion}' is not one of {', '.join(MOTIONS)}")
    if options.storage not in STORAGES:
        raise BagError(f"storage '{options.storage}' is not one of {', '.join(STORAGES)}")
    if options.out.exists():
        raise BagError(f"{options.out} already exists; choose a new --out (bags are never "
                       "overwritten)")
    return split


def _visit(rng: np.random.Generator, options: SimulateOptions,
           stream: int) -> np.random.Generator:
    """The generator of the seed's `stream` (2: motion, 1: sensor noise) for visit
    `options.visit`: `rng` itself on the first visit (0), so a seed's recording stays what it
    was, and a generator of its own for every later one."""
    return rng if options.visit == 0 else np.random.default_rng(
        [options.seed, stream, options.visit])


def simulate(options: SimulateOptions, progress: bool = True) -> dict[str, object]:
    """Render the recording and write it; returns a summary. Refuses to overwrite."""
    config = load_sim_config()
    split = _check(options, config)
    rng = np.random.default_rng(options.seed)
    props: list[tuple] = []
    if options.world == "classic":
        world, props, path = classic.classic_world(rng, options.layout or "room")
        camera = Camera(options.width or classic.WIDTH, options.height or classic.HEIGHT,
                        options.hfov_deg or classic.HFOV_DEG, classic.classic_mount(rng),
                        0.0, 0.0, 0.0)
        samples = classic.classic_motion(_visit(rng, options, 2), path, options.frames,
                                         options.rate_hz)
    else:
        if options.layout is not None:   # the seed still decides everything else
            config = {**config, "split": {**config["split"], split: {
                **config["split"][split], "layouts": [options.layout]}}}
        world = random_world(rng, split, config)
        camera = _camera(rng, options, config)
        move = drive if options.motion == "drive" else handheld
        samples = move(_visit(rng, options, 2), Clearance(world.occupancy()), options.frames,
                       options.rate_hz, config["motion"])
    sensor_rng = _visit(np.random.default_rng([options.seed, 1]), options, 1)
    intrinsics = camera_intrinsics(camera.width, camera.height, camera.hfov_deg)
    optical = pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    renderer = SceneRenderer(world.parts, world.light, tuple(props))
    try:
        with Writer(options.out, version=9, storage_plugin=STORAGES[options.storage]) as writer:
            kinds = [("image", "sensor_msgs/msg/Image"),
                     ("camera_info", "sensor_msgs/msg/CameraInfo"),
                     ("depth", "sensor_msgs/msg/Image"), ("tf_static", "tf2_msgs/msg/TFMessage")]
            if options.odometry:
                kinds += [("odom", "nav_msgs/msg/Odometry"), ("tf", "tf2_msgs/msg/TFMessage")]
            conns = {key: writer.add_connection(TOPICS[key], kind, typestore=TYPESTORE)
                     for key, kind in kinds}

            def write(key: str, stamp_ns: int, msg) -> None:
                writer.write(conns[key], stamp_ns,
                             TYPESTORE.serialize_cdr(msg, conns[key].msgtype))

            static = [_transform(START_NS, FRAMES["base"], FRAMES["link"], camera.base_from_link),
                      _transform(START_NS, FRAMES["link"], FRAMES["optical"], optical)]
            write("tf_static", START_NS, _msg("tf2_msgs/msg/TFMessage", transforms=static))
            odom_from_world = np.linalg.inv(samples[0].world_from_base)
            gain = 1.0
            for k, sample in enumerate(samples):
                stamp = START_NS + round(k * 1e9 / options.rate_hz)
                rgb, depth = renderer.render(
                    intrinsics, sample.world_from_base @ camera.base_from_link @ optical,
                    NEAR_M, FAR_M)
                gain = float(np.clip(gain + sensor_rng.normal(0, camera.exposure_step),
                                     *config["camera"]["exposure_range"]))
                rgb = _sensor(rgb, camera, gain, sensor_rng)
                if options.odometry:
                    odom_from_base = odom_from_world @ sample.world_from_base
                    write("odom", stamp, _odometry(stamp, odom_from_base, sample.linear,
                                                   sample.angular))
                    write("tf", stamp, _msg("tf2_msgs/msg/TFMessage", transforms=[_transform(
                        stamp, FRAMES["odom"], FRAMES["base"], odom_from_base)]))
                write("camera_info", stamp, _camera_info(stamp, FRAMES["optical"], intrinsics))
                write("image", stamp, _image(stamp, FRAMES["optical"], rgb, "rgb8"))
                write("depth", stamp, _image(stamp, FRAMES["optical"], depth, "32FC1"))
                if progress:
                    _progress(k + 1, options.frames)
    finally:
        renderer.close()
    return {"bag": str(options.out), "seed": options.seed, "split": split,
            "world": options.world, "layout": world.layout, "objects": sorted(set(world.objects)),
            "texture_families": list(world.families), "motion": options.motion,
            "visit": options.visit, "odometry": options.odometry, "frames": options.frames,
            "width": camera.width, "height": camera.height,
            "hfov_deg": round(camera.hfov_deg, 2),
            "camera_height_m": round(float(
                (samples[0].world_from_base @ camera.base_from_link)[2, 3]), 3),
            "size_mb": round(sum(f.stat().st_size for f in options.out.iterdir()) / 1e6, 2)}


def _progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\rsimulate [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
