"""Helpers shared by the runtime tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

CUTS = (30, 76, 137, 187, 242)  # shot cuts of tests/assets/bikes.mp4 (first frame of each new shot)


def stored(db: Path, table: str, session_id: int) -> list[int]:
    """Ids of the rows of one session, read straight from the SQLite file (the source of truth)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            r[0]
            for r in con.execute(f"SELECT id FROM {table} WHERE session_id = ? ORDER BY id", (session_id,))
        ]
    finally:
        con.close()
