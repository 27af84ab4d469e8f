"""Fixtures for node tests: one rclpy context per session, graphs closed after each test."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from node_graph import CAMERA, Graph

from lumde_ros.sim.corridor import CorridorSequence


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    return [f.rgb for f in CorridorSequence(CAMERA, frames=6)]


@pytest.fixture()
def graph_factory(ros) -> Iterator[Callable[..., Graph]]:
    graphs: list[Graph] = []

    def make(publisher_qos: str = "reliable", **overrides: object) -> Graph:
        graphs.append(Graph(overrides, publisher_qos))
        return graphs[-1]

    yield make
    for g in graphs:
        g.close()
