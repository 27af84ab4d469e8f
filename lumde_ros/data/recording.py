"""Time-ordered camera frames from a rosbag2 (MCAP or sqlite3), read with rosbags: the RGB
image (raw or compressed), its intrinsics, ground-truth depth when recorded, and the camera's
pose in the odometry frame when the bag has odometry and the camera's mounting in tf. A
recording a dead recorder left unfinished is read through its repaired copy (data/repair.py)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from lumde_ros.errors import BagError, EncodingError, IntrinsicsError
from lumde_ros.data.repair import Recovery, recover, unfinished
from lumde_ros.geometry import Intrinsics, pose_matrix
from lumde_ros.ros.camera_info import camera_intrinsics, fit_to_image, unmodelled_distortion
from lumde_ros.ros.image import DEPTH_ENCODINGS, compressed_to_rgb, image_to_depth, image_to_rgb

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
TF_TYPE = "tf2_msgs/msg/TFMessage"
# Topics a depth estimator publishes: neither camera nor ground truth, whatever they hold.
DEPTH_OUTPUTS = ("depth/image", "depth/colored", "depth/camera_info")
# How a user names the topics when a recording holds several candidates.
TOPIC_SETTINGS = ("data.image_topic / data.camera_info_topic in a --config file (its teacher "
                  "and distill sections; for lumde finetune either one), or lumde eval's "
                  "--image-topic / --camera-info-topic")
# Recordings hold camera frames, not photographs of cities: anything larger is refused.
MAX_PIXELS = 1 << 24
# REP 120: the robot's base projected onto the floor. Without odometry, a camera's /tf_static
# chain up to here (or to its top) places it over the floor.
FOOTPRINT_FRAME = "base_footprint"


@dataclass(frozen=True)
class RecordedFrame:
    """One camera frame. stamp_ns: header stamp; rgb uint8 (H, W, 3); depth (H, W) metres or
    None; odom_from_camera: 4x4 pose of the optical frame in odom, or None; floor_from_camera:
    its pose in a frame whose z is up and whose origin lies on the floor (odom with odometry,
    REP 105; without, the frame at the top of the camera's /tf_static chain, or
    base_footprint on the way there, REP 120), or None: what places the camera over the
    floor for a metric scale from its height (floor.py)."""

    stamp_ns: int
    rgb: np.ndarray
    intrinsics: Intrinsics
    depth: np.ndarray | None
    odom_from_camera: np.ndarray | None
    floor_from_camera: np.ndarray | None = None


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _transform(t) -> np.ndarray:
    v, q = t.translation, t.rotation
    return pose_matrix(np.array([v.x, v.y, v.z]), np.array([q.x, q.y, q.z, q.w]))


class Recording:
    """A recording opened for reading; topics are chosen by name or found by type."""

    def __init__(self, path: str | Path, image_topic: str | None = None,
                 camera_info_topic: str | None = None, depth_topic: str | None = None,
                 ground_truth: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"recording {self.path} does not exist")
        # What a dead recorder left is read from its repaired copy (the original stays).
        self.recovered: Recovery | None = recover(self.path) if unfinished(self.path) else None
        source = self.recovered.path if self.recovered else self.path
        if source.is_dir() and not (source / "metadata.yaml").exists():
            files = sorted(source.glob("*.db3"))
            hint = f"; pass {files[0]} itself" if len(files) == 1 else ""
            raise BagError(f"{source} has no metadata.yaml (a bag directory needs one){hint}"
                           "; or restore it with ros2 bag reindex")
        try:
            # Standard message definitions for bags that carry none (sqlite3 bags before
            # Iron); a bag's own definitions take precedence.
            self._reader = AnyReader([source],
                                     default_typestore=get_typestore(Stores.ROS2_JAZZY))
            self._reader.open()
        except Exception as err:  # rosbags raises AnyReaderError and others for bad files
            raise BagError(f"cannot open {self.path} as a rosbag2 (corrupt, truncated or not a "
                           f"bag): {type(err).__name__}: {err}") from err
        self.topics = {c.topic: c.msgtype for c in self._reader.connections}
        self.damaged: dict[str, int] = {}  # messages skipped per topic: they did not deserialize
        self.unusable_poses = 0
        try:
            for topic in filter(None, (image_topic, camera_info_topic, depth_topic)):
                if topic not in self.topics:
                    raise BagError(self._missing(topic))
            # Images are told apart by content: a depth image is ground truth, whatever its
            # topic is called; a depth estimator's own outputs are neither.
            images = [t for t, k in sorted(self.topics.items())
                      if k in IMAGE_TYPES and not t.endswith(DEPTH_OUTPUTS)]
            depths = [t for t in images if self._holds_depth(t)]
            self.image_topic = image_topic or self._camera_stream(
                [t for t in images if t not in depths])
            self.camera_info_topic = camera_info_topic or self._camera_info()
        except BagError:
            self.close()
            raise
        # Training opens recordings with ground_truth=False: it is not even read. With
        # several depth streams the one nearest the camera (longest shared prefix) is taken.
        near = sorted(depths, key=lambda t: -len(os.path.commonprefix([t, self.image_topic])))
        self.depth_topic = None if not ground_truth else depth_topic or next(iter(near), None)
        # With several, frames() takes the one whose child frame /tf_static links to the camera.
        self._odom_topics = [t for t, k in sorted(self.topics.items()) if k == ODOMETRY_TYPE]
        self.odom_topic = next(iter(self._odom_topics), None)
        self.camera_frame = ""  # the images' frame_id, once frames() has read one
        self.odom_child = ""  # the odometry's child frame, likewise
        self.skipped_images = 0  # images that did not decode (last_skip says why)
        self.camera_warnings: list[str] = []  # what about the camera's geometry is assumed
        self.last_skip = ""
        self._mount_parents: dict[str, tuple[str, np.ndarray]] | None = None

    def _missing(self, topic: str) -> str:
        listing = ", ".join(f"{t} ({k})" for t, k in sorted(self.topics.items()))
        return f"{self.path} has no topic {topic}; it has: {listing or 'no topics'}"

    def _holds_depth(self, topic: str) -> bool:
        """Whether the topic's first message is a depth image (REP 118 encodings, or
        compressed_depth_image_transport's format)."""
        for _, msg in self._messages([topic]):
            return "compressedDepth" in msg.format if hasattr(msg, "format") \
                else msg.encoding in DEPTH_ENCODINGS
        return False

    def _camera_stream(self, images: list[str]) -> str:
        """The one camera's image topic: raw before its /compressed twin; several cameras
        must be chosen between by the user."""
        if not images:
            raise BagError(self._missing(f"of type {' or '.join(IMAGE_TYPES)} (camera image)"))
        streams = sorted({t.removesuffix("/compressed") for t in images})
        if len(streams) > 1:
            raise BagError(f"{self.path} holds several camera streams ({', '.join(streams)}); "
                           f"name the one to use: {TOPIC_SETTINGS}")
        return streams[0] if streams[0] in images else images[0]

    def _camera_info(self) -> str:
        """The image's CameraInfo: the camera_info beside it (image_transport's rule), else
        the recording's only one."""
        stream = self.image_topic.removesuffix("/compressed")
        beside = f"{stream.rsplit('/', 1)[0]}/camera_info"
        if self.topics.get(beside) == CAMERA_INFO_TYPE:
            return beside
        infos = [t for t, k in sorted(self.topics.items())
                 if k == CAMERA_INFO_TYPE and not t.endswith(DEPTH_OUTPUTS)]
        if not infos:
            raise BagError(self._missing(f"of type {CAMERA_INFO_TYPE} (CameraInfo)"))
        if len(infos) > 1:
            raise BagError(f"{self.path} holds several CameraInfo topics ({', '.join(infos)}) "
                           f"and none at {beside}; name the one to use: {TOPIC_SETTINGS}")
        return infos[0]

    @property
    def image_messages(self) -> int:
        """Messages on the camera's image topic (an upper bound on the frames it gives)."""
        return sum(c.msgcount for c in self._reader.connections if c.topic == self.image_topic)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _messages(self, topics: list[str]) -> Iterator[tuple[str, object]]:
        """Deserialized messages of `topics` in log order. A message that does not deserialize
        is skipped and counted in `damaged` (one bad message costs one frame, not the
        recording); a storage that cannot be read on is refused."""
        conns = [c for c in self._reader.connections if c.topic in topics]
        try:
            for conn, _, raw in self._reader.messages(connections=conns):
                try:
                    msg = self._reader.deserialize(raw, conn.msgtype)
                except Exception:  # rosbags raises several types for a malformed message
                    self.damaged[conn.topic] = self.damaged.get(conn.topic, 0) + 1
                    continue
                yield conn.topic, msg
        except Exception as err:  # truncated chunks surface only while reading
            raise BagError(f"{self.path} is damaged after some messages were read: "
                           f"{type(err).__name__}: {err}") from err

    def _static_mount(self, camera_frame: str, base_frame: str | None) -> np.ndarray | None:
        """base_frame -> camera_frame from /tf_static (or a namespace's, read once), or None
        when the chain is incomplete or loops. base_frame None: up to the top of the chain, or
        FOOTPRINT_FRAME when the chain passes it (None when camera_frame has no static
        parent)."""
        if self._mount_parents is None:
            self._mount_parents = {}
            # A namespaced robot's too (/robot1/tf_static: multi-robot setups remap tf).
            static = [t for t, k in self.topics.items()
                      if k == TF_TYPE and t.rsplit("/", 1)[-1] == "tf_static"]
            if static:
                for _, msg in self._messages(static):
                    for t in msg.transforms:
                        self._mount_parents[t.child_frame_id] = (t.header.frame_id,
                                                                 _transform(t.transform))
        if base_frame is None and camera_frame not in self._mount_parents:
            return None
        chain, frame, seen = np.eye(4), camera_frame, set()
        while frame != base_frame:
            if base_frame is None and (frame == FOOTPRINT_FRAME
                                       or frame not in self._mount_parents):
                return chain
            if frame not in self._mount_parents or frame in seen:
                return None
            seen.add(frame)
            parent, transform = self._mount_parents[frame]
            chain, frame = transform @ chain, parent
        return chain

    def frames(self) -> Iterator[RecordedFrame]:
        """Frames in time order. Ground truth is paired with the image of the same header
        stamp written next to it; odometry is interpolated to the image stamp. Images recorded
        before the first CameraInfo are skipped (drivers publish both; either may be logged
        first), and so is an image that does not decode (counted in skipped_images; only when
        none decodes is the recording refused, with the reason)."""
        self.camera_frame = next((msg.header.frame_id for _, msg in
                                  self._messages([self.image_topic])), "")
        self.odom_topic = self._linked_odometry()
        self.damaged.clear()  # counted afresh: the searches above peeked at messages already
        self.unusable_poses = self.skipped_images = 0  # poses left out by _odometry
        self.camera_warnings = []
        odometry = self._odometry()
        self.odom_child = odometry[0][2] if odometry else ""
        # The camera's mount on the odometry's child frame; without odometry (or when it does
        # not reach the camera) the static chain up to the robot's footprint.
        mount = self._static_mount(self.camera_frame, self.odom_child) if odometry else None
        standing = self._static_mount(self.camera_frame, None)
        yielded = False
        for frame in self._paired(odometry, mount, standing):
            if frame is not None:
                yielded = True
                yield frame
        if not yielded and self.skipped_images:
            raise BagError(f"{self.path} {self.image_topic}: no image decodes "
                           f"({self.skipped_images} tried; last: {self.last_skip})")

    def _paired(self, odometry: list, mount: np.ndarray | None,
                standing: np.ndarray | None) -> Iterator[RecordedFrame | None]:
        """Each image with its CameraInfo, ground truth and pose (None: it did not decode)."""
        intrinsics: Intrinsics | None = None
        pending = None          # (image, intrinsics) waiting for its ground truth
        last_depth = None       # ground truth that arrived before its image
        poses = (odometry, mount, standing)
        wanted = [self.image_topic, self.camera_info_topic, *filter(None, [self.depth_topic])]
        for topic, msg in self._messages(wanted):
            if topic == self.camera_info_topic:
                try:
                    intrinsics = camera_intrinsics(msg)
                except IntrinsicsError as err:
                    raise BagError(f"{self.path} {topic}: {err}") from err
                self._warn(unmodelled_distortion(msg, self.image_topic))
                continue
            if topic == self.depth_topic:
                if pending is not None and _stamp(pending[0]) == _stamp(msg):
                    yield self._frame(*pending, image_to_depth(msg), *poses)
                    pending = None
                else:
                    last_depth = msg
                continue
            if pending is not None:
                yield self._frame(*pending, None, *poses)
                pending = None
            if intrinsics is None:
                continue
            if last_depth is not None and _stamp(last_depth) == _stamp(msg):
                yield self._frame(msg, intrinsics, image_to_depth(last_depth), *poses)
            elif self.depth_topic:
                pending = (msg, intrinsics)
            else:
                yield self._frame(msg, intrinsics, None, *poses)
        if pending is not None:
            yield self._frame(*pending, None, *poses)

    def _frame(self, image, intrinsics: Intrinsics, depth: np.ndarray | None,
               odometry: list, mount: np.ndarray | None,
               standing: np.ndarray | None) -> RecordedFrame | None:
        try:
            rgb = (compressed_to_rgb(image, MAX_PIXELS) if hasattr(image, "format")
                   else image_to_rgb(image, MAX_PIXELS))
        except EncodingError as err:  # one bad image costs one frame
            self.skipped_images += 1
            self.last_skip = f"at {_stamp(image)} ns: {err}"
            return None
        fit = fit_to_image(intrinsics, rgb.shape[1], rgb.shape[0])
        if fit.intrinsics is None:
            raise BagError(f"{self.path}: {self.camera_info_topic} is {intrinsics.width}x"
                           f"{intrinsics.height}, another aspect ratio than the "
                           f"{rgb.shape[1]}x{rgb.shape[0]} images of {self.image_topic}: check "
                           "that both belong to the same camera")
        self._warn(fit.warning)
        if depth is not None and depth.shape != rgb.shape[:2]:
            raise BagError(f"{self.path}: ground truth {depth.shape[1]}x{depth.shape[0]} does "
                           f"not match image {rgb.shape[1]}x{rgb.shape[0]}")
        pose = None
        if mount is not None:
            base = _interpolate(odometry, _stamp(image))
            pose = None if base is None else base @ mount
        # Where odometry does not place the camera, its static mount still sets it over the
        # floor (its height: what a metric scale without odometry needs).
        return RecordedFrame(_stamp(image), rgb, fit.intrinsics, depth, pose,
                             standing if pose is None else pose)

    def _warn(self, warning: str | None) -> None:
        """Keep a camera warning once (a recording repeats its CameraInfo with every image)."""
        if warning and warning not in self.camera_warnings:
            self.camera_warnings.append(warning)

    def _linked_odometry(self) -> str | None:
        """The odometry topic to use: of several, the first whose child frame /tf_static
        links to the camera's frame (a robot's /odom beside, say, a tracking camera's own)."""
        if len(self._odom_topics) > 1:
            for topic in self._odom_topics:
                child = next((msg.child_frame_id for _, msg in self._messages([topic])), "")
                if self._static_mount(self.camera_frame, child) is not None:
                    return topic
        return next(iter(self._odom_topics), None)

    def _odometry(self) -> list[tuple[int, np.ndarray, str]]:
        """(stamp, odom_from_base, base frame) of every odometry message with a usable pose,
        in time order. Poses that are not finite or have a zero quaternion (an estimator not
        yet initialised, a driver leaving orientation unset) are left out: frames between the
        good ones are still interpolated."""
        if self.odom_topic is None:
            return []
        out = []
        for _, msg in self._messages([self.odom_topic]):
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            position, quaternion = np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])
            if np.isfinite([*position, *quaternion]).all() and np.linalg.norm(quaternion) > 1e-6:
                out.append((_stamp(msg), pose_matrix(position, quaternion), msg.child_frame_id))
            else:
                self.unusable_poses += 1
        return sorted(out, key=lambda row: row[0])


def _interpolate(odometry: list, stamp: int) -> np.ndarray | None:
    """Pose at `stamp` between the odometry messages around it (None outside their span)."""
    stamps = [row[0] for row in odometry]
    k = int(np.searchsorted(stamps, stamp))
    if k < len(stamps) and stamps[k] == stamp:
        return odometry[k][1]
    if k == 0 or k == len(stamps):
        return None
    (t0, a, _), (t1, b, _) = odometry[k - 1], odometry[k]
    w = (stamp - t0) / (t1 - t0)
    pose = np.eye(4)
    # Rotation along the shortest arc from a to b (10 Hz odometry turns degrees in between).
    turn = cv2.Rodrigues(a[:3, :3].T @ b[:3, :3])[0]
    pose[:3, :3] = a[:3, :3] @ cv2.Rodrigues(w * turn)[0]
    pose[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
    return pose
