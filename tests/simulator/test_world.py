"""The apartment: config validation, layout, determinism, kinematics, walls, objects, frame source."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
from world_helpers import SMALL, free_spot_facing_wall

from simulator.world import (
    Action,
    ApartmentEnv,
    Pose,
    WorldConfig,
    WorldConfigError,
    WorldError,
    WorldFrameSource,
    near_and_facing,
)
from simulator.world.gl import intersect_circle_segs
from simulator.world.layout import generate_layout
from simulator.world.pose import wrap_angle

# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rows": 1, "cols": 1}, "at least 2 rooms"),
        ({"rows": 2.0}, "rows must be an int"),
        ({"size": 8}, "size=8 is out of range"),
        ({"objects": ("key", "unicorn")}, "unknown objects ['unicorn']"),
        ({"objects": ("key", "key")}, "repeat a name"),
        ({"objects": "key"}, "tuple of names"),
        ({"turn_deg": 25.0}, "does not divide 360"),
        ({"turn_deg": 90.0}, "facing_tolerance_deg"),
        ({"door_width_m": 0.7}, "door_width_m=0.7 is out of range"),
        ({"action_mode": "joystick"}, "use 'discrete' or 'continuous'"),
        ({"max_speed_mps": 4.0}, "pass through walls"),
        ({"forward_step_m": float("nan")}, "finite number"),
    ],
)
def test_bad_config_names_the_problem(kwargs, needle):
    with pytest.raises(WorldConfigError) as e:
        WorldConfig(**kwargs)
    assert needle in str(e.value)


def test_config_round_trips_through_dict():
    cfg = WorldConfig(rows=3, cols=2, objects=["ball", "duckie"], action_mode="continuous")
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(WorldConfigError, match="unknown WorldConfig fields"):
        WorldConfig.from_dict({**cfg.to_dict(), "colour": 1})


# --- layout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_layout_connects_every_room_through_doors_in_shared_walls(seed):
    cfg = WorldConfig(rows=3, cols=3, extra_door_prob=0.3)
    layout = generate_layout(cfg, np.random.default_rng(seed))
    assert len(layout.rooms) == 9
    adj = {r.index: set() for r in layout.rooms}
    for d in layout.doors:
        a, b = layout.rooms[d.a], layout.rooms[d.b]
        lo, hi = d.span
        assert math.isclose(hi - lo, cfg.door_width_m)
        if d.axis == "x":
            assert a.row == b.row and d.wall == a.max_x == b.min_x and a.min_z < lo < hi < a.max_z
        else:
            assert a.col == b.col and d.wall == a.max_z == b.min_z and a.min_x < lo < hi < a.max_x
        adj[d.a].add(d.b)
        adj[d.b].add(d.a)
    seen, todo = {0}, deque([0])
    while todo:
        for n in adj[todo.popleft()] - seen:
            seen.add(n)
            todo.append(n)
    assert seen == set(range(9))
    assert generate_layout(cfg, np.random.default_rng(seed)) == layout


# --- determinism and frames --------------------------------------------------------------------

ACTIONS = (
    [Action.FORWARD] * 4 + [Action.TURN_LEFT] * 3 + [Action.FORWARD] * 3 + [Action.TURN_RIGHT, Action.BACK]
)


def _rollout(env: ApartmentEnv, seed: int) -> tuple[list[np.ndarray], list[Pose]]:
    frame, info = env.reset(seed=seed)
    frames, poses = [frame], [info["pose"]]
    for a in ACTIONS:
        frame, _, _, _, info = env.step(a)
        frames.append(frame)
        poses.append(info["pose"])
    return frames, poses


def test_same_seed_gives_identical_frames_and_poses_across_instances(env):
    other = ApartmentEnv(SMALL)
    try:
        f1, p1 = _rollout(env, seed=11)
        f2, p2 = _rollout(other, seed=11)
        _rollout(other, seed=12)  # a different world in between must not leak into the next reset
        f3, p3 = _rollout(other, seed=11)
    finally:
        other.close()
    assert p1 == p2 == p3
    for a, b, c in zip(f1, f2, f3, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_different_seeds_give_different_worlds(env):
    env.reset(seed=1)
    first = (env.layout, env.object_positions(), env.pose)
    env.reset(seed=2)
    assert (env.layout, env.object_positions(), env.pose) != first


def test_frames_are_rgb_uint8_at_configured_size_and_show_the_scene(env):
    frame, info = env.reset(seed=3)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # a rendered room, not a blank buffer
    turned, *_ = env.step(Action.TURN_LEFT)
    assert not np.array_equal(frame, turned)
    assert isinstance(info["pose"], Pose) and info["pose"].y == pytest.approx(1.5)
    assert env.observation_space.contains(frame)


# --- kinematics --------------------------------------------------------------------------------


def _open_spot(env: ApartmentEnv) -> tuple[float, float]:
    """A free room centre with 0.6 m of free space around it."""
    for room in env.layout.rooms:
        x, z = room.center
        ring = [(x + 0.6 * math.cos(a), z + 0.6 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 16)]
        if env.nav.is_free(x, z) and all(env.nav.is_free(*p) for p in ring):
            return x, z
    raise AssertionError("no open room centre")


def test_discrete_actions_move_along_yaw_and_turn_by_the_configured_angle(env):
    env.reset(seed=4)
    x, z = _open_spot(env)
    yaw = 0.7
    env.set_pose(x, z, yaw)
    cfg = env.config
    _, _, _, _, info = env.step(Action.FORWARD)
    p = info["pose"]
    assert (p.x, p.z) == pytest.approx(
        (x + cfg.forward_step_m * math.cos(yaw), z - cfg.forward_step_m * math.sin(yaw))
    )
    assert p.yaw == pytest.approx(yaw) and not info["collided"]
    _, _, _, _, info = env.step(Action.BACK)
    assert (info["pose"].x, info["pose"].z) == pytest.approx((x, z))
    _, _, _, _, info = env.step(Action.TURN_LEFT)
    assert wrap_angle(info["pose"].yaw - yaw) == pytest.approx(math.radians(cfg.turn_deg))
    assert (info["pose"].x, info["pose"].z) == pytest.approx((x, z))
    for _ in range(3):
        _, _, _, _, info = env.step(Action.TURN_RIGHT)
    assert wrap_angle(info["pose"].yaw - yaw) == pytest.approx(-2 * math.radians(cfg.turn_deg))
    assert -math.pi < info["pose"].yaw <= math.pi


def test_time_advances_by_dt_and_truncates_at_max_steps():
    cfg = WorldConfig(size=16, max_steps=3, dt_s=0.1)
    with WorldFrameSource(cfg, seed=0, policy="random") as src:
        frames = list(src)
    assert [f.t_ns for f in frames] == [0, 100_000_000, 200_000_000, 300_000_000]
    assert frames[0].action is None and all(f.action is not None for f in frames[1:])
    assert all(f.image.shape == (16, 16, 3) for f in frames)


def test_continuous_actions_integrate_speed_and_turn_rate_over_dt():
    cfg = WorldConfig(
        size=16, action_mode="continuous", dt_s=0.25, max_speed_mps=1.0, max_turn_rate_deg_s=90.0
    )
    env = ApartmentEnv(cfg)
    try:
        env.reset(seed=5)
        x, z = _open_spot(env)
        env.set_pose(x, z, 0.0)
        _, _, _, _, info = env.step([0.8, 60.0])  # turn 15 degrees left, then 0.2 m along the new heading
        yaw = math.radians(15.0)
        assert info["pose"].yaw == pytest.approx(yaw)
        assert (info["pose"].x, info["pose"].z) == pytest.approx(
            (x + 0.2 * math.cos(yaw), z - 0.2 * math.sin(yaw))
        )
        _, _, _, _, info = env.step(np.array([5.0, -500.0]))  # clipped to 1 m/s and -90 deg/s
        yaw2 = yaw - math.radians(22.5)
        assert info["pose"].yaw == pytest.approx(yaw2)
        assert info["t_ns"] == 500_000_000
        for bad in ([1.0], [float("nan"), 0.0], "fast", Action.FORWARD):
            with pytest.raises(WorldConfigError, match="continuous action"):
                env.step(bad)
    finally:
        env.close()


def test_bad_discrete_actions_are_rejected(env):
    env.reset(seed=0)
    for bad in (4, -1, 1.5, [0.3, 0.0], True):
        with pytest.raises(WorldConfigError, match="discrete action"):
            env.step(bad)


def test_walls_block_movement(env):
    env.reset(seed=6)
    x, z, yaw, wall_x = free_spot_facing_wall(env)
    env.set_pose(x, z, yaw)
    collided = []
    for _ in range(8):  # 2 m of trying against a wall 1 m away
        _, _, _, _, info = env.step(Action.FORWARD)
        collided.append(info["collided"])
        assert info["pose"].x >= wall_x + 0.4 - 1e-9  # the agent's disc never enters the wall
    assert collided[:2] == [False, False] and collided[-1]
    assert info["pose"].z == pytest.approx(z)
    with pytest.raises(WorldError, match="overlaps"):
        env.set_pose(0.1, z, 0.0)


# --- objects -----------------------------------------------------------------------------------


def test_objects_are_placed_reachably_inside_rooms(env):
    for seed in range(5):
        env.reset(seed=seed)
        assert env.object_names == SMALL.objects
        for name, (ox, oy, oz) in env.object_positions().items():
            assert oy == 0.0
            assert env.layout.room_at(ox, oz) is not None
            # the object's footprint is clear of every wall segment
            assert not intersect_circle_segs(np.array([ox, 0.0, oz]), env.object_radius(name), env.wall_segs)
            assert env.object_radius(name) <= 0.45
            # and its goal region is reachable from the agent's start on the navigation grid
            reach = env.nav.flood_fill(env.pose.x, env.pose.z)
            assert (env.nav.disc_mask(ox, oz, env.config.reach_m) & reach).any()
    with pytest.raises(WorldError, match="unknown object 'unicorn'"):
        env.object_position("unicorn")


def _green_fraction(frame: np.ndarray) -> float:
    f = frame.astype(int)
    h, w, _ = f.shape
    c = f[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return float(((c[..., 1] > c[..., 0] + 40) & (c[..., 1] > c[..., 2] + 40)).mean())


def test_the_box_is_rendered_where_the_helper_says():
    """Stand 1.5 m from the green box's reported position: facing it, the view centre is green;
    facing away, it is not."""
    env = ApartmentEnv(WorldConfig(size=64, objects=("box",)))
    try:
        for seed in range(3):
            env.reset(seed=seed)
            bx, _, bz = env.object_position("box")
            for a in np.linspace(0, 2 * math.pi, 24, endpoint=False):
                x, z = bx + 1.5 * math.cos(a), bz + 1.5 * math.sin(a)
                if env.nav.is_free(x, z) and env.layout.room_at(x, z) == env.layout.room_at(bx, bz):
                    break
            else:
                continue
            facing = math.atan2(-(bz - z), bx - x)
            env.set_pose(x, z, facing)
            assert near_and_facing(env.pose, (bx, bz), reach_m=1.6, facing_tolerance_deg=1.0)
            toward = _green_fraction(env.render_frame())
            env.set_pose(x, z, facing + math.pi)
            away = _green_fraction(env.render_frame())
            assert toward > 0.05 and away < 0.01, (seed, toward, away)
            return
        pytest.fail("no free spot 1.5 m from the box in 3 seeds")
    finally:
        env.close()


def test_near_and_facing_geometry():
    p = Pose(0.0, 1.5, 0.0, 0.0)  # facing +x
    assert near_and_facing(p, (0.9, 0.0), 1.0, 20.0)
    assert not near_and_facing(p, (1.1, 0.0), 1.0, 20.0)  # too far
    assert not near_and_facing(p, (0.0, -0.9), 1.0, 20.0)  # 90 degrees to the left (z points south)
    assert near_and_facing(Pose(0.0, 1.5, 0.0, math.pi / 2), (0.0, -0.9), 1.0, 20.0)
    assert near_and_facing(Pose(0.0, 1.5, 0.0, math.pi), (-0.5, 0.1), 1.0, 20.0)  # across the +-pi seam


def test_no_display_without_headless_is_a_clear_render_error():
    """With headless off and no X display, loading the world fails with RenderError naming the fix
    (pyglet opens its context when miniworld is imported, so the error comes on first use of
    ApartmentEnv; run in a subprocess because pyglet's choice is made once per process)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM")
    }
    env["GLASSES_WORLD_HEADLESS"] = "0"
    code = (
        "from simulator.world import RenderError, WorldConfig\n"
        "try:\n    from simulator.world import ApartmentEnv\n    ApartmentEnv(WorldConfig(size=16))\n"
        "except RenderError as e:\n    print('RenderError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("RenderError: OpenGL could not start")
    assert "libegl1" in out.stdout and "xvfb-run" in out.stdout
