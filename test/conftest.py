"""Shared fixtures. Every test session gets its own ROS domain on localhost only, so node tests
never see another session's (or a robot's) topics; under pytest-xdist each worker gets the
session's next domain, so parallel workers never see each other's either."""
from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
from collections.abc import Iterator

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... (set before conftests load)
_SESSION = os.getppid() if _WORKER else os.getpid()  # workers are the session's children
os.environ["ROS_DOMAIN_ID"] = str(random.Random(_SESSION).randint(1, 80)
                                  + (int(_WORKER[2:]) if _WORKER else 0))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A fresh cache per session, so cached ONNX exports and textures are made by the code tested;
# removed when the session (or the xdist worker) ends, so runs do not fill /tmp.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lumde-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import rclpy  # noqa: E402

from lumde_ros.checkpoint import save_checkpoint, untrained_student  # noqa: E402
from lumde_ros.geometry import Intrinsics  # noqa: E402


@pytest.fixture(scope="session")
def student_path(tmp_path_factory: pytest.TempPathFactory):
    """A valid checkpoint file of the untrained student (seed 1, so it differs from the
    built-in default the node serves without model_path)."""
    path = tmp_path_factory.mktemp("models") / "student.pt"
    return save_checkpoint(untrained_student(seed=1), path)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory):
    """A metric teacher of the tiny test architecture (see tiny.py)."""
    from tiny import write_tiny_teacher
    return write_tiny_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pt")


@pytest.fixture()
def intrinsics() -> Intrinsics:
    return Intrinsics(fx=500.0, fy=480.0, cx=319.5, cy=241.0, width=640, height=480)


@pytest.fixture()
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)


@pytest.fixture(scope="session")
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session")
def sim_bag(tmp_path_factory: pytest.TempPathFactory):
    """A short simulated room recording (MCAP) with ground truth and odometry."""
    from lumde_ros.sim.recording import SimulateOptions, simulate
    out = tmp_path_factory.mktemp("sim") / "room"
    simulate(SimulateOptions(out=out, seed=5, frames=10), progress=False)
    return out


@pytest.fixture(scope="session")
def floor_bag(tmp_path_factory: pytest.TempPathFactory):
    """A short simulated recording whose camera sees the floor (seed 3; in some seeds the
    camera faces furniture that hides it), with ground truth, odometry and the mount in tf."""
    from lumde_ros.sim.recording import SimulateOptions, simulate
    out = tmp_path_factory.mktemp("floor") / "seed-3"
    simulate(SimulateOptions(out=out, seed=3, frames=8, width=160, height=120), progress=False)
    return out


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same torch RNG state: random inputs are reproducible."""
    import torch
    torch.manual_seed(0)
