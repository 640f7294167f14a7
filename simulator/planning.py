"""The planner behind the HUD: ``glasses_runtime.planner`` adapted to the session's ``(z, pose, goal)`` call.

    planner = SessionPlanner(load_world_model_file("edge_models/weights/world_model.pte"))
    Session(cfg, source, planner=planner).run()     # the session binds it to its memory and encoder

When the wearer sets a goal (key ``g``), the adapter builds a place graph from the session's memory
(the keyframes recorded so far, with their poses) and aims a ``HierarchicalPlanner`` at it: an
enrolled object's name -> its last sighting (``goal_from_object``); anything else -> the embedding of
the centre-box crop (``goal_from_embedding``, routed to the most similar remembered place). Each
frame then yields the planner's ``Guidance`` (action, energy, subgoal, confidence, reached) for the
HUD, and, with ``--autopilot planner`` in ``glasses-sim world``, the action the wearer takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from glasses_runtime.memory import EpisodicMemory
from glasses_runtime.planner import (
    EmptyPlaceGraphError,
    Guidance,
    HierarchicalConfig,
    HierarchicalPlanner,
    PlaceGraph,
    UnknownGoalError,
    check_encoder,
    goal_from_embedding,
    goal_from_object,
)
from simulator.embedding import Goal


class SessionPlanner:
    """Callable ``(z [D], pose | None, goal) -> Guidance`` over a world model and the session's memory."""

    def __init__(self, world_model: Any, config: HierarchicalConfig | None = None) -> None:
        self.world_model = world_model
        self.cfg = config or HierarchicalConfig().with_pose_cost()
        self.mem: EpisodicMemory | None = None
        self.model_id: str | None = None
        self._goal: Goal | None = None
        self._planner: HierarchicalPlanner | None = None
        self.nodes = 0

    def bind(self, mem: EpisodicMemory, encoder: Any) -> None:
        """Called by the session once its memory and encoder are open; checks they fit the world model."""
        check_encoder(self.world_model, encoder)
        self.mem, self.model_id = mem, encoder.model_id

    def _aim(self, goal: Goal) -> HierarchicalPlanner:
        if self.mem is None or self.model_id is None:
            raise RuntimeError("SessionPlanner.bind(memory, encoder) must be called before planning")
        graph = PlaceGraph.from_memory(self.mem, self.model_id)
        planner = HierarchicalPlanner(self.world_model, graph, self.cfg)
        try:
            target = goal_from_object(self.mem, goal.label, self.model_id, self.world_model.embed_dim)
        except UnknownGoalError:  # not an enrolled object (or never seen): the crop's embedding
            target = goal_from_embedding(goal.embedding, self.world_model.embed_dim, goal.label)
        planner.set_goal(target)
        self.nodes = len(graph.kf.ids)
        return planner

    def __call__(self, z: np.ndarray, pose: Any, goal: Goal) -> Guidance:
        if goal is not self._goal:
            self._goal, self._planner = goal, None
            self._planner = self._aim(goal)
        assert self._planner is not None
        return self._planner.step(z, pose)


__all__ = ["EmptyPlaceGraphError", "SessionPlanner"]
