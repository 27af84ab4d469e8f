"""QoS profiles from parameters, including matching what a topic's publishers offer."""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITIES = ("reliable", "best_effort")
INPUT_QOS = ("auto", *RELIABILITIES)


def profile(reliability: str, depth: int) -> QoSProfile:
    """Keep-last-`depth`, volatile, with the named reliability."""
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else \
        ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


def offered_reliabilities(node: Node, topic: str) -> list[str]:
    """Reliability offered by each publisher of `topic` (fully qualified name)."""
    return ["reliable" if info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            else "best_effort" for info in node.get_publishers_info_by_topic(topic)]


def choose_reliability(policy: str, offered: list[str]) -> str:
    """`auto` does what rosbag2 does: reliable when every publisher is reliable (no frame is
    lost between processes), best effort otherwise or while there is no publisher yet (a
    reliable subscription would not match a best-effort publisher at all)."""
    if policy != "auto":
        return policy
    return "reliable" if offered and all(r == "reliable" for r in offered) else "best_effort"
