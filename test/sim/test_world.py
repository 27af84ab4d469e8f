"""Worlds are drawn from the seed alone, keep the training and evaluation families apart, and
move the camera the way robots and hands do."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lumde_ros.errors import BagError
from lumde_ros.sim.motion import Clearance, drive, handheld
from lumde_ros.sim.recording import EVAL_SEED_START, SimulateOptions, simulate
from lumde_ros.sim.world import load_sim_config, random_world, split_name

SIM = load_sim_config()


def test_the_splits_share_no_layout_object_or_texture_family():
    training, evaluation = SIM["split"]["training"], SIM["split"]["evaluation"]
    for key in ("layouts", "objects", "textures"):
        assert training[key] and evaluation[key]
        assert not set(training[key]) & set(evaluation[key]), key


@pytest.mark.parametrize("seeds", [range(0, 12), range(EVAL_SEED_START, EVAL_SEED_START + 12)])
def test_a_seed_draws_only_from_its_split(seeds):
    split = split_name(seeds[0], SIM)
    allowed = SIM["split"][split]
    layouts, objects = set(), set()
    for seed in seeds:
        world = random_world(np.random.default_rng(seed), split, SIM)
        assert world.layout in allowed["layouts"]
        assert set(world.objects) <= set(allowed["objects"])
        assert set(world.families) <= set(allowed["textures"])
        assert {p.texture.family for p in world.parts} == set(world.families)
        layouts.add(world.layout)
        objects |= set(world.objects)
    assert len(layouts) >= 2 and len(objects) >= 2      # the draws do vary


def test_same_seed_same_world_different_seed_different_world():
    a, b, c = (random_world(np.random.default_rng(s), "training", SIM) for s in (3, 3, 4))
    assert a.parts == b.parts and a.light == b.light
    assert a.parts != c.parts


def test_a_layout_outside_the_seeds_split_is_refused(tmp_path):
    with pytest.raises(BagError, match="not a training layout.*room, corridor, aisles"):
        simulate(SimulateOptions(out=tmp_path / "x", seed=3, frames=2, layout="hall"),
                 progress=False)
    with pytest.raises(BagError, match="motion 'fly'"):
        simulate(SimulateOptions(out=tmp_path / "x", seed=3, frames=2, motion="fly"),
                 progress=False)
    assert not (tmp_path / "x").exists()


def _yaw_steps(samples) -> np.ndarray:
    yaw = np.array([math.atan2(s.world_from_base[1, 0], s.world_from_base[0, 0])
                    for s in samples])
    return np.angle(np.exp(1j * np.diff(yaw)))


def test_a_driven_robot_turns_both_ways_stops_reverses_and_keeps_clear():
    turns_left = turns_right = stops = reverses = 0
    for seed in range(4):
        world = random_world(np.random.default_rng(seed), "training", SIM)
        clearance = Clearance(world.occupancy())
        samples = drive(np.random.default_rng(seed), clearance, 600, 10.0, SIM["motion"])
        steps = _yaw_steps(samples)
        turns_left += np.sum(steps > 0.02)
        turns_right += np.sum(steps < -0.02)
        speeds = np.array([s.linear[0] for s in samples])
        stops += np.sum((np.abs(speeds[:-1]) < 1e-3) & (np.abs(steps) < 1e-3))
        reverses += np.sum(speeds < -0.05)
        assert min(clearance(*s.world_from_base[:2, 3]) for s in samples) >= \
            SIM["motion"]["clearance_m"] - 0.05
        # odometry's twist is the motion: speed times the frame time is the step
        moved = np.linalg.norm(np.diff([s.world_from_base[:2, 3] for s in samples], axis=0),
                               axis=1)
        assert np.sum(moved) > 5.0
        assert abs(np.sum(moved) - np.sum(np.abs(speeds[:-1])) / 10.0) < 0.1 * np.sum(moved)
    assert min(turns_left, turns_right) > 50 and stops > 5 and reverses > 5


def test_a_hand_held_camera_moves_in_six_degrees_of_freedom():
    world = random_world(np.random.default_rng(1), "training", SIM)
    samples = handheld(np.random.default_rng(1), Clearance(world.occupancy()), 300, 10.0,
                       SIM["motion"])
    poses = np.array([s.world_from_base for s in samples])
    roll = np.degrees(np.arctan2(poses[:, 2, 1], poses[:, 2, 2]))
    pitch = np.degrees(np.arcsin(-poses[:, 2, 0]))
    assert np.ptp(poses[:, 2, 3]) > 0.05                 # height changes
    assert np.ptp(roll) > 3 and np.ptp(pitch) > 5
    steps = _yaw_steps(samples)
    assert np.sum(steps > 0.01) > 20 and np.sum(steps < -0.01) > 20
    assert np.max(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)) < 0.2
