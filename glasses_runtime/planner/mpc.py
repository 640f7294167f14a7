"""Receding-horizon model-predictive control in the encoder's embedding space.

    planner = MPCPlanner(ModuleWorldModel(model), MPCConfig())    # or PteWorldModel(PteEngine(...))
    g = planner.step(z_now, goal)      # z_now, goal: float32 [D] -> Guidance(action, energy, ...)

Each replan samples S candidate sequences of H actions from the optimiser's distribution, predicts
their embeddings with ONE batched world-model call per iteration (context [S, C, D], actions
[S, H, A] -> [S, H, D]), scores them with the energy (distance to the goal + costs) and refits.
The first action of the plan is returned; the distribution is shifted one step to warm-start the
next replan. The context is the last C observed embeddings (repeating the oldest until C are seen,
as in training).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from glasses_runtime.planner.config import MPCConfig
from glasses_runtime.planner.dynamics import WorldModelFn
from glasses_runtime.planner.energy import distance, sequence_energy
from glasses_runtime.planner.errors import GoalDimensionError, PlannerError, WorldModelMismatchError
from glasses_runtime.planner.kinematics import pose_distance, predict_poses
from glasses_runtime.planner.optimizers import Categorical, Gaussian, OptResult, cem, mppi


@dataclass(frozen=True)
class Guidance:
    """What the planner tells the wearer (and the HUD) now.

    action: discrete action index, or float32 [A] for continuous actions; action_name: its label
    ("turn_left", ...; "move" for continuous). energy: the plan's energy (lower is better; same units
    as distance). subgoal: keyframe id of the waypoint being approached (hierarchical), None for flat
    MPC. confidence in [0, 1]: agreement of the best candidates on the first action. reached: the
    current view is within stop_distance of the final goal. distance: current embedding to the
    (sub)goal. plan_ms: wall time of this replan.
    """

    action: int | np.ndarray
    action_name: str
    energy: float
    subgoal: int | None
    confidence: float
    reached: bool = False
    distance: float = float("nan")
    plan_ms: float = 0.0


def as_unit_vector(v: np.ndarray | torch.Tensor, dim: int, what: str) -> torch.Tensor:
    """[D] array -> L2-normalised float32 tensor; GoalDimensionError naming the fix if unusable."""
    t = torch.as_tensor(np.asarray(v, dtype=np.float32))
    if t.ndim != 1 or t.shape[0] != dim:
        raise GoalDimensionError(
            f"{what} has shape {tuple(t.shape)} but the world model works on [{dim}] embeddings; embed it with "
            "the encoder the world model was trained on"
        )
    n = float(t.norm())
    if not np.isfinite(n) or n == 0:
        raise GoalDimensionError(f"{what} is zero or not finite; pass a real embedding")
    return t / n


class MPCPlanner:
    """Flat receding-horizon planner (CEM or MPPI) toward one goal embedding."""

    def __init__(self, world_model: WorldModelFn, config: MPCConfig | None = None) -> None:
        self.cfg = config or MPCConfig()
        self.wm = world_model
        self._check_fit()
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        c = self.cfg
        if c.action_kind == "discrete":
            min_prob = c.cem.min_prob if c.optimizer == "cem" else c.mppi.min_prob
            self.dist: Categorical | Gaussian = Categorical(
                c.horizon, world_model.action_dim, min_prob, self.gen
            )
        else:
            init_std = c.cem.init_std if c.optimizer == "cem" else c.mppi.init_std
            low, high = torch.tensor(c.action_low), torch.tensor(c.action_high)
            self.dist = Gaussian(c.horizon, low, high, init_std, self.gen)
        self.history: deque[torch.Tensor] = deque(maxlen=world_model.context)
        self.last: OptResult | None = None

    def _check_fit(self) -> None:
        c, wm = self.cfg, self.wm
        fix = (
            "export the world model with matching export_samples/export_horizon or change the planner config"
        )
        if wm.samples is not None and wm.samples != c.samples:
            raise WorldModelMismatchError(
                f"the world model evaluates {wm.samples} samples per call, planner asks {c.samples}; {fix}"
            )
        if wm.horizon is not None and wm.horizon != c.horizon:
            raise WorldModelMismatchError(
                f"the world model unrolls {wm.horizon} steps, planner asks {c.horizon}; {fix}"
            )
        if c.action_kind == "discrete" and len(c.action_names) != wm.action_dim:
            raise WorldModelMismatchError(
                f"the world model takes {wm.action_dim} discrete actions but {len(c.action_names)} action_names are "
                "configured; pass one name per action"
            )
        if c.action_kind == "continuous" and len(c.action_low) != wm.action_dim:
            raise WorldModelMismatchError(
                f"the world model takes {wm.action_dim}-d actions but action_low/high have {len(c.action_low)} values"
            )
        if c.energy.action_costs and len(c.energy.action_costs) != wm.action_dim:
            raise WorldModelMismatchError(
                f"action_costs needs {wm.action_dim} values (one per action component), got {len(c.energy.action_costs)}"
            )

    @property
    def dim(self) -> int:
        return self.wm.embed_dim

    def reset(self) -> None:
        """Forget the observed context and the warm-start distribution (new episode or new goal)."""
        self.history.clear()
        self.dist.reset()
        self.last = None

    def observe(self, z: np.ndarray | torch.Tensor) -> None:
        """Append the embedding of the frame just seen (float32 [D])."""
        self.history.append(as_unit_vector(z, self.dim, "the observed embedding"))

    def context(self) -> torch.Tensor:
        """The last C observed embeddings, oldest first, padded with the oldest: [1, C, D]."""
        if not self.history:
            raise PlannerError("the planner has seen no frame yet; call observe(z) (or step) first")
        h = list(self.history)
        h = [h[0]] * (self.wm.context - len(h)) + h
        return torch.stack(h)[None]

    def plan(
        self,
        goal: np.ndarray | torch.Tensor,
        subgoal: int | None = None,
        final: bool = True,
        pose: tuple | np.ndarray | None = None,
        goal_pose: tuple | np.ndarray | None = None,
        blocked: tuple[int, ...] = (),
    ) -> Guidance:
        """Plan toward ``goal`` (float32 [D]) from the current context.

        final: whether it is the final goal (only then can the guidance say reached). pose, goal_pose:
        (x, y, z, yaw) of the wearer now and of the goal, used by the optional pose cost only
        (``EnergyConfig.pose_weight > 0`` and both known; a NaN goal yaw means any heading).
        blocked: discrete actions known to be blocked right now (a collision: the last move did not
        move the wearer); sequences starting with one cost ``EnergyConfig.blocked_cost`` more.
        """
        t0 = time.perf_counter()
        g = as_unit_vector(goal, self.dim, "the goal embedding")
        c = self.cfg
        ctx = self.context().expand(c.samples, -1, -1).contiguous()
        use_pose = (
            c.energy.pose_weight > 0
            and pose is not None
            and goal_pose is not None
            and np.isfinite(np.asarray(goal_pose, dtype=np.float64)[[0, 2]]).all()
        )
        if use_pose:
            p0 = torch.tensor([pose[0], pose[2], pose[3]], dtype=torch.float32)
            gp = torch.tensor([goal_pose[0], goal_pose[2], goal_pose[3]], dtype=torch.float32)

        def evaluate(actions: torch.Tensor) -> torch.Tensor:
            pred = self.wm.rollout(ctx, actions)  # the one batched call of this iteration
            pd = None
            if use_pose:
                poses = predict_poses(p0, actions, c.kinematics, discrete=c.action_kind == "discrete")
                pd = pose_distance(poses, gp, c.energy.yaw_weight_m)
            e = sequence_energy(pred, g, actions, c.energy, pd)
            if blocked:
                e = e + c.energy.blocked_cost * actions[:, 0, list(blocked)].sum(-1)
            return e

        with torch.inference_mode():
            result = (
                cem(self.dist, evaluate, c.cem) if c.optimizer == "cem" else mppi(self.dist, evaluate, c.mppi)
            )
            now = float(distance(self.history[-1], g, c.energy.metric))
        self.dist.shift()
        self.last = result
        first = result.actions[0]
        if c.action_kind == "discrete":
            action: int | np.ndarray = int(first.argmax())
            name = c.action_names[action]
        else:
            action, name = first.numpy().astype(np.float32), "move"
        return Guidance(
            action=action,
            action_name=name,
            energy=result.energy,
            subgoal=subgoal,
            confidence=result.confidence,
            reached=final and now <= c.stop_distance,
            distance=now,
            plan_ms=(time.perf_counter() - t0) * 1e3,
        )

    def step(
        self,
        z: np.ndarray | torch.Tensor,
        goal: np.ndarray | torch.Tensor,
        pose: tuple | np.ndarray | None = None,
        goal_pose: tuple | np.ndarray | None = None,
    ) -> Guidance:
        """observe(z), then plan(goal)."""
        self.observe(z)
        return self.plan(goal, pose=pose, goal_pose=goal_pose)
