"""Goal-driven planning in the encoder's embedding space with a learned world model.

    from glasses_runtime.planner import (HierarchicalPlanner, MPCPlanner, PlaceGraph, goal_from_object,
                                         load_world_model_file)
    wm = load_world_model_file("models/world_model.pte")        # or a world_model.safetensors
    graph = PlaceGraph.from_memory(mem, model_id)
    planner = HierarchicalPlanner(wm, graph)
    planner.set_goal(goal_from_object(mem, "keys", model_id, wm.embed_dim))
    guidance = planner.step(z_now, pose_now)                      # Guidance(action, energy, subgoal, confidence)

Planning from the camera alone (token grids, no pose): ``LatentNavigator`` with a token world model
(``load_token_world_model_file``) and ``goal_from_views``. See docs/planner.md. Nothing here imports
training code.
"""

from glasses_runtime.planner.config import CEMConfig, EnergyConfig, MPCConfig, MPPIConfig
from glasses_runtime.planner.dynamics import (
    ModuleWorldModel,
    PteWorldModel,
    WorldModelFn,
    check_encoder,
    load_world_model_file,
)
from glasses_runtime.planner.errors import (
    EmptyPlaceGraphError,
    GoalDimensionError,
    GoalError,
    PlannerConfigError,
    PlannerError,
    UnknownGoalError,
    WorldModelMismatchError,
)
from glasses_runtime.planner.goals import (
    Goal,
    goal_from_embedding,
    goal_from_image,
    goal_from_keyframe,
    goal_from_object,
)
from glasses_runtime.planner.hierarchical import HierarchicalConfig, HierarchicalPlanner
from glasses_runtime.planner.kinematics import KinematicsConfig
from glasses_runtime.planner.mpc import Guidance, MPCPlanner
from glasses_runtime.planner.navigator import (
    LatentNavigator,
    NavigatorConfig,
    TokenKeyframes,
    goal_from_views,
)
from glasses_runtime.planner.place_graph import PlaceGraph, PlaceGraphConfig
from glasses_runtime.planner.token_dynamics import TokenWorldModelFn, load_token_world_model_file

__all__ = [
    "CEMConfig",
    "EmptyPlaceGraphError",
    "EnergyConfig",
    "Goal",
    "GoalDimensionError",
    "GoalError",
    "Guidance",
    "HierarchicalConfig",
    "HierarchicalPlanner",
    "KinematicsConfig",
    "LatentNavigator",
    "NavigatorConfig",
    "MPCConfig",
    "MPCPlanner",
    "MPPIConfig",
    "ModuleWorldModel",
    "PlaceGraph",
    "PlaceGraphConfig",
    "PlannerConfigError",
    "PlannerError",
    "PteWorldModel",
    "TokenKeyframes",
    "TokenWorldModelFn",
    "UnknownGoalError",
    "WorldModelFn",
    "WorldModelMismatchError",
    "check_encoder",
    "goal_from_embedding",
    "goal_from_image",
    "goal_from_keyframe",
    "goal_from_object",
    "goal_from_views",
    "load_token_world_model_file",
    "load_world_model_file",
]
