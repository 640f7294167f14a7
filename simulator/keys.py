"""Keys of the simulated glasses: one queue that the window, a ``--keys`` script and tests all feed.

    keys = KeyQueue()
    keys.push(KeyEvent("e", arg="mug"))           # from a window binding, or a test
    script = KeyScript.parse("e@10:mug,q@40,esc@90")
    script.due(10)                                 # -> [KeyEvent("e", "mug")] at frame 10

Key names are lower-case: ``e`` enroll, ``q`` query, ``g`` goal, ``p`` pause/resume, ``m`` mark,
``w a s d`` move (world), ``esc`` quit. ``arg`` is an optional word (an object name for ``e``/``g``).
"""

from __future__ import annotations

import queue
import re
from dataclasses import dataclass

from simulator.errors import KeySpecError

KEY_HELP: dict[str, str] = {
    "e": "enroll the object in the centre box",
    "q": "visual query: when did I last see what is in the centre box",
    "g": "set a goal (the centre box, or an enrolled object by name)",
    "p": "pause / resume recording into memory",
    "m": "mark the moment (an event in memory)",
    "w": "world: step forward",
    "a": "world: turn left",
    "s": "world: step back",
    "d": "world: turn right",
    "esc": "quit",
}

# Tk keysyms (and a few spellings people type in --keys) -> our key names.
_ALIASES = {"escape": "esc", "Escape": "esc", "quit": "esc"}
_SPEC = re.compile(r"^(?P<key>[A-Za-z]+)@(?P<frame>\d+)(?::(?P<arg>[\w.-]+))?$")


def key_name(raw: str) -> str | None:
    """A window keysym or script token -> our key name, or None for keys the glasses do not use."""
    name = _ALIASES.get(raw, raw.lower())
    return name if name in KEY_HELP else None


@dataclass(frozen=True)
class KeyEvent:
    """key: a name from KEY_HELP. arg: optional word (object name for enroll/goal)."""

    key: str
    arg: str | None = None

    def __post_init__(self) -> None:
        if self.key not in KEY_HELP:
            raise KeySpecError(f"unknown key {self.key!r}; use one of {', '.join(KEY_HELP)}")


class KeyQueue:
    """Thread-safe FIFO of key events (a window thread or callback may push; the session loop drains)."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[KeyEvent] = queue.SimpleQueue()

    def push(self, event: KeyEvent) -> None:
        self._q.put(event)

    def drain(self) -> list[KeyEvent]:
        out: list[KeyEvent] = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out


@dataclass(frozen=True)
class KeyScript:
    """Keys pressed at given frame numbers (0-based: the frame read as number N)."""

    events: tuple[tuple[int, KeyEvent], ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> KeyScript:
        """``"e@10,q@40:mug,esc@90"`` -> KeyScript. Empty or None -> no keys."""
        if not spec or not spec.strip():
            return cls()
        events = []
        for token in (t.strip() for t in spec.split(",")):
            m = _SPEC.match(token)
            if m is None:
                raise KeySpecError(
                    f"cannot read key {token!r} in --keys; write KEY@FRAME[:NAME], e.g. 'e@10:mug,q@40,esc@90'"
                )
            name = key_name(m["key"])
            if name is None:
                raise KeySpecError(f"unknown key {m['key']!r} in --keys; use one of {', '.join(KEY_HELP)}")
            events.append((int(m["frame"]), KeyEvent(name, m["arg"])))
        return cls(tuple(sorted(events, key=lambda e: e[0])))

    def due(self, frame_index: int) -> list[KeyEvent]:
        return [ev for i, ev in self.events if i == frame_index]

    @property
    def last_frame(self) -> int:
        return max((i for i, _ in self.events), default=-1)
