"""Playing a rosbag2 into the ROS graph and recording topics into one, with the serialized
messages passed through untouched (no deserialise / re-serialise on either side)."""
from __future__ import annotations

import importlib
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


class BagRecorder(Node):
    """Records topics (raw subscriptions, reliable like RViz) into a new MCAP rosbag2.
    `close()` finalises the bag; it is also called by destroy_node."""

    def __init__(self, bag: Path, topics: dict[str, type], name: str = "bag_recorder") -> None:
        super().__init__(name)
        if Path(bag).exists():
            raise BagError(f"{bag} already exists; recordings are never overwritten")
        self._lock = threading.Lock()
        self._writer: Writer | None = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.counts = dict.fromkeys(topics, 0)
        for topic, cls in topics.items():
            conn = self._writer.add_connection(topic, type_name(cls), typestore=TYPESTORE)
            self.create_subscription(cls, topic, self._writer_for(topic, conn),
                                     profile("reliable", 10), raw=True)

    def _writer_for(self, topic: str, conn):
        def write(raw: bytes) -> None:
            with self._lock:
                if self._writer is not None:
                    self._writer.write(conn, self.get_clock().now().nanoseconds, raw)
                    self.counts[topic] += 1
        return write

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()
