"""WorldFrameSource: the apartment as a camera, yielding frames in the runtime's Frame contract.

    with WorldFrameSource(WorldConfig(size=96), seed=0, policy="random", max_frames=100) as src:
        for frame in src:
            frame.t_ns, frame.image, frame.pose    # int, uint8 [H, W, 3], Pose(x, y, z, yaw)

Frames carry ``t_ns`` (simulated time: monotonic, +``dt_s`` per step, first frame 0), ``image`` and
``pose``; ``action`` is the action that led to the frame (None for the first). Standalone: nothing
here imports the runtime, which adapts these frames to its own type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.world.config import WorldConfig
from simulator.world.env import ApartmentEnv
from simulator.world.errors import WorldConfigError
from simulator.world.exploration import make_policy
from simulator.world.pose import Pose


@dataclass(frozen=True)
class WorldFrame:
    """t_ns: simulated ns since reset; image: RGB uint8 [H, W, 3]; pose: ground truth; action: the
    action taken just before this frame (None for the first frame); collided: that action was blocked."""

    t_ns: int
    image: np.ndarray
    pose: Pose
    action: Any = None
    collided: bool = False


class WorldFrameSource:
    """Iterates frames from a seeded world driven by ``policy`` (a name from exploration.POLICIES, or
    a callable ``(env) -> action``), for at most ``max_frames`` frames (None: until truncation)."""

    def __init__(
        self,
        config: WorldConfig | None = None,
        *,
        seed: int = 0,
        policy: str | Callable[[ApartmentEnv], Any] = "random",
        max_frames: int | None = None,
        env: ApartmentEnv | None = None,
    ) -> None:
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise WorldConfigError(f"max_frames must be a positive int or None, got {max_frames!r}")
        self.env = env if env is not None else ApartmentEnv(config)
        self._owns_env = env is None
        self.seed = seed
        self.max_frames = max_frames
        self._policy_spec = policy

    def __iter__(self) -> Iterator[WorldFrame]:
        env = self.env
        image, info = env.reset(seed=self.seed)
        if callable(self._policy_spec):
            act, observe = (lambda: self._policy_spec(env)), (lambda info: None)
        else:
            p = make_policy(self._policy_spec, env, seed=self.seed)
            act, observe = p.act, p.observe
        yield WorldFrame(t_ns=info["t_ns"], image=image, pose=info["pose"])
        count = 1
        while self.max_frames is None or count < self.max_frames:
            action = act()
            image, _, terminated, truncated, info = env.step(action)
            observe(info)
            yield WorldFrame(info["t_ns"], image, info["pose"], action, info["collided"])
            count += 1
            if terminated or truncated:
                return

    def close(self) -> None:
        if self._owns_env:
            self.env.close()

    def __enter__(self) -> WorldFrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
