"""A recording's frames as tf2 would give them: an edge from /tf_static holds at every time, an
edge from /tf is interpolated between its messages. Robots put more on /tf than odometry: a
pan-tilt head, a camera mount that a driver republishes, and odom -> base_link itself, which is
often all a bag has when `/odom` was not recorded."""
from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lumde_ros.geometry import pose_matrix

# REP 105: the world-fixed frame odometry moves the robot in (a namespaced robot's ends in it).
ODOM_FRAME = "odom"
# REP 120: the robot's base projected onto the floor.
FOOTPRINT_FRAME = "base_footprint"


def is_odom_frame(frame: str) -> bool:
    return frame == ODOM_FRAME or frame.endswith("/" + ODOM_FRAME)


def usable_rotation(translation: Sequence[float], quaternion: Sequence[float]) -> bool:
    """Whether a pose can be used: finite, with a quaternion that is not zero (an estimator not
    yet initialised, a driver leaving orientation unset). Plain floats: /tf asks this
    millions of times."""
    return all(map(math.isfinite, (*translation, *quaternion))) \
        and math.fsum(x * x for x in quaternion) > 1e-12


@dataclass(frozen=True)
class Timeline:
    """Poses over time (what odometry or one /tf edge gives), interpolated in between: the
    translation linearly, the rotation along the shortest arc (10 Hz odometry turns degrees
    between messages)."""

    stamps: np.ndarray        # (N,) int64 ns, ascending
    translations: np.ndarray  # (N, 3)
    quaternions: np.ndarray   # (N, 4) x, y, z, w, unit

    @classmethod
    def of(cls, stamps: Iterable[int], poses: Iterable[float]) -> Timeline:
        """From stamps and their poses flattened to 7 numbers each (translation, quaternion),
        in any order."""
        t = np.asarray(stamps, dtype=np.int64)
        p = np.asarray(poses, dtype=np.float64).reshape(-1, 7)
        order = np.argsort(t, kind="stable")
        q = p[order, 3:]
        return cls(t[order], p[order, :3], q / np.linalg.norm(q, axis=1, keepdims=True))

    def __len__(self) -> int:
        return len(self.stamps)

    def at(self, stamp_ns: int) -> np.ndarray | None:
        """The 4x4 pose at stamp_ns (None outside the messages' span, as tf2 refuses to
        extrapolate)."""
        k = int(np.searchsorted(self.stamps, stamp_ns))
        if k < len(self.stamps) and self.stamps[k] == stamp_ns:
            return pose_matrix(self.translations[k], self.quaternions[k])
        if k == 0 or k == len(self.stamps):
            return None
        w = (stamp_ns - self.stamps[k - 1]) / (self.stamps[k] - self.stamps[k - 1])
        translation = (1 - w) * self.translations[k - 1] + w * self.translations[k]
        return pose_matrix(translation, _slerp(self.quaternions[k - 1], self.quaternions[k], w))


def _slerp(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Unit quaternion a fraction w of the shortest arc from a to b."""
    dot = float(a @ b)
    if dot < 0:  # q and -q are one rotation: go the short way
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly equal: the arc is a line
        q = a + w * (b - a)
        return q / np.linalg.norm(q)
    angle = np.arccos(dot)
    return (np.sin((1 - w) * angle) * a + np.sin(w * angle) * b) / np.sin(angle)


@dataclass(frozen=True)
class _Edge:
    parent: str
    topic: str                   # where it was read (a pose source is reported by its topic)
    static: np.ndarray | None    # 4x4 parent_from_child, from /tf_static
    timed: Timeline | None       # from /tf


class TransformTree:
    """parent_from_child for the frames on one frame's chain (a camera's), as a recording's tf
    gives them. Read with `add` in log order and `freeze`, then asked with `chain` and
    `lookup`. Only the chain's /tf edges are kept whole: a manipulator's joints are most of a
    robot's /tf and never place its camera."""

    def __init__(self, keep: str) -> None:
        self._edges: dict[str, _Edge] = {}
        self._parents: dict[str, str] = {}  # every child seen -> its parent
        self._chain = [keep]                # keep and the ancestors known so far
        # /tf while reading, per child on the chain: its parent, topic, stamps and flat poses
        # (compact: a long recording's /tf holds millions of transforms). Off the chain only
        # the latest, in case a later edge links it in (a static mount recorded late).
        self._reading: dict[str, tuple[str, str, array, array]] = {}
        self._latest: dict[str, tuple[str, str, int, list[float]]] = {}
        self.unusable = 0  # the chain's transforms left out: not finite, or a zero quaternion

    def add(self, transform, stamp_ns: int, topic: str, static: bool) -> None:
        """One geometry_msgs/TransformStamped. A static edge replaces a timed one of the same
        child (tf2 keeps both and warns; the static one is what the robot declared)."""
        v, q = transform.transform.translation, transform.transform.rotation
        pose = [v.x, v.y, v.z, q.x, q.y, q.z, q.w]
        child, parent = transform.child_frame_id, transform.header.frame_id
        if not usable_rotation(pose[:3], pose[3:]):
            self.unusable += child in self._chain
            return
        if static:
            self._edges[child] = _Edge(parent, topic, pose_matrix(pose[:3], pose[3:]), None)
            if self._parents.get(child, parent) != parent and child in self._chain:
                del self._chain[self._chain.index(child) + 1:]  # the chain goes up anew
            self._parents[child] = parent
        elif self._parents.setdefault(child, parent) != parent:
            return  # a second parent: tf2 would re-parent the frame; kept on its first
        elif child in self._chain:
            self._sample(child, parent, topic, stamp_ns, pose)
        else:
            self._latest[child] = (parent, topic, stamp_ns, pose)
        if child in self._chain:
            self._extend()

    def _sample(self, child: str, parent: str, topic: str, stamp_ns: int,
                pose: list[float]) -> None:
        reading = self._reading.setdefault(child, (parent, topic, array("q"), array("d")))
        reading[2].append(stamp_ns)
        reading[3].extend(pose)

    def _extend(self) -> None:
        """Follow the known parents up from the chain's top; a /tf edge that joins it starts
        from its latest sample."""
        while self._chain[-1] in self._parents \
                and self._parents[self._chain[-1]] not in self._chain:
            if self._chain[-1] in self._latest:
                self._sample(self._chain[-1], *self._latest.pop(self._chain[-1]))
            self._chain.append(self._parents[self._chain[-1]])

    def freeze(self) -> TransformTree:
        """Turn what /tf gave into timelines; static edges keep precedence."""
        for child, (parent, topic, stamps, poses) in self._reading.items():
            if child not in self._edges:
                self._edges[child] = _Edge(parent, topic, None, Timeline.of(stamps, poses))
        self._reading.clear()
        self._latest.clear()
        return self

    def chain(self, frame: str) -> list[str]:
        """frame and its ancestors, up to the root (or to where a loop would start)."""
        out = [frame] if frame else []
        while out and out[-1] in self._edges and self._edges[out[-1]].parent not in out:
            out.append(self._edges[out[-1]].parent)
        return out

    def static_mount(self, frame: str) -> np.ndarray | None:
        """top_from_frame over the static edges up from `frame`, stopping at base_footprint
        (REP 120); None when `frame` has no static parent."""
        out, top = np.eye(4), frame
        for child in self.chain(frame)[:-1]:
            edge = self._edges[child]
            if edge.static is None or child == FOOTPRINT_FRAME:
                break
            out, top = edge.static @ out, edge.parent
        return out if top != frame else None

    def _path(self, target: str, source: str) -> list[_Edge] | None:
        """The edges from source up to target, or None when target is not above source."""
        chain = self.chain(source)
        if target not in chain:
            return None
        return [self._edges[frame] for frame in chain[:chain.index(target)]]

    def span(self, target: str, source: str) -> tuple[int, int] | None:
        """The stamps (ns) between which lookup(target, source) can answer: where the /tf
        edges on the way all have messages; None when no /tf edge is on the way (or target is
        not above source)."""
        timed = [edge.timed for edge in self._path(target, source) or []
                 if edge.timed is not None]
        if not timed or not all(len(t) for t in timed):
            return None
        return max(int(t.stamps[0]) for t in timed), min(int(t.stamps[-1]) for t in timed)

    def topic(self, child: str) -> str:
        """The topic the edge from `child` to its parent was read from."""
        return self._edges[child].topic

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray | None:
        """target_from_source (4x4) at stamp_ns, where target is an ancestor of source (all a
        camera's pose needs); None when the chain does not reach it or a /tf edge on the way
        has no messages around the stamp."""
        path = self._path(target, source)
        if path is None:
            return None
        out = np.eye(4)
        for edge in path:
            step = edge.static if edge.timed is None else edge.timed.at(stamp_ns)
            if step is None:
                return None
            out = step @ out
        return out
