"""Salvage a damaged memory database: copy every row that can still be read into a new file.

    glasses-runtime memory repair --db damaged.db --out salvaged.db

A damaged 16-byte header is patched in a scratch copy first (SQLite refuses the file otherwise).
Each table is read by rowid ranges; a range that raises is split in halves down to single rows, so
one bad page costs the rows on it, not the table. The new file gets the current schema; its vector
index is rebuilt from the salvaged rows on first open. Token grids are copied with their keyframes; a
grid whose keyframe was lost is dropped, and a table the source does not have (``keyframe_tokens`` in
a v1 file) is skipped.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from glasses_runtime.memory.errors import CorruptMemoryError, MemoryStoreError
from glasses_runtime.memory.schema import SQLITE_MAGIC, TABLES, connect, migrate

_RANGE = 4_096
_MAX_ROWID_GUESS = 1 << 22  # probed in _RANGE steps when nothing tells the table's extent


def _columns(dst: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in dst.execute(f"PRAGMA table_info({table})")]


def _max_rowid(src: sqlite3.Connection, table: str) -> int:
    """Highest rowid to probe: max(rowid), else the AUTOINCREMENT counter, else a wide guess."""
    for sql in (f"SELECT max(rowid) FROM {table}", "SELECT seq FROM sqlite_sequence WHERE name = ?"):
        try:
            row = src.execute(sql, (table,) if "?" in sql else ()).fetchone()
            if row and row[0] is not None:
                return int(row[0])
        except sqlite3.DatabaseError:
            continue
    try:
        if src.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0:
            return 0
    except sqlite3.DatabaseError:
        pass
    return _MAX_ROWID_GUESS


def _copy_range(src, dst, table: str, cols: str, lo: int, hi: int, lost: list[int]) -> int:
    """Copy rows with rowid in [lo, hi]; on error, bisect. Returns rows copied; unreadable ranges -> lost."""
    try:
        rows = src.execute(f"SELECT {cols} FROM {table} WHERE rowid BETWEEN ? AND ?", (lo, hi)).fetchall()
    except sqlite3.DatabaseError:
        if lo == hi:
            lost.append(lo)
            return 0
        mid = (lo + hi) // 2
        return _copy_range(src, dst, table, cols, lo, mid, lost) + _copy_range(
            src, dst, table, cols, mid + 1, hi, lost
        )
    if rows:
        marks = ",".join("?" * len(rows[0]))
        dst.executemany(f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({marks})", rows)
    return len(rows)


def salvage(src_path: str | Path, out_path: str | Path) -> dict:
    """Copy readable rows of src into a new memory at out. Returns {"tables": {t: {"rows", "lost"}}}."""
    src_path, out_path = Path(src_path), Path(out_path)
    if not src_path.is_file():
        raise MemoryStoreError(f"no file at {src_path}; give the damaged memory with --db")
    if out_path.exists():
        raise MemoryStoreError(f"{out_path} already exists; choose a new --out file")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "src.db"
        shutil.copyfile(src_path, scratch)
        for ext in ("-wal",):
            if Path(f"{src_path}{ext}").exists():
                shutil.copyfile(f"{src_path}{ext}", f"{scratch}{ext}")
        with open(scratch, "r+b") as f:
            if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                f.seek(0)
                f.write(SQLITE_MAGIC)
        try:
            src = sqlite3.connect(str(scratch), isolation_level=None)
            src.execute("SELECT name FROM sqlite_master").fetchall()
        except sqlite3.DatabaseError as e:
            raise CorruptMemoryError(
                f"{src_path} is damaged beyond salvage ({e}): its schema cannot be read"
            ) from None
        dst = connect(out_path, readonly=False, synchronous="FULL", busy_timeout_ms=5_000)
        migrate(dst, out_path, readonly=False)
        report: dict = {"out": str(out_path), "tables": {}}
        have = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        dst.execute("BEGIN IMMEDIATE")
        dst.execute("DELETE FROM meta")
        for table in TABLES:
            if table not in have:  # probing a missing table would bisect every rowid range down to 1
                report["tables"][table] = {"rows": 0, "lost_rowids": 0}
                continue
            cols = ",".join(_columns(dst, table))
            lost: list[int] = []
            hi = _max_rowid(src, table)
            n = 0
            for lo in range(1 if hi else 0, hi + 1, _RANGE):
                n += _copy_range(src, dst, table, cols, lo, min(hi, lo + _RANGE - 1), lost)
            report["tables"][table] = {"rows": n, "lost_rowids": len(lost)}
        orphans = dst.execute(
            "DELETE FROM keyframe_tokens WHERE keyframe_id NOT IN (SELECT id FROM keyframes)"
        ).rowcount
        report["tables"]["keyframe_tokens"]["rows"] -= orphans
        report["tables"]["keyframe_tokens"]["orphans_dropped"] = orphans
        for key, value in (("deletion_gen", "0"), ("paused", "0")):
            dst.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        dst.execute("COMMIT")
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dst.close()
        src.close()
    return report
