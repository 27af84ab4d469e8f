"""tf as a recording gives it: static edges at every time, /tf edges interpolated, only the
camera's chain kept."""
from __future__ import annotations

import math

import numpy as np

from lumde_ros.data.transforms import TransformTree
from lumde_ros.geometry import pose_matrix, quaternion_from_rpy
from lumde_ros.sim.recording import _transform


def _at(x: float, yaw_deg: float = 0.0) -> np.ndarray:
    return pose_matrix(np.array([x, 0.0, 0.0]), quaternion_from_rpy(0, 0, math.radians(yaw_deg)))


def _add(tree: TransformTree, stamp: int, parent: str, child: str, matrix: np.ndarray,
         static: bool = False) -> None:
    tree.add(_transform(stamp, parent, child, matrix), stamp, "/tf_static" if static else "/tf",
             static)


def test_the_chain_is_kept_and_what_is_off_it_is_not():
    tree = TransformTree("camera")
    _add(tree, 0, "base", "camera", _at(0.5), static=True)
    for stamp in (0, 100):
        _add(tree, stamp, "odom", "base", _at(stamp / 100, yaw_deg=90 * stamp / 100))
        _add(tree, stamp, "base", "arm", _at(1.0))  # a joint that never places the camera
    tree.freeze()
    assert tree.chain("camera") == ["camera", "base", "odom"]
    np.testing.assert_allclose(tree.lookup("odom", "camera", 50), _at(0.5, 45) @ _at(0.5),
                               atol=1e-12)
    assert tree.lookup("odom", "camera", 101) is None  # no extrapolation, as tf2
    assert tree.lookup("base", "arm", 0) is None and tree.topic("base") == "/tf"
    assert tree.lookup("camera", "odom", 0) is None  # only up the chain


def test_an_edge_that_joins_the_chain_late_starts_from_its_latest_sample():
    """A static mount recorded after odometry began: odom -> base from then on."""
    tree = TransformTree("camera")
    for stamp in (0, 100, 200, 300):
        _add(tree, stamp, "odom", "base", _at(stamp / 100))
        if stamp == 100:
            _add(tree, stamp, "base", "camera", _at(0.5), static=True)
    tree.freeze()
    assert tree.lookup("odom", "camera", 50) is None
    np.testing.assert_allclose(tree.lookup("odom", "camera", 250), _at(3.0), atol=1e-12)


def test_a_loop_in_tf_ends_the_chain():
    tree = TransformTree("a")
    _add(tree, 0, "b", "a", _at(1.0), static=True)
    _add(tree, 0, "a", "b", _at(1.0), static=True)
    assert tree.freeze().chain("a") == ["a", "b"] and tree.lookup("c", "a", 0) is None


def test_a_frame_keeps_its_first_parent_and_a_static_edge_overrides_a_timed_one():
    tree = TransformTree("camera")
    _add(tree, 0, "base", "camera", _at(0.5), static=True)
    _add(tree, 0, "odom", "base", _at(1.0))
    _add(tree, 50, "map", "base", _at(100.0))  # a second parent: not merged into odom's
    _add(tree, 100, "odom", "base", _at(2.0))
    _add(tree, 0, "arm", "camera", _at(7.0))  # a timed edge where a static one holds
    assert tree.freeze().chain("camera") == ["camera", "base", "odom"]
    np.testing.assert_allclose(tree.lookup("odom", "camera", 50), _at(2.0), atol=1e-12)
    # A static mount declared after a timed one with another parent: the chain follows it.
    tree = TransformTree("camera")
    _add(tree, 0, "head", "camera", _at(1.0))
    _add(tree, 0, "odom", "base", _at(1.0))
    _add(tree, 5, "base", "camera", _at(0.5), static=True)
    _add(tree, 10, "odom", "base", _at(2.0))
    assert tree.freeze().chain("camera") == ["camera", "base", "odom"]
    np.testing.assert_allclose(tree.lookup("odom", "camera", 10), _at(2.5), atol=1e-12)


def test_the_span_is_where_every_timed_edge_on_the_way_answers():
    tree = TransformTree("camera")
    _add(tree, 200, "base", "camera", _at(0.5))   # a pan joint on another clock
    _add(tree, 300, "base", "camera", _at(0.5))
    _add(tree, 0, "odom", "base", _at(1.0))
    _add(tree, 100, "odom", "base", _at(1.0))
    tree.freeze()
    assert tree.span("odom", "camera") == (200, 100)  # never together
    assert tree.span("base", "camera") == (200, 300) and tree.span("camera", "camera") is None
