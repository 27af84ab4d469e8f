"""Real nodes over DDS in this process: one executor thread spins the node under test, a
camera player and an output recorder, each test in its own namespace."""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from lumde_ros.geometry import Intrinsics
from lumde_ros.nodes.demo import CameraPlayer, OutputRecorder
from lumde_ros.nodes.depth_node import DepthNode
from lumde_ros.nodes.entry import spin
from lumde_ros.nodes.qos import profile

CAMERA = Intrinsics.from_hfov(640, 480, 70.0)
_names = itertools.count()


def wait_until(condition: Callable[[], object], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.02)


class Graph:
    """A depth node plus player and recorder, spun by a background executor."""

    def __init__(self, overrides: dict[str, object], publisher_qos: str = "reliable") -> None:
        self.namespace = f"/t{next(_names)}"
        params = [Parameter(k, value=v) for k, v in overrides.items()]
        self.node = DepthNode(namespace=self.namespace, parameter_overrides=params)
        # Depth 10: ROS's default, what camera drivers publish with.
        self.player = CameraPlayer(CAMERA, profile(publisher_qos, 10), namespace=self.namespace)
        self.recorder = OutputRecorder(namespace=self.namespace)
        self.executor = SingleThreadedExecutor()
        for node in (self.node, self.player, self.recorder):
            self.executor.add_node(node)
        self._thread = threading.Thread(target=spin, args=(self.executor,), daemon=True)
        self._thread.start()
        raw = overrides.get("image_transport", "raw") == "raw"
        wait_until(lambda: (self.player.image_pub.get_subscription_count() > 0 or not raw)
                   and self.recorder.count_publishers(f"{self.namespace}/depth/image") > 0,
                   what="discovery")
        if raw and publisher_qos == "reliable" and overrides.get("input_qos", "auto") == "auto":
            wait_until(lambda: self.node._image_sub.reliability == "reliable"
                       == self.node._info_sub.reliability, what="QoS match")

    @property
    def fqn(self) -> str:
        return self.node.get_fully_qualified_name()

    def add(self, node: Node) -> Node:
        self.executor.add_node(node)
        return node

    def send(self, rgb: np.ndarray, info=None, count: int = 1, topic: str = "depth/image"):
        """Publish a frame and wait until the node has published `count` more on `topic`."""
        before = len(self.recorder.received(topic))
        header = self.player.publish(rgb, info)
        wait_until(lambda: len(self.recorder.received(topic)) >= before + count,
                   what=f"{topic} after frame {header.stamp}")
        return header

    def output(self, topic: str, header) -> object:
        """The message the node published on `topic` for the frame with `header` (waits)."""
        def match():
            return [m for m in self.recorder.received(topic) if m.header.stamp == header.stamp]
        wait_until(match, what=f"{topic} for {header.stamp}")
        return match()[0]

    def diagnostics(self) -> dict[str, str]:
        return self.recorder.last_diagnostics(self.fqn)

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10)
        for node in (self.node, self.player, self.recorder):
            node.destroy_node()
