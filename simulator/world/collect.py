"""Collect seeded exploration rollouts from the apartment into a folder of .npz shards.

    python -m simulator.world.collect --episodes 20 --steps 200 --out runs/world --seed 0 --size 96
    python -m simulator.world.collect --episodes 2 --steps 50 --out /tmp/w --policy waypoint --json

Episode i is a world drawn from seeds derived from ``(--seed, i)`` with ``numpy.random.SeedSequence``,
driven by the chosen exploration policy (``random`` or ``waypoint``). The folder format is described
in ``simulator.world.rollouts``. Failures exit 2 with one line on stderr naming the fix.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from tqdm import tqdm

from simulator.world.config import ActionMode, WorldConfig
from simulator.world.errors import WorldError
from simulator.world.exploration import POLICIES
from simulator.world.rollouts import Rollout, RolloutWriter


def episode_seeds(seed: int, episode: int) -> tuple[int, int]:
    """(world seed, policy seed) of episode ``episode`` in a collection started with ``seed``."""
    world, policy = np.random.SeedSequence([seed, episode]).generate_state(2)
    return int(world), int(policy)


def run_episode(env, policy_name: str, seed: int, steps: int, on_step=None) -> Rollout:
    """One rollout of ``steps`` actions; the env is reset to ``episode_seeds``' world seed."""
    from simulator.world.exploration import make_policy

    world_seed, policy_seed = seed
    frame, info = env.reset(seed=world_seed)
    policy = make_policy(policy_name, env, policy_seed)
    frames, poses, t_ns, actions, collided = [frame], [info["pose"]], [info["t_ns"]], [], []
    for _ in range(steps):
        action = policy.act()
        frame, _, _, _, info = env.step(action)
        policy.observe(info)
        frames.append(frame)
        poses.append(info["pose"])
        t_ns.append(info["t_ns"])
        actions.append(action)
        collided.append(info["collided"])
        if on_step is not None:
            on_step()
    discrete = env.config.action_mode is ActionMode.DISCRETE
    return Rollout(
        frames=np.stack(frames),
        actions=np.asarray([int(a) for a in actions], dtype=np.int64)
        if discrete
        else np.asarray(actions, dtype=np.float32).reshape(steps, 2),
        poses=np.asarray(poses, dtype=np.float64),
        t_ns=np.asarray(t_ns, dtype=np.int64),
        collided=np.asarray(collided, dtype=bool),
        seed=world_seed,
        objects=env.object_positions(),
    )


def collect(
    out: str | Path,
    config: WorldConfig,
    episodes: int,
    steps: int,
    seed: int = 0,
    policy: str = "random",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Collect ``episodes`` rollouts of ``steps`` actions into ``out``; returns a summary dict."""
    from simulator.world.env import ApartmentEnv

    if episodes < 1 or steps < 1:
        raise WorldError(f"--episodes ({episodes}) and --steps ({steps}) must be at least 1")
    if seed < 0:
        raise WorldError(f"--seed must be non-negative, got {seed}")
    if policy not in POLICIES:
        raise WorldError(f"unknown --policy {policy!r}; choose from {sorted(POLICIES)}")
    if policy == "waypoint" and config.action_mode is not ActionMode.DISCRETE:
        raise WorldError("--policy waypoint needs --mode discrete; use --policy random for continuous")
    if steps > config.max_steps:
        raise WorldError(f"--steps {steps} exceeds the config's max_steps {config.max_steps}")
    writer = RolloutWriter(out, config, policy, seed, overwrite=overwrite)
    env = ApartmentEnv(config)
    start = time.perf_counter()
    try:
        with tqdm(total=episodes * steps, unit="step", disable=not progress, file=sys.stderr) as bar:
            for i in range(episodes):
                bar.set_description(f"episode {i + 1}/{episodes}")
                writer.add(
                    run_episode(env, policy, episode_seeds(seed, i), steps, on_step=lambda: bar.update(1))
                )
    finally:
        env.close()
    writer.close()
    elapsed = time.perf_counter() - start
    return {
        "out": str(Path(out)),
        "episodes": episodes,
        "steps": steps,
        "frames": episodes * (steps + 1),
        "policy": policy,
        "seed": seed,
        "size": config.size,
        "seconds": round(elapsed, 3),
        "steps_per_s": round(episodes * steps / elapsed, 1),
    }


app = typer.Typer(add_completion=False, help="Collect seeded exploration rollouts from the 3D apartment.")


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Folder to write index.json and episode_*.npz into.")],
    episodes: Annotated[int, typer.Option(help="Number of episodes (each a new seeded world).")] = 10,
    steps: Annotated[int, typer.Option(help="Actions per episode (frames = steps + 1).")] = 200,
    seed: Annotated[int, typer.Option(help="Base seed; episode i uses numpy SeedSequence((seed, i)).")] = 0,
    size: Annotated[int, typer.Option(help="Square frame size in pixels.")] = 96,
    policy: Annotated[
        str,
        typer.Option(
            help="Exploration policy: random | waypoint | balanced (backs up often: world-model data)."
        ),
    ] = "random",
    mode: Annotated[str, typer.Option(help="Action mode: discrete | continuous.")] = "discrete",
    rows: Annotated[int, typer.Option(help="Rooms along z.")] = 2,
    cols: Annotated[int, typer.Option(help="Rooms along x.")] = 2,
    objects: Annotated[str, typer.Option(help="Comma-separated object names.")] = "key,ball,box",
    overwrite: Annotated[bool, typer.Option(help="Replace rollouts already in --out.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
) -> None:
    """Collect rollouts; prints a summary (or JSON with --json)."""
    try:
        config = WorldConfig(
            rows=rows,
            cols=cols,
            size=size,
            action_mode=mode,
            max_steps=max(steps, 1),
            objects=tuple(o.strip() for o in objects.split(",") if o.strip()),
        )
        summary = collect(out, config, episodes, steps, seed, policy, overwrite, progress=not json_out)
    except WorldError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"wrote {summary['episodes']} episodes x {summary['steps']} steps ({summary['frames']} frames, "
            f"{summary['size']}px) to {summary['out']} in {summary['seconds']} s ({summary['steps_per_s']} steps/s)"
        )


if __name__ == "__main__":
    app()
