"""QoS profiles from parameters, including matching what a topic's publishers offer."""
from __future__ import annotations

from collections.abc import Callable

from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription

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


class MatchedSubscription:
    """A subscription whose reliability follows `policy`; with `auto` it is re-created whenever
    what the topic's publishers offer changes (call `refresh` periodically). `raw`: deliver
    serialized bytes (for recording)."""

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[..., None],
                 policy: str, depth: int, callback_group: CallbackGroup,
                 raw: bool = False) -> None:
        self._node, self._type, self.topic, self._callback = node, msg_type, topic, callback
        self._policy, self._depth, self._group, self._raw = policy, depth, callback_group, raw
        self._subscription: Subscription | None = None
        self.reliability = ""
        self.refresh()

    def refresh(self) -> None:
        choice = choose_reliability(self._policy, offered_reliabilities(self._node, self.topic))
        if choice == self.reliability:
            return
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
        self._subscription = self._node.create_subscription(
            self._type, self.topic, self._callback, profile(choice, self._depth),
            callback_group=self._group, raw=self._raw)
        self.reliability = choice
        self._node.get_logger().info(
            f"subscribed to {self.topic} ({self._type.__name__}), {choice} keep-last-"
            f"{self._depth} (input_qos: {self._policy})")

    def destroy(self) -> None:
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription, self.reliability = None, ""
