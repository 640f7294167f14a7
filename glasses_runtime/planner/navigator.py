"""Latent-only navigation: plan from the camera alone with the token world model.

    nav = LatentNavigator(token_world_model, TokenKeyframes.from_memory(mem, model_id))
    nav.set_goal(keyframe_id)                   # e.g. goal_from_views(...): the object's enrollment views
    while True:
        g = nav.step(reduce_tokens(tokens_now)) # the frame's reduced token grid -> Guidance
        if g.reached: break
        act(g.action)

No pose anywhere (unless ``pose_weight`` > 0 and poses are passed: the labelled upper bound). Each step:

1. **Place recognition** (``localize``): a discrete Bayes filter over the keyframes. The belief stays
   (``stay``) or spreads to graph neighbours, with a floor ``jump`` everywhere; each keyframe's
   likelihood is exp(-(grid distance - best) / ``temperature``). Ties (within ``tie_margin`` of the
   best belief) go to the node nearest the goal along the route.
2. **Map and route**: keyframes joined in time within a session, plus loop closures between distinctive
   look-alike keyframes (``_close_loops``); the subgoal is ``lookahead`` hops along the shortest route,
   kept until its view is reached (``reach_distance``), it falls behind, or ``subgoal_patience`` steps.
3. **MPC on tokens**: every sequence of H discrete actions (all A^H when they fit in the model's S
   candidates, else CEM) is rolled out by the token world model in ONE batched call. Energy
   ``subgoal`` (default): the smallest over steps of the predicted grid's distance to the subgoal's
   grid (+0.01 per step), over all cells or the best ``match_share`` of them; ``goal``: the same toward
   the final goal; ``value``: the route's cost-to-go read at the predicted grids (soft nearest keyframes
   within ``value_hops``) + ``step_penalty`` per step. The first action of the best sequence is taken.
4. **Arrival**: half the belief on the goal's node or its neighbours and the view within
   ``arrive_distance`` of the goal's. A forward/back move whose view changed less than
   ``blocked_distance`` was blocked (a wall): that action costs ``blocked_cost`` more from that view on.

Measured in MiniWorld it does not reach its goals yet (docs/planner.md says why).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import torch

from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.planner.config import CEMConfig
from glasses_runtime.planner.errors import PlannerConfigError, PlannerError, UnknownGoalError
from glasses_runtime.planner.kinematics import KinematicsConfig, pose_distance, predict_poses
from glasses_runtime.planner.memory_view import KeyframeSet
from glasses_runtime.planner.mpc import Guidance
from glasses_runtime.planner.optimizers import Categorical, cem
from glasses_runtime.planner.place_graph import PlaceGraph, PlaceGraphConfig
from glasses_runtime.planner.token_dynamics import TokenWorldModelFn

ACTION_NAMES = ("turn_left", "turn_right", "forward", "back")
ENERGIES = ("subgoal", "value", "goal")


@dataclass(frozen=True)
class NavigatorConfig:
    """Every field is described in the module doc, step by step. Distances are grid distances (1 - mean
    cosine over cells, in [0, 2]). horizon / samples must match an exported model's. pose_weight > 0
    adds the dead-reckoned pose cost toward the subgoal's position (metres; needs poses: an upper
    bound, not latent-only). seed: CEM's sampler when A^H > samples."""

    lookahead: int = 3
    temperature: float = 0.03
    stay: float = 0.4
    jump: float = 0.01
    tie_margin: float = 0.3
    subgoal_patience: int = 6
    reach_distance: float = 0.25
    link_distance: float = 0.08
    lookalike_distance: float = 0.15
    max_lookalikes: int = 3
    min_gap: int = 3
    step_penalty: float = 0.1
    value_hops: int = 6
    energy: str = "subgoal"
    match_share: float = 1.0
    arrive_distance: float = 0.45
    blocked_distance: float = 0.03
    blocked_cost: float = 1.0
    horizon: int = 3
    samples: int = 64
    pose_weight: float = 0.0
    action_names: tuple[str, ...] = ACTION_NAMES
    kinematics: KinematicsConfig = KinematicsConfig()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lookahead < 1 or self.horizon < 1 or self.samples < 1:
            raise PlannerConfigError("lookahead, horizon and samples must be >= 1")
        if not (
            0 <= self.stay <= 1 and 0 <= self.jump <= 1 and 0 <= self.tie_margin < 1 and self.temperature > 0
        ):
            raise PlannerConfigError("stay, jump must be in [0, 1], tie_margin in [0, 1), temperature > 0")
        if self.energy not in ENERGIES:
            raise PlannerConfigError(f"energy must be one of {ENERGIES}, got {self.energy!r}")
        if (
            min(
                self.step_penalty,
                self.arrive_distance,
                self.blocked_distance,
                self.blocked_cost,
                self.pose_weight,
            )
            < 0
        ):
            raise PlannerConfigError("step_penalty, arrive_distance, blocked_*, pose_weight must be >= 0")


@dataclass(frozen=True)
class TokenKeyframes:
    """The navigator's map: keyframes (ids, times, sessions, poses) and their reduced token grids
    float32 [N, h, w, Dt]."""

    keyframes: KeyframeSet
    tokens: np.ndarray

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.keyframes):
            raise PlannerError(f"{len(self.tokens)} token grids for {len(self.keyframes)} keyframes")

    @classmethod
    def from_memory(cls, mem: EpisodicMemory, model_id: str, dim: int | None = None) -> TokenKeyframes:
        """The keyframes of encoder ``model_id`` that have a stored token grid (memory's ``keyframe_table``)."""
        table = mem.keyframe_table(model_id, dim, with_tokens=True)
        keep = np.nonzero(table.has_tokens)[0]
        if table.tokens is None or len(keep) == 0:
            raise PlannerError(
                f"none of the {len(table)} keyframes of encoder {model_id[:12]} in {mem.path} has a token grid; record "
                "with an encoder that outputs 'tokens' (the default .pte does) and RuntimeOptions(keyframe_tokens=True)"
            )
        kf = KeyframeSet(
            table.ids[keep], table.t_ns[keep], table.session[keep], table.emb[keep], table.poses[keep]
        )
        return cls(kf, table.tokens[keep])


class LatentNavigator:
    def __init__(
        self, world_model: TokenWorldModelFn, keyframes: TokenKeyframes, config: NavigatorConfig | None = None
    ) -> None:
        self.cfg = c = config or NavigatorConfig()
        self.wm = world_model
        if world_model.samples is not None and world_model.samples != c.samples:
            raise PlannerConfigError(
                f"the world model scores {world_model.samples} candidates per call, the navigator asks {c.samples}; "
                "set NavigatorConfig(samples=...) to match"
            )
        if world_model.horizon is not None and world_model.horizon != c.horizon:
            raise PlannerConfigError(
                f"the world model unrolls {world_model.horizon} steps, the navigator asks {c.horizon}; set "
                "NavigatorConfig(horizon=...) to match"
            )
        if len(c.action_names) != world_model.action_dim:
            raise PlannerConfigError(
                f"the world model takes {world_model.action_dim} actions, {len(c.action_names)} names configured"
            )
        if len(keyframes.keyframes) == 0:
            raise PlannerError(
                "no keyframes to navigate by: record a walk with an encoder that outputs tokens"
            )
        self.tokens = np.asarray(keyframes.tokens, dtype=np.float32)
        self.states = world_model.state(self.tokens)  # [N, h*w, d], unit cells
        kf = keyframes.keyframes
        flat = self.states.reshape(len(self.states), -1)
        unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)
        self.graph = PlaceGraph(
            replace(kf, emb=unit.astype(np.float32), poses=np.full_like(kf.poses, np.nan)),
            PlaceGraphConfig(max_similar=0, step_cost_m=1.0),
        )
        self.loop_closures = self._close_loops()
        self.kf = kf
        self._build_filter()
        self.candidates = self._candidates()
        self.gen = torch.Generator().manual_seed(c.seed)
        self.goal_node: int | None = None
        self.route = None
        self.reset()

    def _candidates(self) -> torch.Tensor | None:
        """All A^H one-hot sequences when they fit in the model's S candidates (padded by repeats), else None (CEM)."""
        c, a = self.cfg, self.wm.action_dim
        if a**c.horizon > c.samples:
            return None
        seqs = list(itertools.product(range(a), repeat=c.horizon))
        seqs += [seqs[-1]] * (c.samples - len(seqs))
        return torch.nn.functional.one_hot(torch.tensor(seqs), a).float()

    def reset(self) -> None:
        self.history: deque[np.ndarray] = deque(maxlen=self.wm.context)
        self.node: int | None = None
        self._belief: np.ndarray | None = None
        self._blocked: list[tuple[np.ndarray, int]] = []
        self._last: tuple[np.ndarray, int] | None = None
        self._sub: int | None = None
        self._sub_steps = 0

    def set_goal(self, keyframe_id: int) -> None:
        if int(keyframe_id) not in self.graph.index_of:
            raise UnknownGoalError(
                f"keyframe {keyframe_id} is not among the navigator's keyframes (another encoder's, or without tokens); "
                "choose a goal keyframe recorded with this encoder"
            )
        self.goal_node = self.graph.index_of[int(keyframe_id)]
        self.route = self.graph.route_to(self.goal_node)
        self.reset()

    # ---- place recognition -------------------------------------------------------------------------------

    def _close_loops(self) -> int:
        """Visual edges (the wearer was here before): keyframes more than ``min_gap`` apart in time whose
        views are within ``link_distance``, both of them distinctive (each matches at most
        ``max_lookalikes`` keyframes within ``lookalike_distance``). A bare wall seen up close looks the
        same from everywhere; such views link nothing. -> edges added."""
        c = self.cfg
        n = len(self.states)
        flat = self.states.reshape(n, -1)
        dist = 1.0 - (flat @ flat.T) / self.states.shape[1]
        same = self.graph.kf.session[:, None] == self.graph.kf.session[None, :]
        apart = ~same | (np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) > c.min_gap)
        lookalikes = ((dist < c.lookalike_distance) & apart).sum(1)
        distinct = lookalikes <= c.max_lookalikes
        ok = (dist < c.link_distance) & apart & distinct[:, None] & distinct[None, :]
        added = 0
        for i, j in zip(*np.nonzero(np.triu(ok, 1)), strict=True):
            self.graph._link(int(i), int(j), 1.0)
            added += 1
        return added

    def _hops_from(self, start: int, limit: int) -> list[int]:
        """Nodes within ``limit`` graph hops of ``start`` (``start`` first)."""
        seen, frontier, order = {start}, [start], [start]
        for _ in range(limit):
            nxt = []
            for u in frontier:
                for v in self.graph.edges[u]:
                    if v not in seen:
                        seen.add(v)
                        nxt.append(v)
                        order.append(v)
            frontier = nxt
        return order

    def _build_filter(self) -> None:
        """Sparse neighbour lists of the place graph, for the localisation filter's motion step."""
        n = len(self.graph)
        src, dst = [], []
        for u in range(n):
            for v in self.graph.edges[u]:
                src.append(u)
                dst.append(v)
        self._src, self._dst = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
        deg = np.bincount(self._src, minlength=n).astype(np.float64)
        self._deg = np.maximum(deg, 1.0)

    def localize(self, state: np.ndarray) -> int:
        """The node the wearer is at, by a discrete Bayes filter over the place graph (views of MiniWorld's
        bare walls look alike from many places, so one frame is not enough; a sequence is). Motion: the
        belief stays (``stay``) or spreads to graph neighbours, with a floor ``jump`` everywhere.
        Observation: likelihood exp(-(distance - best) / ``temperature``) of the view against every
        keyframe. Nodes with belief within ``tie_margin`` of the best are ties; the one nearest the
        goal along the route wins, so the wearer does not flip between look-alike neighbours whose
        routes disagree."""
        c = self.cfg
        d = self.wm.state_distance(self.states, state[None]).astype(np.float64)
        like = np.exp(-(d - d.min()) / c.temperature)
        n = len(d)
        if self._belief is None:
            b = like
        else:
            prev = self._belief
            spread = np.bincount(self._dst, weights=prev[self._src] / self._deg[self._src], minlength=n)
            b = (c.stay * prev + (1 - c.stay) * spread) * (1 - c.jump) + c.jump / n
            b = b * like
        b = b / b.sum()
        self._belief = b
        ties = np.nonzero(b >= (1 - c.tie_margin) * b.max())[0]
        cost = self.route.cost[ties] if self.route is not None else np.zeros(len(ties))
        self.node = int(ties[np.lexsort((-b[ties], cost))[0]])
        return self.node

    # ---- planning ----------------------------------------------------------------------------------------

    def subgoal(self, here: int, state: np.ndarray) -> int:
        """``lookahead`` hops along the route from ``here``. A subgoal is kept (not re-chosen each step, which
        lets the wearer oscillate between two routes) until its view is reached (``reach_distance``), it is
        no longer ahead of ``here``, or ``subgoal_patience`` steps pass."""
        assert self.route is not None and self.goal_node is not None
        c = self.cfg
        sub = self._sub
        if sub is not None:
            self._sub_steps += 1
            reached = float(self.wm.state_distance(self.states[sub], state)) <= c.reach_distance
            ahead = self.route.cost[sub] < self.route.cost[here]
            if not reached and ahead and self._sub_steps <= c.subgoal_patience:
                return sub
        path = self.route.path(here)
        sub = path[min(c.lookahead, len(path) - 1)] if len(path) > 1 else self.goal_node
        self._sub, self._sub_steps = sub, 0
        return sub

    def _value_table(self, here: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For ``energy="value"``: the flattened states of the keyframes within ``value_hops`` of ``here``
        (and the goal) [K, h*w*d], and their route costs [K] (unreachable: the worst finite cost + 10)."""
        assert self.route is not None and self.goal_node is not None
        near = np.array(self._hops_from(here, self.cfg.value_hops) + [self.goal_node])
        cost = self.route.cost[near]
        finite = self.route.cost[np.isfinite(self.route.cost)]
        cost = np.where(np.isfinite(cost), cost, (finite.max() if len(finite) else 0.0) + 10)
        states = self.states[near].reshape(len(near), -1)
        return torch.from_numpy(states), torch.from_numpy(cost.astype(np.float32))

    def _near_goal_mass(self) -> float:
        """Belief that the wearer is at the goal's node or one of its graph neighbours."""
        assert self.goal_node is not None and self._belief is not None
        near = [self.goal_node, *self.graph.edges[self.goal_node]]
        return float(self._belief[near].sum())

    def _blocked_here(self, state: np.ndarray) -> list[int]:
        return [
            a for s, a in self._blocked if float(self.wm.state_distance(s, state)) < self.cfg.blocked_distance
        ]

    def step(self, tokens: np.ndarray, pose: tuple | None = None) -> Guidance:
        """Observe the current reduced token grid [h, w, Dt] (and, for the upper bound, the pose); -> Guidance."""
        if self.goal_node is None:
            raise PlannerError("no goal set; call set_goal(keyframe_id) first (goal_from_object gives one)")
        t0 = time.perf_counter()
        c = self.cfg
        tokens = np.asarray(tokens, dtype=np.float32)
        state = self.wm.state(tokens)
        if self._last is not None:
            prev, a = self._last
            if (
                c.action_names[a] in ("forward", "back")
                and float(self.wm.state_distance(prev, state)) < c.blocked_distance
            ):
                self._blocked.append((state, a))
        self.history.append(tokens)
        here = self.localize(state)
        node = self.subgoal(here, state)
        final = node == self.goal_node
        now = float(self.wm.state_distance(state, self.states[self.goal_node]))
        if now <= c.arrive_distance and self._belief is not None and self._near_goal_mass() >= 0.5:
            return Guidance(
                action=-1,
                action_name="stop",
                energy=now,
                subgoal=int(self.kf.ids[node]),
                confidence=1.0,
                reached=True,
                distance=now,
                plan_ms=(time.perf_counter() - t0) * 1e3,
            )
        h = list(self.history)
        context = np.stack([h[0]] * (self.wm.context - len(h)) + h)
        goal_tokens = self.tokens[self.goal_node if c.energy == "goal" else node]
        blocked = self._blocked_here(state)
        pose_target = self.kf.poses[node] if c.pose_weight > 0 and pose is not None else None
        value = self._value_table(here) if c.energy == "value" else None  # only that energy needs it

        def evaluate(actions: torch.Tensor) -> torch.Tensor:
            dist_goal, pred = self.wm.rollout(context, actions, goal_tokens)  # the one batched call
            s_, h_ = pred.shape[:2]
            if value is not None:  # expected route cost-to-go after each step
                near_t, cost_t = value
                d = 1.0 - pred.reshape(s_ * h_, -1) @ near_t.T / self.states.shape[1]  # [S*H, K]
                v = (torch.softmax(-d / c.temperature, dim=1) @ cost_t).reshape(s_, h_)
                per_step = c.step_penalty
            else:  # distance to the subgoal's (or the goal's) grid
                if c.match_share < 1.0:
                    # partial match: a turn brings in columns no model can predict, so score the best
                    # ``match_share`` of the cells (what the move should keep), not their mean
                    g = torch.from_numpy(self.wm.state(goal_tokens))  # [h*w, d]
                    cos = (pred * g).sum(-1)  # [S, H, h*w]
                    k = max(1, int(round(c.match_share * cos.shape[-1])))
                    dist_goal = 1.0 - cos.topk(k, dim=-1).values.mean(-1)
                v, per_step = dist_goal, 0.01
            if pose_target is not None and np.isfinite(pose_target).all():
                p0 = torch.tensor([pose[0], pose[2], pose[3]], dtype=torch.float32)
                gp = torch.tensor([pose_target[0], pose_target[2], float("nan")], dtype=torch.float32)
                poses = predict_poses(p0, actions, c.kinematics, discrete=True)
                v = v + c.pose_weight * pose_distance(poses, gp, 0.25)
            steps = torch.arange(1, h_ + 1, dtype=v.dtype)
            e = (v + per_step * steps).min(1).values
            if blocked:
                e = e + c.blocked_cost * actions[:, 0, blocked].sum(-1)
            return e

        with torch.inference_mode():
            if self.candidates is not None:
                e = evaluate(self.candidates)
                i = int(torch.argmin(e))
                best, energy = self.candidates[i], float(e[i])
                order = torch.argsort(e)[:8]
                confidence = float((self.candidates[order, 0].argmax(-1) == best[0].argmax()).float().mean())
            else:
                dist = Categorical(c.horizon, self.wm.action_dim, 0.02, self.gen)
                r = cem(dist, evaluate, CEMConfig(samples=c.samples, horizon=c.horizon))
                best, energy, confidence = r.actions, r.energy, r.confidence
        action = int(best[0].argmax())
        self._last = (state, action)
        return Guidance(
            action=action,
            action_name=c.action_names[action],
            energy=energy,
            subgoal=int(self.kf.ids[node]),
            confidence=confidence,
            reached=False,
            distance=now if final else float(self.wm.state_distance(state, self.states[node])),
            plan_ms=(time.perf_counter() - t0) * 1e3,
        )


def goal_from_views(
    keyframes: TokenKeyframes, view_tokens: np.ndarray, world_model: TokenWorldModelFn
) -> tuple[int, float]:
    """ "Where is my X", answered on token grids: the remembered keyframe whose grid is closest to any of
    the object's enrollment views (reduced grids [V, h, w, Dt]) -> (keyframe id, grid distance).

    Enrollment close-ups and the keyframe that saw the object squarely both hold it in the middle of the
    view, so the spatially aligned grids match where pooled vectors (which average the object away among
    the walls) do not: on 30 MiniWorld walks the best grid match was at the object (within 1 m, facing it)
    in 70 % of them, the best pooled match in 47 % (docs/planner.md). No ground truth is used."""
    views = np.asarray(view_tokens, dtype=np.float32)
    if views.ndim != 4 or len(views) == 0:
        raise PlannerError(f"enrollment views must be reduced token grids [V, h, w, Dt], got {views.shape}")
    states = world_model.state(keyframes.tokens)
    best = np.stack([world_model.state_distance(states, v[None]) for v in world_model.state(views)]).min(0)
    i = int(np.argmin(best))
    return int(keyframes.keyframes.ids[i]), float(best[i])
