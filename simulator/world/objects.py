"""The objects an apartment can hold: an explicit registry from name to how it looks and its size.

    OBJECT_KINDS["key"].radius_m     # footprint radius, metres (collision disc)
    entity = make_entity("ball")     # a miniworld entity, ready for ``place_entity``

All footprints are at most 0.45 m in radius, so that with miniworld's 0.4 m agent the default
"within 1 m of the object" goal is always reachable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectKind:
    """mesh: a miniworld mesh name, or None for a coloured box; height_m: metres; color for boxes."""

    name: str
    mesh: str | None
    height_m: float
    color: str = ""


OBJECT_KINDS: dict[str, ObjectKind] = {
    k.name: k
    for k in (
        ObjectKind("key", "key_yellow", 0.35),
        ObjectKind("ball", "ball_red", 0.5),
        ObjectKind("box", None, 0.5, color="green"),
        ObjectKind("medkit", "medkit", 0.4),
        ObjectKind("duckie", "duckie", 0.4),
        ObjectKind("potion", "potion", 0.4),
        ObjectKind("cone", "cone", 0.5),
        ObjectKind("barrel", "barrel", 0.6),
        ObjectKind("chair", "office_chair", 0.9),
    )
}


def make_entity(name: str):
    """A new miniworld entity for ``OBJECT_KINDS[name]``; its ``radius`` is the footprint in metres."""
    from simulator.world import gl  # imported here so config validation never needs OpenGL

    kind = OBJECT_KINDS[name]
    if kind.mesh is None:
        return gl.Box(color=kind.color, size=kind.height_m)
    return gl.MeshEnt(mesh_name=kind.mesh, height=kind.height_m, static=True)
