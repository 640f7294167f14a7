"""Typed, validated settings of the planner: the energy, the sequence optimisers and MPC.

Defaults are the ones the "find the object" benchmark ran with (benchmarks/bench_planner.py,
docs/planner.md): 64 samples x 5 steps x 3 iterations is one ~1-2 ms batched world-model call per
iteration for the 96-d pico world model on one core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glasses_runtime.planner.errors import PlannerConfigError
from glasses_runtime.planner.kinematics import KinematicsConfig

METRICS = ("l2", "l1")
AGGREGATIONS = ("mean", "min", "terminal")
OPTIMIZERS = ("cem", "mppi")
# The wearer's discrete movements, in the order the world model's one-hot actions use
# (the same as simulator.world.Action).
DISCRETE_ACTIONS = ("turn_left", "turn_right", "forward", "back")


@dataclass(frozen=True)
class EnergyConfig:
    """Energy of a candidate sequence (lower is better).

    metric: "l2" (Euclidean) or "l1" distance between each predicted embedding and the goal.
    aggregate: how the H per-step distances become one number: "mean" (get there early and stay),
        "min" (get there at some step) or "terminal" (be there after H steps).
    action_costs: discrete: one cost per action added per use (e.g. make walking backwards, awkward
        for a wearer, a little dearer); continuous: one weight per component on the mean squared
        action (in units of action_scale). Empty = no cost.
    pose_weight: weight of the optional pose cost, per metre-equivalent (0 = off, the default: pure
        latent planning). When > 0 and both the current pose and the goal's pose are known, each
        candidate is also dead-reckoned (``kinematics.py``) and its distance to the goal pose (metres
        + yaw_weight_m per radian) is aggregated like the embedding distance and added.
    blocked_cost: added to sequences whose first action is known to be blocked (collisions where
        known: the hierarchical planner marks a move that did not move the wearer).
    """

    metric: str = "l2"
    aggregate: str = "mean"
    action_costs: tuple[float, ...] = ()
    pose_weight: float = 0.0
    yaw_weight_m: float = 0.25
    blocked_cost: float = 1.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise PlannerConfigError(f"energy metric must be one of {METRICS}, got {self.metric!r}")
        if self.aggregate not in AGGREGATIONS:
            raise PlannerConfigError(
                f"energy aggregate must be one of {AGGREGATIONS}, got {self.aggregate!r}"
            )
        object.__setattr__(self, "action_costs", tuple(float(c) for c in self.action_costs))
        if any(c < 0 for c in self.action_costs):
            raise PlannerConfigError(f"action_costs must be >= 0, got {self.action_costs}")
        if self.pose_weight < 0 or self.yaw_weight_m < 0 or self.blocked_cost < 0:
            raise PlannerConfigError("pose_weight, yaw_weight_m and blocked_cost must be >= 0")


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method over H-step action sequences.

    samples: S candidate sequences per iteration (one batched world-model call evaluates all S);
    elites: how many of the lowest-energy candidates refit the sampling distribution;
    iterations: refits per replan; momentum: share of the old distribution kept at each refit
    (0 = replace, 0.9 = barely move); horizon: H actions per sequence; min_prob: floor of each
    discrete action's probability, so no action is ruled out for good; init_std: continuous
    sampling std at the start, as a fraction of each component's range.
    """

    samples: int = 64
    elites: int = 8
    iterations: int = 3
    momentum: float = 0.2
    horizon: int = 5
    min_prob: float = 0.02
    init_std: float = 0.5

    def __post_init__(self) -> None:
        _positive(self, ("samples", "elites", "iterations", "horizon"))
        if self.elites > self.samples:
            raise PlannerConfigError(f"elites ({self.elites}) cannot exceed samples ({self.samples})")
        _unit(self, ("momentum",))
        if not 0 <= self.min_prob < 0.25:
            raise PlannerConfigError(f"min_prob must be in [0, 0.25), got {self.min_prob}")
        if self.init_std <= 0:
            raise PlannerConfigError(f"init_std must be > 0, got {self.init_std}")


@dataclass(frozen=True)
class MPPIConfig:
    """Model-predictive path integral control: every sample counts, weighted by exp(-energy / temperature).

    temperature: in energy units (smaller = greedier); the other fields as in ``CEMConfig``.
    """

    samples: int = 64
    iterations: int = 3
    momentum: float = 0.2
    horizon: int = 5
    temperature: float = 0.02
    min_prob: float = 0.02
    init_std: float = 0.5

    def __post_init__(self) -> None:
        _positive(self, ("samples", "iterations", "horizon"))
        _unit(self, ("momentum",))
        if self.temperature <= 0:
            raise PlannerConfigError(f"MPPI temperature must be > 0, got {self.temperature}")
        if not 0 <= self.min_prob < 0.25:
            raise PlannerConfigError(f"min_prob must be in [0, 0.25), got {self.min_prob}")
        if self.init_std <= 0:
            raise PlannerConfigError(f"init_std must be > 0, got {self.init_std}")


@dataclass(frozen=True)
class MPCConfig:
    """Receding-horizon MPC: plan H steps, execute the first, shift the distribution, replan.

    optimizer: "cem" or "mppi". action_kind: "discrete" or "continuous"; action_names label the
    discrete actions in guidance (defaults: the wearer's four movements). action_low/high bound
    continuous actions (one value per component, in the world model's raw action units).
    stop_distance: the planner says "reached" when the current embedding is this close to the goal
    (same metric as the energy). kinematics: the action model of the optional pose cost. seed: the sampler's seed (planning is deterministic given it).
    """

    optimizer: str = "cem"
    cem: CEMConfig = field(default_factory=CEMConfig)
    mppi: MPPIConfig = field(default_factory=MPPIConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    kinematics: KinematicsConfig = field(default_factory=KinematicsConfig)
    action_kind: str = "discrete"
    action_names: tuple[str, ...] = DISCRETE_ACTIONS
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    stop_distance: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise PlannerConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.action_kind not in ("discrete", "continuous"):
            raise PlannerConfigError(
                f"action_kind must be 'discrete' or 'continuous', got {self.action_kind!r}"
            )
        if self.action_kind == "continuous" and (
            not self.action_low
            or len(self.action_low) != len(self.action_high)
            or any(lo >= hi for lo, hi in zip(self.action_low, self.action_high, strict=True))
        ):
            raise PlannerConfigError(
                "continuous planning needs action_low and action_high, one value per action component, low < high"
            )
        if self.stop_distance < 0:
            raise PlannerConfigError(f"stop_distance must be >= 0, got {self.stop_distance}")

    @property
    def samples(self) -> int:
        return self.cem.samples if self.optimizer == "cem" else self.mppi.samples

    @property
    def horizon(self) -> int:
        return self.cem.horizon if self.optimizer == "cem" else self.mppi.horizon


def _positive(cfg: object, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise PlannerConfigError(f"{type(cfg).__name__}.{name} must be a positive int, got {v!r}")


def _unit(cfg: object, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not 0 <= v < 1:
            raise PlannerConfigError(f"{type(cfg).__name__}.{name} must be in [0, 1), got {v!r}")
