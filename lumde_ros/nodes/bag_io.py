"""Playing a rosbag2 into the ROS graph and recording topics into one, with the serialized
messages passed through untouched (no deserialise / re-serialise on either side)."""
from __future__ import annotations

import functools
import importlib
import os
import shutil
import threading
import time
from pathlib import Path

import yaml
from rclpy.node import Node
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock

from lumde_ros.errors import BagError
from lumde_ros.files import atomic_path, fsync_dir
from lumde_ros.nodes.qos import profile

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def message_class(msgtype: str) -> type:
    """The rclpy class of 'pkg/msg/Name'."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise BagError(f"message type {msgtype} is not installed ({err}); install its "
                       "ROS 2 package") from err


def type_name(cls: type) -> str:
    """'pkg/msg/Name' of an rclpy message class."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


class BagPlayer(Node):
    """Publishes a bag's messages at their recorded pace (scaled by `rate`), with /clock so
    nodes running with use_sim_time see the recording's time, as `ros2 bag play --clock`."""

    def __init__(self, bag: Path, topics: list[str], rate: float = 1.0,
                 name: str = "bag_player") -> None:
        super().__init__(name)
        self._bag, self._rate = Path(bag), rate
        try:
            self._reader = Reader(self._bag)
            self._reader.open()
        except Exception as err:  # rosbags raises several types for missing or damaged bags
            raise BagError(f"cannot open {self._bag}: {err}") from err
        self._connections = [c for c in self._reader.connections if c.topic in topics]
        missing = set(topics) - {c.topic for c in self._connections}
        if missing:
            self._reader.close()
            raise BagError(f"{self._bag} has no topic {sorted(missing)}")
        qos = profile("reliable", 10)
        self._topic_pubs = {c.topic: self.create_publisher(message_class(c.msgtype), c.topic,
                                                           qos) for c in self._connections}
        self._clock_pub = self.create_publisher(Clock, "/clock", 10)

    def subscribers_ready(self) -> bool:
        """True once every topic has at least one subscriber."""
        return all(p.get_subscription_count() > 0 for p in self._topic_pubs.values())

    def play(self) -> int:
        """Publish everything (blocking); returns the number of messages published."""
        start_wall, start_bag, count = time.monotonic(), None, 0
        for conn, stamp_ns, raw in self._reader.messages(connections=self._connections):
            start_bag = stamp_ns if start_bag is None else start_bag
            due = start_wall + (stamp_ns - start_bag) * 1e-9 / self._rate
            time.sleep(max(0.0, due - time.monotonic()))
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(stamp_ns, 10**9)
            self._clock_pub.publish(clock)
            self._topic_pubs[conn.topic].publish(bytes(raw))
            count += 1
        return count

    def destroy_node(self) -> None:
        self._reader.close()
        super().destroy_node()


class BagWriter:
    """A new MCAP rosbag2 written from any thread: serialized messages go in untouched.
    Counts messages and bytes per topic.

    Durability, so that a recorder that dies (kill -9, crash, power cut, full disk) loses
    only the chunk it was filling: each chunk (about 1 MiB of messages) is flushed and
    fsync'd as rosbags completes it, and the recording is split into files of at most
    `max_file_s` seconds and `max_file_mb` megabytes (0: no limit), as `ros2 bag record
    --max-bag-duration/--max-bag-size` does: `<name>/<name>_0.mcap`, `<name>_1.mcap`, ...
    with one metadata.yaml over all of them written on close. A file being written lives in
    its own folder `<name>/<name>_<i>/` until it is closed (rosbags writes one bag per
    folder); lumde_ros.data.repair reads back what a dead recorder left of either. A failed
    write (full disk, vanished directory) ends the recording, keeping what it already holds,
    and is remembered in `error`."""

    def __init__(self, bag: Path, topics: dict[str, str], max_file_s: float = 0.0,
                 max_file_mb: float = 0.0) -> None:
        """topics: name -> 'pkg/msg/Type'. Raises BagError when the bag cannot be created."""
        self.path = Path(bag)
        if self.path.exists():
            raise BagError(f"{bag} already exists; recordings are never overwritten")
        self._topics = topics
        self._max_file_ns, self._max_file_bytes = max_file_s * 1e9, max_file_mb * 1e6
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(topics, 0)
        self.bytes = 0
        self.error = ""
        # Messages per topic in completed chunks and closed files: what a reader gets back
        # should the bag never be closed (the recorder dies, or a write fails).
        self.synced = dict.fromkeys(topics, 0)
        self.files: list[Path] = []  # closed files, in order
        self._file_info: list[dict] = []  # their metadata, merged into the bag's on close
        self._writer: Writer | None = None
        try:
            self.path.mkdir(parents=True)
            self._open_file()
        except Exception as err:  # OSError, or rosbags' WriterError wrapping one
            raise BagError(f"cannot record into {self.path}: {err}") from err

    @property
    def open(self) -> bool:
        return self._writer is not None

    def _open_file(self) -> None:
        folder = self.path / f"{self.path.name}_{len(self.files)}"
        writer = Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        self._connections = {topic: writer.add_connection(topic, msgtype, typestore=TYPESTORE)
                             for topic, msgtype in self._topics.items()}
        self._writer, self._folder = writer, folder
        self._file_start_ns: int | None = None
        self._file_bytes = 0
        self._chunks = 0  # chunks rosbags has written into this file so far

    def _close_file(self) -> None:
        """Finish the file being written (its index and summary) and move it beside the
        others; the bag's own metadata.yaml comes with close()."""
        writer, self._writer = self._writer, None
        writer.close()
        mcap = self._folder / f"{self._folder.name}.mcap"
        self._file_info.append(yaml.safe_load((self._folder / "metadata.yaml").read_text())[
            "rosbag2_bagfile_information"])
        os.replace(mcap, self.path / mcap.name)
        fsync_dir(self.path)
        shutil.rmtree(self._folder)
        self.files.append(self.path / mcap.name)
        self.synced = dict(self.counts)

    def write(self, topic: str, stamp_ns: int, raw: bytes) -> bool:
        """Append one message; False when the bag is closed (or this write failed)."""
        with self._lock:
            if self._writer is None:
                return False
            try:
                if self._file_start_ns is not None and (
                        0 < self._max_file_ns <= stamp_ns - self._file_start_ns
                        or 0 < self._max_file_bytes <= self._file_bytes + len(raw)):
                    self._close_file()
                    self._open_file()
                self._writer.write(self._connections[topic], stamp_ns, raw)
                if self._file_start_ns is None:
                    self._file_start_ns = stamp_ns
                self.counts[topic] += 1
                self.bytes += len(raw)
                self._file_bytes += len(raw)
                self._sync_chunk()
            except Exception as err:  # noqa: BLE001 - any storage failure ends the recording
                self.error = f"writing {self.path} failed: {err}"
                self._close()
                return False
            return True

    def _sync_chunk(self) -> None:
        """Make a chunk rosbags has just completed durable. Its MCAP storage keeps the
        file (`bio`) and one index entry per written chunk (`chunks`); were they renamed in
        another rosbags version, recordings stay correct, only not synced chunk by chunk."""
        storage = self._writer.storage
        chunks, bio = getattr(storage, "chunks", None), getattr(storage, "bio", None)
        if chunks is not None and bio is not None and len(chunks) != self._chunks:
            self._chunks = len(chunks)
            bio.flush()
            os.fsync(bio.fileno())
            self.synced = dict(self.counts)  # the chunk just closed holds the latest message

    def close(self) -> None:
        """Finalise the bag (every file's index, and metadata.yaml); safe to call twice."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._writer is None:
            return
        try:
            self._close_file()
            with atomic_path(self.path / "metadata.yaml") as tmp:
                tmp.write_text(yaml.safe_dump(
                    {"rosbag2_bagfile_information": merged_metadata(self._file_info)}))
        except Exception as err:  # noqa: BLE001 - report, the messages stay on disk
            self._writer = None
            self.error = self.error or f"closing {self.path} failed: {err}"


def merged_metadata(files: list[dict]) -> dict:
    """One bag's metadata over the metadata of its files (each as rosbags writes it for a
    bag of one file), in order: their paths, time span, message counts per file and per
    topic, as ros2 bag writes a split recording's."""
    spans = [(f["starting_time"]["nanoseconds_since_epoch"], f["duration"]["nanoseconds"])
             for f in files if f["message_count"]]
    start = min((s for s, _ in spans), default=0)
    end = max((s + d for s, d in spans), default=0)
    topics: dict[str, dict] = {}
    for f in files:
        for entry in f["topics_with_message_count"]:
            name = entry["topic_metadata"]["name"]
            topics.setdefault(name, {"topic_metadata": entry["topic_metadata"],
                                     "message_count": 0})["message_count"] += \
                entry["message_count"]
    return {**files[0], "relative_file_paths": [p for f in files
                                                for p in f["relative_file_paths"]],
            "starting_time": {"nanoseconds_since_epoch": start},
            "duration": {"nanoseconds": end - start},
            "message_count": sum(f["message_count"] for f in files),
            "topics_with_message_count": list(topics.values()),
            "files": [entry for f in files for entry in f["files"]]}


class BagRecorder(Node):
    """Records topics (raw subscriptions, reliable like RViz) into a new MCAP rosbag2.
    `close()` finalises the bag; it is also called by destroy_node."""

    def __init__(self, bag: Path, topics: dict[str, type], name: str = "bag_recorder") -> None:
        super().__init__(name)
        self._bag = BagWriter(bag, {topic: type_name(cls) for topic, cls in topics.items()})
        self.counts = self._bag.counts
        for topic, cls in topics.items():
            self.create_subscription(cls, topic, functools.partial(self._write, topic),
                                     profile("reliable", 10), raw=True)

    def _write(self, topic: str, raw: bytes) -> None:
        self._bag.write(topic, self.get_clock().now().nanoseconds, raw)

    def close(self) -> None:
        self._bag.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()
