"""Spinning survives subscriptions destroyed while another thread collects the wait set."""
from __future__ import annotations

import threading
import time

from node_graph import wait_until
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from lumde_ros.nodes.entry import spin
from lumde_ros.nodes.qos import MatchedSubscription


def test_spin_outlives_subscriptions_recreated_from_other_threads(ros):
    """What input_qos auto and the trainer's recordings do, in rclpy's racy pattern: plain
    executor.spin() here died with InvalidHandle within 10 to 60 cycles (0.3 s)."""
    node = Node("spin_race")
    publisher = node.create_publisher(String, "spin_race", 10)
    node.create_timer(0.001, lambda: publisher.publish(String(data="x")))
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    thread = threading.Thread(target=spin, args=(executor,), daemon=True)
    thread.start()
    received: list[String] = []
    group = MutuallyExclusiveCallbackGroup()
    try:
        deadline = time.monotonic() + 4.0
        for _ in range(300):
            if time.monotonic() > deadline:
                break
            sub = MatchedSubscription(node, String, "/spin_race", received.append, "auto", 10,
                                      group)
            time.sleep(0.002)
            sub.destroy()
            assert thread.is_alive()
        received.clear()
        MatchedSubscription(node, String, "/spin_race", received.append, "reliable", 10, group)
        wait_until(lambda: len(received) > 10, what="messages after the churn")
        assert thread.is_alive()
    finally:
        executor.shutdown()
        thread.join(timeout=10)
        node.destroy_node()
