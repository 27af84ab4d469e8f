"""`lumde simulate`: a ground robot's camera driving through a simulated indoor scene, written
as a rosbag2 (MCAP or sqlite3) with rosbags, with exact ground-truth depth.

Seeds: scenes are drawn from the seed, so recordings with different seeds never share a scene.
By convention seeds below EVAL_SEED_START are for training and seeds from it on for evaluation.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from lumde_ros.errors import BagError
from lumde_ros.geometry import (OPTICAL_FROM_LINK_RPY, Intrinsics, matrix_quaternion,
                                pose_matrix, quaternion_from_rpy)
from lumde_ros.sim.scene import KINDS, SceneRenderer, camera_intrinsics, random_scene
from lumde_ros.sim.textures import prepare_textures

EVAL_SEED_START = 1000
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


@dataclass(frozen=True)
class SimulateOptions:
    """What `lumde simulate` renders."""

    out: Path
    seed: int = 0
    frames: int = 300
    width: int = 320
    height: int = 240
    hfov_deg: float = 70.0
    rate_hz: float = 10.0
    kind: str = "room"
    storage: str = "mcap"


def _camera_mount(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """base_link -> camera_link (height, forward offset, downward pitch) and
    camera_link -> camera_optical_frame."""
    height, pitch = rng.uniform(0.45, 1.1), rng.uniform(0.0, math.radians(12))
    link = pose_matrix(np.array([0.1, 0.0, height]), quaternion_from_rpy(0.0, pitch, 0.0))
    optical = pose_matrix(np.zeros(3), quaternion_from_rpy(*OPTICAL_FROM_LINK_RPY))
    return link, optical


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


def _odometry(stamp_ns: int, odom_from_base: np.ndarray, speed: float, yaw_rate: float):
    t, q = odom_from_base[:3, 3], matrix_quaternion(odom_from_base)
    vector = "geometry_msgs/msg/Vector3"
    pose = _msg("geometry_msgs/msg/Pose",
                position=_msg("geometry_msgs/msg/Point", x=t[0], y=t[1], z=t[2]),
                orientation=_msg("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))
    twist = _msg("geometry_msgs/msg/Twist", linear=_msg(vector, x=speed, y=0.0, z=0.0),
                 angular=_msg(vector, x=0.0, y=0.0, z=yaw_rate))
    return _msg("nav_msgs/msg/Odometry", header=_header(stamp_ns, FRAMES["odom"]),
                child_frame_id=FRAMES["base"],
                pose=_msg("geometry_msgs/msg/PoseWithCovariance", pose=pose,
                          covariance=np.zeros(36)),
                twist=_msg("geometry_msgs/msg/TwistWithCovariance", twist=twist,
                           covariance=np.zeros(36)))


def simulate(options: SimulateOptions, progress: bool = True) -> dict[str, object]:
    """Render the recording and write it; returns a summary. Refuses to overwrite."""
    if options.kind not in KINDS:
        raise BagError(f"scene kind '{options.kind}' is not one of {', '.join(KINDS)}")
    if options.storage not in STORAGES:
        raise BagError(f"storage '{options.storage}' is not one of {', '.join(STORAGES)}")
    if options.out.exists():
        raise BagError(f"{options.out} already exists; choose a new --out (bags are never "
                       "overwritten)")
    rng = np.random.default_rng(options.seed)
    roles, photos = prepare_textures()
    spec = random_scene(rng, options.kind, roles, photos)
    link, optical = _camera_mount(rng)
    speed = rng.uniform(0.3, 1.0)
    start_s = rng.uniform(0.0, spec.path.perimeter)
    intrinsics = camera_intrinsics(options.width, options.height, options.hfov_deg)
    renderer = SceneRenderer(spec)
    try:
        with Writer(options.out, version=9, storage_plugin=STORAGES[options.storage]) as writer:
            conns = {key: writer.add_connection(TOPICS[key], kind, typestore=TYPESTORE)
                     for key, kind in (("image", "sensor_msgs/msg/Image"),
                                       ("camera_info", "sensor_msgs/msg/CameraInfo"),
                                       ("depth", "sensor_msgs/msg/Image"),
                                       ("odom", "nav_msgs/msg/Odometry"),
                                       ("tf", "tf2_msgs/msg/TFMessage"),
                                       ("tf_static", "tf2_msgs/msg/TFMessage"))}

            def write(key: str, stamp_ns: int, msg) -> None:
                writer.write(conns[key], stamp_ns,
                             TYPESTORE.serialize_cdr(msg, conns[key].msgtype))

            static = [_transform(START_NS, FRAMES["base"], FRAMES["link"], link),
                      _transform(START_NS, FRAMES["link"], FRAMES["optical"], optical)]
            write("tf_static", START_NS, _msg("tf2_msgs/msg/TFMessage", transforms=static))
            x0, y0, yaw0, _ = spec.path.pose(start_s)
            world_from_odom = pose_matrix(np.array([x0, y0, 0.0]),
                                          quaternion_from_rpy(0.0, 0.0, yaw0))
            odom_from_world = np.linalg.inv(world_from_odom)
            for k in range(options.frames):
                stamp = START_NS + round(k * 1e9 / options.rate_hz)
                x, y, yaw, curvature = spec.path.pose(start_s + speed * k / options.rate_hz)
                world_from_base = pose_matrix(np.array([x, y, 0.0]),
                                              quaternion_from_rpy(0.0, 0.0, yaw))
                odom_from_base = odom_from_world @ world_from_base
                rgb, depth = renderer.render(intrinsics, world_from_base @ link @ optical,
                                             NEAR_M, FAR_M)
                write("odom", stamp, _odometry(stamp, odom_from_base, speed, speed * curvature))
                write("tf", stamp, _msg("tf2_msgs/msg/TFMessage", transforms=[_transform(
                    stamp, FRAMES["odom"], FRAMES["base"], odom_from_base)]))
                write("camera_info", stamp, _camera_info(stamp, FRAMES["optical"], intrinsics))
                write("image", stamp, _image(stamp, FRAMES["optical"], rgb, "rgb8"))
                write("depth", stamp, _image(stamp, FRAMES["optical"], depth, "32FC1"))
                if progress:
                    _progress(k + 1, options.frames)
    finally:
        renderer.close()
    return {"bag": str(options.out), "seed": options.seed, "kind": options.kind,
            "frames": options.frames, "split": "evaluation" if options.seed >= EVAL_SEED_START
            else "training", "speed_mps": round(speed, 3),
            "size_mb": round(sum(f.stat().st_size for f in options.out.iterdir()) / 1e6, 2)}


def _progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\rsimulate [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
