"""Hierarchical planning: a route over remembered places, then MPC to each waypoint.

    graph = PlaceGraph.from_memory(mem, model_id)
    planner = HierarchicalPlanner(world_model, graph)
    planner.set_goal(goal_from_object(mem, "keys", model_id, graph_dim))
    while True:
        g = planner.step(z_now, pose_now)     # pose: (x, y, z, yaw) or None -> Guidance
        if g.reached: break

Each step localises the wearer on the place graph (by pose when known, else by embedding), follows
the shortest route to the goal's node, takes as subgoal the farthest node within
``lookahead_m`` along it (at least the next one), and runs the low-level MPC toward that keyframe's
embedding. Once at the goal's node (or when no route exists, e.g. an image goal far from anything
remembered) it plans to the goal embedding itself. ``reached`` means: when the wearer's pose and the
goal keyframe's pose are known, standing within ``arrive_m`` / ``arrive_deg`` of it; otherwise the
current view being within the MPC's stop_distance of the goal embedding. A move that did not move
the wearer (known pose unchanged) is remembered as blocked at that pose and costs
``EnergyConfig.blocked_cost`` there afterwards (collisions where known).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from glasses_runtime.planner.config import EnergyConfig, MPCConfig
from glasses_runtime.planner.dynamics import WorldModelFn
from glasses_runtime.planner.errors import PlannerConfigError, PlannerError
from glasses_runtime.planner.goals import Goal
from glasses_runtime.planner.mpc import Guidance, MPCPlanner, as_unit_vector
from glasses_runtime.planner.place_graph import PlaceGraph, Route

MOVE_EPS_M = 0.01  # a move shorter than this was blocked


@dataclass(frozen=True)
class HierarchicalConfig:
    """mpc: the low-level planner (energy aggregate "min": reach the subgoal at some step of the horizon;
    the stop test ends the walk there); lookahead_m: how far along the route the subgoal is taken
    (walked metres when poses are known, else route cost); arrive_m / arrive_deg: pose tolerance for "reached" when poses are known;
    subgoal_heading: whether the optional pose cost also asks for the heading of intermediate
    subgoals (off: only their position; the final goal's heading always counts). Without it the
    wearer can sit in a local minimum beside a waypoint, where every turn costs heading error.
    localize_radius_m: with a pose, the wearer is placed at the node nearest the goal (along the route)
    among the nodes this close. heading_within_m: the pose cost asks for the goal's heading only this
    close to the goal's position (position first, heading last).
    """

    mpc: MPCConfig = field(default_factory=lambda: MPCConfig(energy=EnergyConfig(aggregate="min")))
    lookahead_m: float = 0.75
    arrive_m: float = 0.15
    arrive_deg: float = 10.0
    subgoal_heading: bool = False
    localize_radius_m: float = 0.35
    heading_within_m: float = 0.15

    def __post_init__(self) -> None:
        if min(self.lookahead_m, self.arrive_m, self.localize_radius_m, self.heading_within_m) < 0:
            raise PlannerConfigError(
                "lookahead_m, arrive_m, localize_radius_m and heading_within_m must be >= 0"
            )
        if not 0 <= self.arrive_deg <= 180:
            raise PlannerConfigError(f"arrive_deg must be in [0, 180], got {self.arrive_deg}")

    def with_pose_cost(self, pose_weight: float = 2.0) -> HierarchicalConfig:
        """This config with the low-level MPC's dead-reckoned pose cost on (what meets the find-the-object target)."""
        return replace(self, mpc=replace(self.mpc, energy=replace(self.mpc.energy, pose_weight=pose_weight)))


class HierarchicalPlanner:
    def __init__(
        self, world_model: WorldModelFn, graph: PlaceGraph, config: HierarchicalConfig | None = None
    ) -> None:
        self.cfg = config or HierarchicalConfig()
        self.graph = graph
        if graph.kf.emb.shape[1] != world_model.embed_dim:
            raise PlannerError(
                f"the place graph holds {graph.kf.emb.shape[1]}-d keyframes but the world model works on "
                f"{world_model.embed_dim}-d embeddings; build both with the same encoder"
            )
        self.mpc = MPCPlanner(world_model, self.cfg.mpc)
        self.goal: Goal | None = None
        self.goal_node: int | None = None
        self.route: Route | None = None
        names = self.cfg.mpc.action_names
        self.move_actions = {names.index(n) for n in ("forward", "back") if n in names}
        self.reset()

    def set_goal(self, goal: Goal) -> None:
        """Aim at a goal: its keyframe's node if it is in the graph, else the most similar node."""
        emb = as_unit_vector(goal.embedding, self.mpc.dim, f"goal '{goal.label}'").numpy()
        if goal.keyframe_id is not None and goal.keyframe_id in self.graph.index_of:
            node = self.graph.node_of_keyframe(goal.keyframe_id)
        else:
            node = self.graph.nearest(emb)
        self.goal = replace(goal, embedding=emb)
        self.goal_node = node
        self.route = self.graph.route_to(node)
        self.reset()

    def reset(self) -> None:
        self.mpc.reset()
        self._collisions: list[tuple[float, float, float, int]] = []  # (x, z, yaw, action) that hit something
        self._last: tuple | None = None

    def _note_collision(self, pose: tuple | np.ndarray | None) -> None:
        """Remember a move (forward/back) that left the pose unchanged: it hit a wall or an object there."""
        if pose is None or self._last is None or self._last[1] is None:
            return
        action, before = self._last
        moved = math.hypot(pose[0] - before[0], pose[2] - before[2]) > MOVE_EPS_M
        if not moved and abs(pose[3] - before[3]) < 1e-6 and action in self.move_actions:
            self._collisions.append((float(pose[0]), float(pose[2]), float(pose[3]), int(action)))

    def _blocked_here(self, pose: tuple | np.ndarray | None) -> tuple[int, ...]:
        if pose is None:
            return ()
        return tuple(
            sorted(
                {
                    a
                    for x, z, yaw, a in self._collisions
                    if math.hypot(pose[0] - x, pose[2] - z) <= MOVE_EPS_M
                    and abs((pose[3] - yaw + math.pi) % (2 * math.pi) - math.pi) < math.radians(5)
                }
            )
        )

    def _arrived(self, pose: tuple | np.ndarray | None) -> bool:
        assert self.goal_node is not None
        gp = self.graph.kf.poses[self.goal_node]
        if pose is None or not self.graph.has_pose[self.goal_node]:
            return False
        dyaw = abs((pose[3] - gp[3] + math.pi) % (2 * math.pi) - math.pi)
        return math.hypot(pose[0] - gp[0], pose[2] - gp[2]) <= self.cfg.arrive_m and dyaw <= math.radians(
            self.cfg.arrive_deg
        )

    def localize(self, z: np.ndarray, pose: tuple | np.ndarray | None) -> int:
        """The node to route from. With a pose: of the nodes within localize_radius_m, the one closest to
        the goal along the route (so the wearer does not flip between neighbours whose routes disagree);
        otherwise the graph's nearest node (by pose, or by embedding without one)."""
        assert self.route is not None
        g = self.graph
        if pose is not None and g.has_pose.any():
            poses = g.kf.poses
            d = np.where(g.has_pose, np.hypot(poses[:, 0] - pose[0], poses[:, 2] - pose[2]), np.inf)
            near = np.nonzero(d <= self.cfg.localize_radius_m)[0]
            if len(near):
                return int(near[np.argmin(self.route.cost[near] + d[near])])
        return g.localize(z, pose)

    def subgoal(self, here: int) -> int:
        """The node to steer to from node ``here``: the farthest one on the route within lookahead_m, at
        least one hop. With poses, the distance is walked metres along the route and the subgoal is at
        least the first node in another place (turning on the spot is not progress toward a position);
        without, it is route cost."""
        assert self.route is not None and self.goal_node is not None
        path = self.route.path(here)
        if len(path) == 1:
            return self.goal_node  # at the goal node, or no route: aim at the goal itself
        kf = self.graph.kf
        if self.graph.has_pose[path].all():
            xz = kf.poses[path][:, [0, 2]]
            walked = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xz, axis=0).T))])
            k = int(np.nonzero(walked <= self.cfg.lookahead_m)[0][-1])
            if walked[k] <= MOVE_EPS_M:
                moving = np.nonzero(walked > MOVE_EPS_M)[0]
                k = int(moving[0]) if len(moving) else len(path) - 1
            return path[max(k, 1)]
        budget = self.route.cost[here] - self.cfg.lookahead_m
        pick = path[1]
        for n in path[1:]:
            if self.route.cost[n] < budget:
                break
            pick = n
        return pick

    def step(self, z: np.ndarray, pose: tuple | np.ndarray | None = None) -> Guidance:
        """Observe the current embedding (and pose), replan, and say what to do next."""
        if self.goal is None or self.goal_node is None:
            raise PlannerError(
                "no goal set; call set_goal(goal_from_object(...)) (or another goal_from_*) first"
            )
        t0 = time.perf_counter()
        self.mpc.observe(z)
        self._note_collision(pose)
        here = self.localize(np.asarray(self.mpc.history[-1]), pose)
        node = self.subgoal(here)
        final = node == self.goal_node
        target = self.goal.embedding if final else self.graph.kf.emb[node]
        target_pose = self.graph.kf.poses[node] if self.graph.has_pose[node] else None
        if final and target_pose is None:
            target_pose = self.goal.pose
        if target_pose is not None and not final and not self.cfg.subgoal_heading:
            target_pose = (target_pose[0], target_pose[1], target_pose[2], float("nan"))
        # position first, heading last: asking for both at once leaves the wearer shuffling beside the
        # goal, since every detour through another heading costs heading error
        if (
            target_pose is not None
            and final
            and pose is not None
            and math.hypot(pose[0] - target_pose[0], pose[2] - target_pose[2]) > self.cfg.heading_within_m
        ):
            target_pose = (target_pose[0], target_pose[1], target_pose[2], float("nan"))
        g = self.mpc.plan(
            target,
            subgoal=int(self.graph.kf.ids[node]),
            final=final,
            pose=pose,
            goal_pose=target_pose,
            blocked=self._blocked_here(pose),
        )
        self._last = (g.action, None if pose is None else tuple(float(v) for v in pose))
        # a known pose is a far better arrival test than a view match with a small encoder
        has_pose = pose is not None and bool(self.graph.has_pose[self.goal_node])
        reached = self._arrived(pose) if has_pose else final and g.reached
        return replace(g, reached=reached, plan_ms=(time.perf_counter() - t0) * 1e3)
