"""A place graph over remembered keyframes: the map the hierarchical planner routes on.

    graph = PlaceGraph.from_memory(mem, model_id)           # or PlaceGraph(KeyframeSet(...))
    here = graph.localize(z_now, pose_now)                  # node index
    route = graph.route_to(goal_node)                       # Dijkstra from the goal, once per goal
    path = route.path(here)                                 # [here, ..., goal] node indices

Nodes are keyframes (embedding, and pose when known). Edges join (a) keyframes adjacent in time
within one session (the wearer walked from one to the other) and (b) visually similar keyframes
(cosine >= ``similarity``; when both poses are known, only if they are within ``link_radius_m``, so
two look-alike rooms are not merged). Edges are undirected: every movement can be undone. Costs
are metres plus ``yaw_weight_m`` per radian of heading change when poses are known, else
``step_cost_m`` per temporal edge and ``step_cost_m * (1 + (1 - cos) / (1 - similarity))`` per
visual one. Building is O(N^2) in the number of keyframes (similarities); fine for the thousands of
keyframes of a day, not for a year: cap it with ``max_nodes`` (the newest are kept).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.planner.errors import EmptyPlaceGraphError, PlannerConfigError, UnknownGoalError
from glasses_runtime.planner.memory_view import KeyframeSet, keyframes_of


@dataclass(frozen=True)
class PlaceGraphConfig:
    """similarity: cosine for a visual edge; max_similar: visual edges per node (the strongest);
    max_gap_s: longest time gap, seconds, that still counts as temporal adjacency; link_radius_m:
    visual edges only between keyframes this close when both poses are known; yaw_weight_m: metres
    one radian of turning costs; step_cost_m: cost of an edge without poses; max_nodes: newest
    keyframes kept."""

    similarity: float = 0.9
    max_similar: int = 8
    max_gap_s: float = 5.0
    link_radius_m: float = 0.6
    yaw_weight_m: float = 0.25
    step_cost_m: float = 0.25
    max_nodes: int = 5000

    def __post_init__(self) -> None:
        if not -1 < self.similarity < 1:
            raise PlannerConfigError(f"similarity must be in (-1, 1), got {self.similarity}")
        if self.max_similar < 0 or self.max_nodes < 1:
            raise PlannerConfigError("max_similar must be >= 0 and max_nodes >= 1")
        if min(self.max_gap_s, self.link_radius_m, self.yaw_weight_m, self.step_cost_m) < 0:
            raise PlannerConfigError("max_gap_s, link_radius_m, yaw_weight_m and step_cost_m must be >= 0")


def _yaw_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


@dataclass
class Route:
    """Shortest paths from every node to one goal: cost [N] (inf if unreachable), next_hop [N] (-1)."""

    goal: int
    cost: np.ndarray
    next_hop: np.ndarray

    def reachable(self, node: int) -> bool:
        return bool(np.isfinite(self.cost[node]))

    def path(self, node: int) -> list[int]:
        """[node, ..., goal]; just [node] if the goal cannot be reached from it."""
        out = [node]
        while out[-1] != self.goal and self.next_hop[out[-1]] >= 0:
            out.append(int(self.next_hop[out[-1]]))
        return out


class PlaceGraph:
    def __init__(self, keyframes: KeyframeSet, config: PlaceGraphConfig | None = None) -> None:
        self.cfg = config or PlaceGraphConfig()
        if len(keyframes) == 0:
            raise EmptyPlaceGraphError(
                "the memory holds no keyframes for this encoder: record a walk first (the glasses must have seen "
                "a place to plan a route through it)"
            )
        if len(keyframes) > self.cfg.max_nodes:
            keep = np.argsort(keyframes.t_ns)[-self.cfg.max_nodes :]
            keep.sort()
            keyframes = KeyframeSet(
                *(getattr(keyframes, f)[keep] for f in ("ids", "t_ns", "session", "emb", "poses"))
            )
        self.kf = keyframes
        self.has_pose = ~np.isnan(keyframes.poses).any(axis=1)
        self.index_of = {int(k): i for i, k in enumerate(keyframes.ids)}
        self.edges: list[dict[int, float]] = [{} for _ in range(len(keyframes))]
        self._build()

    @classmethod
    def from_memory(
        cls,
        mem: EpisodicMemory,
        model_id: str,
        config: PlaceGraphConfig | None = None,
        dim: int | None = None,
    ) -> PlaceGraph:
        return cls(keyframes_of(mem, model_id, dim), config)

    def __len__(self) -> int:
        return len(self.kf)

    @property
    def num_edges(self) -> int:
        return sum(len(e) for e in self.edges) // 2

    def _cost(self, i: int, j: int, sim: float, visual: bool) -> float:
        c = self.cfg
        if self.has_pose[i] and self.has_pose[j]:
            p, q = self.kf.poses[i], self.kf.poses[j]
            return float(np.hypot(p[0] - q[0], p[2] - q[2]) + c.yaw_weight_m * _yaw_diff(p[3], q[3]))
        if visual:
            return c.step_cost_m * (1 + (1 - sim) / (1 - c.similarity))
        return c.step_cost_m

    def _link(self, i: int, j: int, cost: float) -> None:
        if i != j and cost < self.edges[i].get(j, np.inf):
            self.edges[i][j] = self.edges[j][i] = cost

    def _build(self) -> None:
        kf, c = self.kf, self.cfg
        gap_ns = c.max_gap_s * 1e9
        for i in range(len(kf) - 1):
            if kf.session[i] == kf.session[i + 1] and kf.t_ns[i + 1] - kf.t_ns[i] <= gap_ns:
                self._link(i, i + 1, self._cost(i, i + 1, 1.0, visual=False))
        if c.max_similar == 0 or len(kf) < 2:
            return
        sim = kf.emb @ kf.emb.T
        np.fill_diagonal(sim, -np.inf)
        xz = kf.poses[:, [0, 2]]
        near = np.hypot(*(xz[:, None, :] - xz[None, :, :]).transpose(2, 0, 1)) <= c.link_radius_m
        both = self.has_pose[:, None] & self.has_pose[None, :]
        ok = (sim >= c.similarity) & (~both | near)
        k = min(c.max_similar, len(kf) - 1)
        top = np.argpartition(-np.where(ok, sim, -np.inf), k - 1, axis=1)[:, :k]
        for i in range(len(kf)):
            for j in top[i]:
                if ok[i, j]:
                    self._link(i, int(j), self._cost(i, int(j), float(sim[i, j]), visual=True))

    # ---- queries ----------------------------------------------------------------------------------------

    def node_of_keyframe(self, keyframe_id: int) -> int:
        if int(keyframe_id) not in self.index_of:
            raise UnknownGoalError(
                f"keyframe {keyframe_id} is not in the place graph (not in memory, another encoder's, or older than "
                f"the newest {self.cfg.max_nodes}); rebuild the graph or pick a recent keyframe"
            )
        return self.index_of[int(keyframe_id)]

    def nearest(self, z: np.ndarray) -> int:
        """Node whose embedding is most similar to unit vector z [D]."""
        return int(np.argmax(self.kf.emb @ np.asarray(z, dtype=np.float32)))

    def localize(self, z: np.ndarray, pose: tuple | np.ndarray | None = None) -> int:
        """The node the wearer is at: by pose (distance + yaw_weight_m x heading difference) when the pose
        and node poses are known, else by embedding similarity."""
        if pose is None or not self.has_pose.any():
            return self.nearest(z)
        p = np.asarray(pose, dtype=np.float64)
        poses = self.kf.poses
        d = np.hypot(poses[:, 0] - p[0], poses[:, 2] - p[2]) + self.cfg.yaw_weight_m * _yaw_diff(
            poses[:, 3], p[3]
        )
        d = np.where(self.has_pose, d, np.inf)
        return int(np.argmin(d))

    def route_to(self, goal: int) -> Route:
        """Dijkstra from the goal over the undirected graph: every node's cost to the goal and next hop."""
        n = len(self.kf)
        cost = np.full(n, np.inf)
        nxt = np.full(n, -1, dtype=np.int64)
        cost[goal] = 0.0
        heap = [(0.0, goal)]
        while heap:
            c, u = heapq.heappop(heap)
            if c > cost[u]:
                continue
            for v, w in self.edges[u].items():
                if c + w < cost[v]:
                    cost[v] = c + w
                    nxt[v] = u
                    heapq.heappush(heap, (c + w, v))
        return Route(goal, cost, nxt)
