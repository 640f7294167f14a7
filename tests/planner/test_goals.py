"""Goals from memory, images and embeddings, and the clear errors bad goals give."""

from __future__ import annotations

import numpy as np
import pytest

from glasses_runtime.memory import EpisodicMemory, KeyframeIn
from glasses_runtime.planner import (
    GoalDimensionError,
    MPCPlanner,
    PlaceGraph,
    UnknownGoalError,
    goal_from_embedding,
    goal_from_image,
    goal_from_keyframe,
    goal_from_object,
)
from glasses_runtime.planner.memory_view import keyframes_of

D = 16
MODEL = "ab" * 32


@pytest.fixture
def mem(tmp_path):
    rng = np.random.default_rng(0)
    with EpisodicMemory.open(tmp_path / "m.db") as m:
        sid = m.start_session("sim")
        z = rng.standard_normal((10, D)).astype(np.float32)
        ids = m.add_keyframes(
            [KeyframeIn(i * 10**9, z[i], MODEL, pose=(0.25 * i, 1.5, 0.0, 0.0)) for i in range(10)], sid
        )
        m.enroll("keys", z[6:7] + 0.01 * rng.standard_normal((1, D)).astype(np.float32), MODEL)
        m.enroll("ghost", -z[:1], MODEL)  # enrolled, never seen
        m.test_ids, m.test_z = ids, z
        yield m


def test_goals_from_memory_carry_keyframe_and_pose(mem):
    g = goal_from_object(mem, "keys", MODEL, D)
    assert g.keyframe_id == mem.test_ids[6] and g.pose == pytest.approx((1.5, 1.5, 0.0, 0.0))
    assert np.allclose(g.embedding, mem.test_z[6] / np.linalg.norm(mem.test_z[6]), atol=0.02)
    k = goal_from_keyframe(mem, mem.test_ids[3], MODEL, D)
    assert k.keyframe_id == mem.test_ids[3] and k.pose[0] == pytest.approx(0.75)
    kf = keyframes_of(mem, MODEL, D)
    assert len(kf) == 10 and np.isfinite(kf.poses).all()
    graph = PlaceGraph.from_memory(mem, MODEL, dim=D)
    assert graph.route_to(graph.node_of_keyframe(mem.test_ids[9])).path(0) == list(range(10))


def test_unknown_objects_and_keyframes_name_the_fix(mem):
    with pytest.raises(UnknownGoalError, match="enroll"):
        goal_from_object(mem, "wallet", MODEL, D)
    with pytest.raises(UnknownGoalError, match="walk past it"):
        goal_from_object(mem, "ghost", MODEL, D, threshold=0.9)
    with pytest.raises(UnknownGoalError, match="no keyframe 999"):
        goal_from_keyframe(mem, 999, MODEL, D)


def test_wrong_dimensions_name_the_fix(mem):
    with pytest.raises(GoalDimensionError, match=r"\[16\] embeddings; embed it with the encoder"):
        goal_from_embedding(np.ones(8, np.float32), D)
    with pytest.raises(GoalDimensionError, match="zero or not finite"):
        goal_from_embedding(np.zeros(D, np.float32), D)

    class Embedder:
        dim = 8

        def embed(self, rgb):
            return np.ones(8, np.float32)

    with pytest.raises(GoalDimensionError, match="trained on"):
        goal_from_image(np.zeros((32, 32, 3), np.uint8), Embedder(), D)
    with pytest.raises(GoalDimensionError, match="records dimension"):
        keyframes_of(mem, MODEL, dim=8)
    with pytest.raises(GoalDimensionError, match="recorded with model"):
        keyframes_of(mem, "cd" * 32)

    from analytic import LinearSphereModel

    planner = MPCPlanner(LinearSphereModel(dim=D))
    planner.observe(np.ones(D, np.float32))
    with pytest.raises(GoalDimensionError, match="goal embedding"):
        planner.plan(np.ones(D + 1, np.float32))
