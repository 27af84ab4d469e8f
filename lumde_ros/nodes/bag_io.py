"""Playing a rosbag2 into the ROS graph and recording topics into one, with the serialized
messages passed through untouched (no deserialise / re-serialise on either side)."""
from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from pathlib import Path

from rclpy.node import Node
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock

from lumde_ros.errors import BagError
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
    Counts messages and bytes per topic. Each chunk (about 1 MiB of messages) is flushed and
    fsync'd as rosbags completes it, so a recorder that dies (kill -9, power cut) loses only
    the chunk it was filling; lumde_ros.data.repair reads back the rest. A failed write
    (full disk, vanished directory) closes the bag, keeping what it already holds, and is
    remembered in `error`."""

    def __init__(self, bag: Path, topics: dict[str, str]) -> None:
        """topics: name -> 'pkg/msg/Type'. Raises BagError when the bag cannot be created."""
        self.path = Path(bag)
        if self.path.exists():
            raise BagError(f"{bag} already exists; recordings are never overwritten")
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer: Writer | None = Writer(self.path, version=9,
                                                 storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
            self._connections = {topic: self._writer.add_connection(topic, msgtype,
                                                                    typestore=TYPESTORE)
                                 for topic, msgtype in topics.items()}
        except Exception as err:  # OSError, or rosbags' WriterError wrapping one
            raise BagError(f"cannot record into {self.path}: {err}") from err
        self.counts = dict.fromkeys(topics, 0)
        self.bytes = 0
        self.error = ""
        self._chunks = 0  # chunks rosbags has written so far
        # Messages per topic in those chunks: what a reader gets back should the bag never be
        # closed (the recorder dies, or a write fails).
        self.synced = dict.fromkeys(topics, 0)

    @property
    def open(self) -> bool:
        return self._writer is not None

    def write(self, topic: str, stamp_ns: int, raw: bytes) -> bool:
        """Append one message; False when the bag is closed (or this write failed)."""
        with self._lock:
            if self._writer is None:
                return False
            try:
                self._writer.write(self._connections[topic], stamp_ns, raw)
                self.counts[topic] += 1
                self.bytes += len(raw)
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
        """Finalise the bag (index and metadata.yaml); safe to call twice."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except Exception as err:  # noqa: BLE001 - report, the messages stay on disk
                self.error = self.error or f"closing {self.path} failed: {err}"


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
