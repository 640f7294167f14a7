"""The low-level planner on analytic world models: it finds the optimal actions, CEM improves over
iterations, MPPI and continuous actions work, and every iteration is one batched world-model call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from analytic import LinearSphereModel, e

from glasses_runtime.planner import (
    CEMConfig,
    EnergyConfig,
    MPCConfig,
    MPCPlanner,
    MPPIConfig,
    PlannerConfigError,
    WorldModelMismatchError,
)
from glasses_runtime.planner.optimizers import Categorical, cem


def test_cem_finds_the_optimal_discrete_sequence():
    wm = LinearSphereModel()
    z0 = e(8, 0)
    goal = wm.goal_after(z0, [2, 2, 0])  # two forwards and one left turn: order does not matter at the end
    cfg = MPCConfig(
        cem=CEMConfig(samples=64, elites=6, iterations=4, horizon=3),
        energy=EnergyConfig(aggregate="terminal"),
    )
    planner = MPCPlanner(wm, cfg)
    wm.calls.clear()
    g = planner.step(z0, goal)
    plan = planner.last.actions.argmax(-1).tolist()
    assert sorted(plan) == [0, 2, 2]
    assert g.action in (0, 2) and g.action_name in ("turn_left", "forward")
    assert g.energy == pytest.approx(0.0, abs=1e-5)
    assert 0.0 <= g.confidence <= 1.0
    # one batched call of all samples per iteration
    assert wm.calls == [(64, 3, 4)] * 4


def test_closed_loop_mpc_reaches_the_goal_and_says_so():
    wm = LinearSphereModel()
    z = e(8, 0)
    goal = wm.goal_after(
        z, [3, 3, 1, 1]
    )  # 4 steps away (normalising per step makes the order matter a little)
    planner = MPCPlanner(wm, MPCConfig(stop_distance=0.01))
    taken = 0
    for _ in range(12):
        g = planner.step(z, goal)
        if g.reached:
            break
        z = wm.goal_after(z, [g.action])  # the analytic world is its own ground truth
        taken += 1
    assert g.reached and taken == 4  # the optimum: 4 actions, none wasted


def test_cem_energy_never_gets_worse_and_elites_improve():
    torch.manual_seed(0)
    wm = LinearSphereModel(dim=12, action_dim=4, step=0.07)
    z0 = e(12, 0)
    goal = wm.goal_after(z0, [2, 2, 2, 3, 0, 0, 2, 1])
    ctx = z0[None, None].expand(48, 1, 12)
    dist = Categorical(8, 4, 0.01, torch.Generator().manual_seed(1))

    def evaluate(actions):
        return torch.linalg.norm(wm.rollout(ctx, actions)[:, -1] - goal, dim=-1)

    res = cem(dist, evaluate, CEMConfig(samples=48, elites=6, iterations=6, horizon=8, momentum=0.1))
    b = res.best_per_iteration
    assert all(later <= earlier for earlier, later in zip(b, b[1:], strict=False))
    assert res.elite_mean_per_iteration[-1] < res.elite_mean_per_iteration[0]
    assert b[-1] < b[0]


def test_mppi_finds_the_first_action():
    wm = LinearSphereModel()
    z0 = e(8, 0)
    goal = wm.goal_after(z0, [1, 1, 1])
    planner = MPCPlanner(
        wm, MPCConfig(optimizer="mppi", mppi=MPPIConfig(samples=64, horizon=3, temperature=0.01))
    )
    assert planner.step(z0, goal).action == 1


def test_continuous_cem_recovers_the_action():
    wm = LinearSphereModel(action_dim=2, step=0.1)
    z0 = e(8, 0)
    a_star = torch.tensor([0.5, -0.3])
    goal = wm.goal_after(z0, [a_star, a_star])
    cfg = MPCConfig(
        action_kind="continuous",
        action_low=(-1.0, -1.0),
        action_high=(1.0, 1.0),
        cem=CEMConfig(samples=128, elites=12, iterations=8, horizon=2, momentum=0.0),
        energy=EnergyConfig(aggregate="terminal"),
    )
    planner = MPCPlanner(wm, cfg)
    g = planner.step(z0, goal)
    assert isinstance(g.action, np.ndarray) and g.action.shape == (2,) and g.action_name == "move"
    # the terminal state depends (almost only) on the sum of the two actions
    assert torch.allclose(planner.last.actions.sum(0), 2 * a_star, atol=0.1)
    assert g.energy < 0.01


def test_config_and_fit_errors_name_the_fix():
    with pytest.raises(PlannerConfigError, match="elites"):
        CEMConfig(samples=4, elites=8)
    with pytest.raises(PlannerConfigError, match="metric"):
        EnergyConfig(metric="cosine")
    with pytest.raises(PlannerConfigError, match="action_low"):
        MPCConfig(action_kind="continuous")
    wm = LinearSphereModel()
    wm.samples = 32
    with pytest.raises(WorldModelMismatchError, match="export_samples"):
        MPCPlanner(wm, MPCConfig())
    with pytest.raises(WorldModelMismatchError, match="action_costs"):
        MPCPlanner(LinearSphereModel(), MPCConfig(energy=EnergyConfig(action_costs=(1.0,))))


def test_l1_energy_and_action_costs_change_the_choice():
    wm = LinearSphereModel()
    z0 = e(8, 0)
    # goal one step along axis 3 (action 2); a big cost on action 2 makes standing still-ish cheaper
    goal = wm.goal_after(z0, [2])
    free = MPCPlanner(
        wm, MPCConfig(energy=EnergyConfig(metric="l1", aggregate="terminal"), cem=CEMConfig(horizon=1))
    )
    assert free.step(z0, goal).action == 2
    costly = MPCPlanner(
        wm,
        MPCConfig(
            energy=EnergyConfig(metric="l1", aggregate="terminal", action_costs=(0.0, 0.0, 5.0, 0.0)),
            cem=CEMConfig(horizon=1),
        ),
    )
    assert costly.step(z0, goal).action != 2
