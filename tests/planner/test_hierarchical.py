"""Place graph and hierarchical planning on a corridor world where the flat planner is blind.

Each corridor cell i has its own orthonormal embedding e_i, so every cell that is not the goal is
equally far from it: the energy of a flat MPC is flat beyond its horizon. Keyframes of a walk down
the corridor form the place graph; routing over it gives subgoals within reach of the horizon.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glasses_runtime.planner import (
    EmptyPlaceGraphError,
    Goal,
    HierarchicalConfig,
    HierarchicalPlanner,
    MPCConfig,
    MPCPlanner,
    PlaceGraph,
    PlaceGraphConfig,
    PlannerError,
    UnknownGoalError,
)
from glasses_runtime.planner.memory_view import KeyframeSet

N = 16


class Corridor:
    """Cells 0..N-1; actions: 0/1 turn (stay), 2 forward (i+1), 3 back (i-1); embedding of cell i = e_i."""

    embed_dim, action_dim, context = N, 4, 1
    samples = horizon = None

    def rollout(self, context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z, out = context[:, -1], []
        fwd = torch.roll(torch.eye(N), 1, dims=1)
        fwd[-1] = torch.eye(N)[-1]  # the corridor ends: forward at the last cell stays
        back = fwd.T.clone()
        back[0] = torch.eye(N)[0]
        for h in range(actions.shape[1]):
            a = actions[:, h]
            z = a[:, :2].sum(-1, keepdim=True) * z + a[:, 2:3] * (z @ fwd) + a[:, 3:4] * (z @ back)
            out.append(z)
        return torch.stack(out, 1)


def cell(z: np.ndarray) -> int:
    return int(np.argmax(z))


def keyframes(poses: bool = False, loop: bool = False) -> KeyframeSet:
    emb = np.eye(N, dtype=np.float32)
    if loop:  # the last cell looks like cell 2 (and is next to it): a shortcut the walk did not take
        emb[N - 1] = emb[2]
    p = np.full((N, 4), np.nan)
    if poses:
        p = np.stack([np.arange(N) * 0.25, np.full(N, 1.5), np.zeros(N), np.zeros(N)], 1)
    return KeyframeSet(
        ids=np.arange(100, 100 + N),
        t_ns=np.arange(N) * 250_000_000,
        session=np.ones(N, np.int64),
        emb=emb,
        poses=p,
    )


def test_route_follows_time_and_takes_visual_shortcuts():
    g = PlaceGraph(keyframes())
    assert g.num_edges == N - 1
    assert g.route_to(N - 1).path(0) == list(range(N))
    loop = PlaceGraph(keyframes(loop=True), PlaceGraphConfig(similarity=0.99))
    assert loop.route_to(N - 1).path(0) == [0, 1, 2, N - 1]


def test_localize_by_pose_and_by_embedding():
    g = PlaceGraph(keyframes(poses=True))
    assert g.localize(np.eye(N)[3], pose=(2.01, 1.5, 0.0, 0.0)) == 8  # pose wins when known
    assert g.localize(np.eye(N)[3]) == 3


def test_hierarchical_reaches_a_goal_the_flat_planner_cannot_see():
    wm = Corridor()
    goal = Goal(np.eye(N, dtype=np.float32)[N - 1], keyframe_id=100 + N - 1, label="end")
    cfg = MPCConfig(stop_distance=1e-3)

    flat = MPCPlanner(wm, cfg)
    z = np.eye(N, dtype=np.float32)[0]
    for _ in range(3 * N):
        g = flat.step(z, goal.embedding)
        if g.reached:
            break
        z = wm.rollout(torch.tensor(z)[None, None], torch.eye(4)[g.action][None, None])[0, 0].numpy()
    assert not g.reached  # beyond its horizon every cell is equally far from the goal

    planner = HierarchicalPlanner(wm, PlaceGraph(keyframes()), HierarchicalConfig(mpc=cfg))
    planner.set_goal(goal)
    z = np.eye(N, dtype=np.float32)[0]
    subgoals = []
    taken = 0
    for _ in range(3 * N):
        g = planner.step(z)
        subgoals.append(g.subgoal)
        if g.reached:
            break
        z = wm.rollout(torch.tensor(z)[None, None], torch.eye(4)[g.action][None, None])[0, 0].numpy()
        taken += 1
    assert g.reached and cell(z) == N - 1
    assert taken == N - 1  # the shortest way: forward every step
    assert subgoals[0] == 100 + 3  # lookahead 0.75 m at 0.25 m per edge


def test_graph_and_planner_errors_are_clear():
    empty = KeyframeSet(
        *(np.zeros((0,) + s, t) for s, t in [((), np.int64)] * 3 + [((N,), np.float32), ((4,), float)])
    )
    with pytest.raises(EmptyPlaceGraphError, match="record a walk"):
        PlaceGraph(empty)
    g = PlaceGraph(keyframes())
    with pytest.raises(UnknownGoalError, match="not in the place graph"):
        g.node_of_keyframe(7)
    planner = HierarchicalPlanner(Corridor(), g)
    with pytest.raises(PlannerError, match="set_goal"):
        planner.step(np.eye(N)[0])
