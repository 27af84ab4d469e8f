"""Time-ordered camera frames from a rosbag2 (MCAP or sqlite3), read with rosbags: the RGB
image (raw or compressed), its intrinsics, ground-truth depth when recorded, and the camera's
pose in the odometry frame when the bag has odometry (an Odometry topic, or odom in /tf) and tf
links it to the camera. A recording a dead recorder left unfinished is read through its
repaired copy (data/repair.py)."""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from lumde_ros.errors import BagError, EncodingError, IntrinsicsError
from lumde_ros.data.repair import Recovery, recover, unfinished
from lumde_ros.data.transforms import (FOOTPRINT_FRAME, Timeline, TransformTree, is_odom_frame,
                                       usable_rotation)
from lumde_ros.geometry import Intrinsics
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
# Ground truth belongs to the image stamped nearest it within this: an RGB-D camera that does
# not synchronise its sensors stamps colour and depth up to half a frame apart (15 ms at 30 Hz).
DEPTH_SLOP_MS = 15.0
# Images waiting for their ground truth, and depth images kept to pair them with: a depth stream
# logged up to a second behind (or ahead of) its images at 30 Hz still pairs.
PENDING = 30


@dataclass(frozen=True)
class RecordedFrame:
    """One camera frame. stamp_ns: header stamp; rgb uint8 (H, W, 3); depth (H, W) metres or
    None; odom_from_camera: 4x4 pose of the optical frame in odom, or None; floor_from_camera:
    its pose in a frame whose z is up and whose origin lies on the floor (odom with odometry,
    REP 105; without, base_footprint on the camera's tf chain, REP 120, or the chain's top),
    or None: what places the camera over the floor for a metric scale from its height
    (floor.py)."""

    stamp_ns: int
    rgb: np.ndarray
    intrinsics: Intrinsics
    depth: np.ndarray | None
    odom_from_camera: np.ndarray | None
    floor_from_camera: np.ndarray | None = None


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


class Recording:
    """A recording opened for reading; topics are chosen by name or found by type."""

    def __init__(self, path: str | Path, image_topic: str | None = None,
                 camera_info_topic: str | None = None, depth_topic: str | None = None,
                 ground_truth: bool = True, depth_slop_ms: float = DEPTH_SLOP_MS) -> None:
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
        self.skipped_images = 0  # images that did not decode (last_skip says why)
        self._images_read = 0  # by the last frames()
        self.unpaired_images = 0  # images given no ground truth although a depth topic is read
        self.images_before_camera_info = 0  # images skipped: no CameraInfo recorded yet
        self.duplicate_images = 0  # images skipped: the same stamp as the image before
        self.posed_frames = 0  # frames odometry placed (pose_source then says from where)
        self.linked, self.pose_span = False, None  # set by frames()
        self.last_skip = ""
        self.camera_warnings: list[str] = []  # what is assumed about the camera and its stamps
        self._unset_stamps: set[str] = set()  # topics whose header stamps are 0
        self._slop_ns = int(depth_slop_ms * 1e6)
        try:
            for topic in filter(None, (image_topic, camera_info_topic, depth_topic)):
                if topic not in self.topics:
                    raise BagError(self._missing(topic))
            # Images are told apart by content: a depth image is ground truth, whatever its
            # topic is called; a depth estimator's own outputs are neither.
            images = [t for t, k in sorted(self.topics.items())
                      if k in IMAGE_TYPES and not t.endswith(DEPTH_OUTPUTS)]
            # Each image topic's frame_id if it holds depth images, else None.
            depth_frames = {t: self._first_frame(t) for t in images}
            depths = [t for t in images if depth_frames[t] is not None]
            self.image_topic = image_topic or self._camera_stream(
                [t for t in images if t not in depths])
            self.camera_info_topic = camera_info_topic or self._camera_info()
            self.camera_frame = next((msg.header.frame_id for _, msg, _ in
                                      self._messages([self.image_topic])), "")
            # Training opens recordings with ground_truth=False: it is not even read. Of
            # several depth streams, one registered to the camera (in the image's frame, as
            # aligned_depth_to_color and depth_registered are), then the nearest the camera's
            # topic (longest shared prefix).
            near = sorted(depths, key=lambda t: (
                depth_frames[t] != self.camera_frame,
                -len(os.path.commonprefix([t, self.image_topic]))))
            self.depth_topic = None if not ground_truth else depth_topic or next(iter(near), None)
            self._other_depths = [t for t in depths if t != self.depth_topic]
            self._tree = self._read_tf()
            # What reading tf found to say (zero stamps, several robots): kept for frames().
            self._tf_warnings = list(self.camera_warnings)
            self._odom_topics = [t for t, k in sorted(self.topics.items())
                                 if k == ODOMETRY_TYPE]
            # odom_topic: where poses come from (an Odometry topic or a tf topic), or None;
            # _moved: the frame whose motion it gives (its child frame, or /tf's odom).
            self.odom_topic, self._moved, self.odom_child = self._pose_source()
            self._standing = self._standing_frame()
        except BagError:
            self.close()
            raise

    def _missing(self, topic: str) -> str:
        listing = ", ".join(f"{t} ({k})" for t, k in sorted(self.topics.items()))
        return f"{self.path} has no topic {topic}; it has: {listing or 'no topics'}"

    def _first_frame(self, topic: str) -> str | None:
        """The frame_id of the topic's first message when that is a depth image (REP 118
        encodings, or compressed_depth_image_transport's format), else None."""
        for _, msg, _ in self._messages([topic]):
            depth = "compressedDepth" in msg.format if hasattr(msg, "format") \
                else msg.encoding in DEPTH_ENCODINGS
            return msg.header.frame_id if depth else None
        return None

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

    def _messages(self, topics: list[str]) -> Iterator[tuple[str, object, int]]:
        """(topic, message, time recorded) of `topics` in log order. A message that does not
        deserialize
        is skipped and counted in `damaged` (one bad message costs one frame, not the
        recording); a storage that cannot be read on is refused."""
        conns = [c for c in self._reader.connections if c.topic in topics]
        if not conns:  # rosbags reads every topic when given none
            return
        try:
            for conn, logged, raw in self._reader.messages(connections=conns):
                try:
                    msg = self._reader.deserialize(raw, conn.msgtype)
                except Exception:  # rosbags raises several types for a malformed message
                    self.damaged[conn.topic] = self.damaged.get(conn.topic, 0) + 1
                    continue
                yield conn.topic, msg, logged
        except Exception as err:  # truncated chunks surface only while reading
            raise BagError(f"{self.path} is damaged after some messages were read: "
                           f"{type(err).__name__}: {err}") from err

    def _tf_topics(self) -> list[str]:
        """The camera's robot's tf and tf_static: multi-robot setups remap each robot's to its
        namespace (/robot1/tf), with frame names that repeat between robots. For each of the
        two, the namespace nearest the image topic's, else the recording's only one (static
        publishers are often left unremapped); several robots' and none the camera's: none
        (said)."""
        chosen = []
        for name in ("tf", "tf_static"):
            topics = [t for t, k in self.topics.items()
                      if k == TF_TYPE and t.rsplit("/", 1)[-1] == name]
            nearest = max(map(self._nearness, topics), default=-1)
            if nearest >= 0 or len(topics) == 1:
                chosen += [t for t in topics if nearest < 0 or self._nearness(t) == nearest]
            elif topics:
                self._warn(f"{name} of several robots ({', '.join(sorted(topics))}) and none "
                           f"in the namespace of {self.image_topic}: the camera is not placed "
                           "by them (name the image topic under its robot's namespace)")
        return chosen

    def _nearness(self, topic: str) -> int:
        """How near a topic is to the camera's robot: the number of leading namespaces it
        shares with the image topic (/robot2/odometry/filtered and /robot2/camera/image: 1);
        0 at the root; -1 in another namespace altogether (another robot's)."""
        namespace = topic.split("/")[1:-1]
        shared = len(os.path.commonprefix([namespace, self.image_topic.split("/")[1:-1]]))
        return shared if shared or not namespace else -1

    def _read_tf(self) -> TransformTree:
        """The camera's chain in its robot's tf (_tf_topics)."""
        tree = TransformTree(self.camera_frame)
        tf = self._tf_topics()
        for topic, msg, logged in self._messages(tf):
            static = topic.endswith("tf_static")
            for transform in msg.transforms:
                tree.add(transform, self._time(topic, transform, logged, static), topic, static)
        self._tf_damaged = {t: n for t, n in self.damaged.items() if t in tf}
        return tree.freeze()

    def _pose_source(self) -> tuple[str | None, str, str]:
        """Where the camera's pose comes from: (topic, the frame it moves, the odometry's child
        frame). Of the odometry topics whose child frame tf links to the camera (a robot's
        /odom, not a tracking camera's own), the nearest the image topic (_nearness), then the
        first by name; else /tf when it moves an odom frame above the camera (a bag recorded
        without /odom); else the first odometry topic, whose poses may then reach no frame
        (frames() says why)."""
        chain = self._tree.chain(self.camera_frame)
        children = {topic: next((msg.child_frame_id for _, msg, _ in self._messages([topic])),
                                "") for topic in self._odom_topics}
        chosen = next(iter(sorted((t for t in self._odom_topics if children[t] in chain),
                                  key=lambda t: -self._nearness(t))), None)
        if chosen is not None:
            return chosen, children[chosen], children[chosen]
        odom = next((f for f in chain[1:] if is_odom_frame(f)), None)
        if odom is not None:
            below = chain[chain.index(odom) - 1]
            return self._tree.topic(below), odom, below
        first = next(iter(self._odom_topics), None)
        return first, children.get(first, ""), children.get(first, "")

    def _standing_frame(self) -> str | None:
        """The frame that places the camera over the floor where odometry does not: up the
        camera's tf chain to base_footprint (REP 120) or an odom frame (REP 105: on the
        floor where the robot started), else the top of the chain; None without a parent."""
        chain = self._tree.chain(self.camera_frame)
        return next((f for f in chain[1:] if f == FOOTPRINT_FRAME or is_odom_frame(f)),
                    chain[-1] if len(chain) > 1 else None)

    def _placed(self, stamp: int) -> np.ndarray | None:
        """The camera over the floor at `stamp` without odometry: through the standing frame,
        or where a /tf edge on the way has no messages around the stamp (a /tf that starts
        late, or runs on another clock), the static mount alone (its top, or base_footprint)."""
        if self._standing is None:
            return None
        placed = self._tree.lookup(self._standing, self.camera_frame, stamp)
        return placed if placed is not None else self._tree.static_mount(self.camera_frame)

    def frames(self) -> Iterator[RecordedFrame]:
        """Frames in the order recorded. Each image takes the ground truth stamped nearest
        it, within depth_slop_ms (an RGB-D camera stamps its colour and depth apart;
        unpaired_images counts those left without); poses are interpolated to the image
        stamp. A header stamp of 0 (a driver that leaves it unset) is replaced by the time the
        message was recorded, and said in camera_warnings. Images recorded before the first
        CameraInfo are skipped (drivers publish both; either may be logged first; counted in
        images_before_camera_info), and so are an image stamped as the one before it
        (duplicate_images) and one that does not decode (skipped_images; only when none
        decodes is the recording refused, with the reason)."""
        # Counted afresh: the searches at opening peeked at messages already.
        self.damaged = dict(self._tf_damaged)
        self.skipped_images = self.unpaired_images = self.images_before_camera_info = 0
        self.duplicate_images = self.posed_frames = 0
        from_odometry = self.odom_topic in self._odom_topics  # else tf (or nothing)
        # Poses left out: by _odometry, or on the chain in tf when that is the source.
        self.unusable_poses = 0 if from_odometry else self._tree.unusable
        self.camera_warnings = list(self._tf_warnings)
        self._unset_stamps = set()
        odometry = self._odometry() if from_odometry else None
        # What a recording whose frames get no pose is told: whether tf links the camera to the
        # frame odometry moves, and when odometry and tf together give poses (ns; None: no
        # odometry message; an empty span, start after end: never together).
        self.linked = bool(self._moved) and self._moved in self._tree.chain(self.camera_frame)
        spans = [span for span in (
            (int(odometry.stamps[0]), int(odometry.stamps[-1]))
            if odometry is not None and len(odometry) else None,
            self._tree.span(self._moved, self.camera_frame)) if span is not None]
        # Both must answer: the odometry and tf's mount up to its child (a pan joint on /tf).
        self.pose_span = (max(a for a, _ in spans), min(b for _, b in spans)) if spans else None
        yielded = False
        for frame in self._paired(odometry):
            if frame is not None:
                yielded = True
                yield frame
        if yielded:
            return
        if self.skipped_images:
            raise BagError(f"{self.path} {self.image_topic}: no image decodes "
                           f"({self.skipped_images} tried; last: {self.last_skip})")
        if not self._images_read:
            raise BagError(f"{self.path}: {self.image_topic} holds no messages (nothing was "
                           "recorded on it)")
        raise BagError(f"{self.path}: none of the {self._images_read} images on "
                       f"{self.image_topic} has a CameraInfo on {self.camera_info_topic} "
                       "recorded before it")

    def notes(self) -> dict[str, object]:
        """What the last frames() met that a reader of the results should know, only what
        happened: messages and images skipped, by cause; images left without ground truth;
        camera warnings; where the poses came from."""
        notes = {"damaged_messages": self.damaged, "undecodable_images": self.skipped_images,
                 "images_before_camera_info": self.images_before_camera_info,
                 "duplicate_images": self.duplicate_images,
                 "images_without_ground_truth": self.unpaired_images,
                 "camera_warnings": self.camera_warnings,
                 "pose_source": self.odom_topic if self.posed_frames else None}
        return {key: value for key, value in notes.items() if value}

    def _time(self, topic: str, msg, logged_ns: int, static: bool = False) -> int:
        """A message's header stamp, or when it is 0 (unset by its driver) the time it was
        recorded, said once per topic (a static transform's stamp does not matter)."""
        stamp = _stamp(msg)
        if stamp or static:
            return stamp
        if topic not in self._unset_stamps:
            self._unset_stamps.add(topic)
            self._warn(f"{topic}: messages with a header stamp of 0 take the time they were "
                       "recorded instead (set the driver's stamps for exact timing)")
        return logged_ns

    def _paired(self, odometry: Timeline | None) -> Iterator[RecordedFrame | None]:
        """Each image with its CameraInfo, ground truth and pose (None: it did not decode).
        An image waits for ground truth until a depth image stamped after it (beyond the
        slop) has been read, or until PENDING images wait."""
        intrinsics: Intrinsics | None = None
        pending: deque = deque()                 # (image, stamp, intrinsics)
        depths: deque = deque(maxlen=PENDING + 1)  # (stamp, depth message), the latest
        wanted = [self.image_topic, self.camera_info_topic, *filter(None, [self.depth_topic])]
        self._images_read, last_image = 0, None
        for topic, msg, logged in self._messages(wanted):
            if topic == self.camera_info_topic:
                try:
                    intrinsics = camera_intrinsics(msg)
                except IntrinsicsError as err:
                    raise BagError(f"{self.path} {topic}: {err}") from err
                self._warn(unmodelled_distortion(msg, self.image_topic))
                continue
            stamp = self._time(topic, msg, logged)
            if topic == self.depth_topic:
                depths.append((stamp, msg))
                while pending and pending[0][1] + self._slop_ns < stamp:
                    yield self._frame(*pending.popleft(), depths, odometry)
            else:
                self._images_read += 1
                if intrinsics is None:
                    self.images_before_camera_info += 1
                    continue
                if stamp == last_image:  # recorded twice (a merged bag, a driver's resend)
                    self.duplicate_images += 1
                    continue
                last_image = stamp
                pending.append((msg, stamp, intrinsics))
                if not self.depth_topic or len(pending) > PENDING:
                    yield self._frame(*pending.popleft(), depths, odometry)
        while pending:
            yield self._frame(*pending.popleft(), depths, odometry)

    def _frame(self, image, stamp: int, intrinsics: Intrinsics, depths: deque,
               odometry: Timeline | None) -> RecordedFrame | None:
        try:
            rgb = (compressed_to_rgb(image, MAX_PIXELS) if hasattr(image, "format")
                   else image_to_rgb(image, MAX_PIXELS))
        except EncodingError as err:  # one bad image costs one frame
            self.skipped_images += 1
            self.last_skip = f"at {stamp} ns: {err}"
            return None
        fit = fit_to_image(intrinsics, rgb.shape[1], rgb.shape[0])
        if fit.intrinsics is None:
            raise BagError(f"{self.path}: {self.camera_info_topic} is {intrinsics.width}x"
                           f"{intrinsics.height}, another aspect ratio than the "
                           f"{rgb.shape[1]}x{rgb.shape[0]} images of {self.image_topic}: check "
                           "that both belong to the same camera")
        self._warn(fit.warning)
        near = min(depths, key=lambda d: abs(d[0] - stamp), default=None)
        depth = (image_to_depth(near[1]) if near is not None
                 and abs(near[0] - stamp) <= self._slop_ns else None)
        self.unpaired_images += bool(self.depth_topic) and depth is None
        if depth is not None and depth.shape != rgb.shape[:2]:
            others = (f"; this recording also has {', '.join(self._other_depths)}"
                      if self._other_depths else "")
            raise BagError(f"{self.path}: ground truth on {self.depth_topic} is "
                           f"{depth.shape[1]}x{depth.shape[0]}, the images "
                           f"{rgb.shape[1]}x{rgb.shape[0]}: name a depth stream registered to "
                           "the colour camera with --depth-topic (a driver's "
                           f"aligned_depth_to_color, depth_registered or depth_to_rgb){others}")
        pose = None
        if self._moved:
            # Odometry moves its child frame; /tf moves everything below the odom frame.
            base = np.eye(4) if odometry is None else odometry.at(stamp)
            mount = self._tree.lookup(self._moved, self.camera_frame, stamp)
            pose = None if base is None or mount is None else base @ mount
        # Where odometry does not place the camera, tf's mount still sets it over the floor
        # (its height: what a metric scale without odometry needs).
        self.posed_frames += pose is not None
        standing = pose if pose is not None else self._placed(stamp)
        return RecordedFrame(stamp, rgb, fit.intrinsics, depth, pose, standing)

    def _warn(self, warning: str | None) -> None:
        """Keep a camera warning once (a recording repeats its CameraInfo with every image)."""
        if warning and warning not in self.camera_warnings:
            self.camera_warnings.append(warning)

    def _odometry(self) -> Timeline:
        """The odometry topic's poses of its child frame in time order. Poses that are not
        finite or have a zero quaternion (an estimator not yet initialised, a driver leaving
        orientation unset) are left out: frames between the good ones are still
        interpolated."""
        stamps, poses = [], []
        for topic, msg, logged in self._messages([self.odom_topic]):
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            pose = [p.x, p.y, p.z, q.x, q.y, q.z, q.w]
            if usable_rotation(pose[:3], pose[3:]):
                stamps.append(self._time(topic, msg, logged))
                poses.extend(pose)
            else:
                self.unusable_poses += 1
        return Timeline.of(stamps, poses)
