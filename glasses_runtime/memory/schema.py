"""SQLite schema of the episodic memory, its migrations, and how connections are opened.

The database is the source of truth; the vector index next to it is derived. ``PRAGMA user_version``
holds the schema version; ``MIGRATIONS[v]`` moves a database from version v-1 to v inside one
transaction, so an interrupted migration leaves the previous version intact.

Embeddings are stored as one BLOB: a little-endian float32 scale followed by D int8 codes
(``codec.pack_embedding``), 4 + D bytes per keyframe. v2 adds ``keyframe_tokens``: one row per keyframe
that has a token grid, keyed by the keyframe id, h*w float16 scales + h*w*D int8 codes
(``codec.pack_tokens``); written in the keyframe's transaction and deleted with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from glasses_runtime.memory.errors import CorruptMemoryError, SchemaVersionError

SCHEMA_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    model_hash TEXT NOT NULL UNIQUE,
    dim INTEGER NOT NULL CHECK (dim > 0),
    created_ns INTEGER NOT NULL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER
);
CREATE TABLE episodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    model_ref INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    n_keyframes INTEGER NOT NULL,
    rep_keyframe_id INTEGER
);
CREATE INDEX episodes_time ON episodes (start_ns);
CREATE TABLE keyframes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    model_ref INTEGER NOT NULL,
    episode_id INTEGER,
    t_ns INTEGER NOT NULL,
    emb BLOB NOT NULL,
    thumb BLOB,
    thumb_enc INTEGER,
    pose_x REAL, pose_y REAL, pose_z REAL, pose_yaw REAL,
    source TEXT
);
CREATE INDEX keyframes_model_time ON keyframes (model_ref, t_ns);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    t_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT,
    data BLOB,
    data_enc INTEGER
);
CREATE INDEX events_time ON events (t_ns);
CREATE TABLE objects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    model_ref INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    UNIQUE (name, model_ref)
);
CREATE TABLE object_prototypes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id INTEGER NOT NULL,
    emb BLOB NOT NULL
);
CREATE INDEX object_prototypes_object ON object_prototypes (object_id);
INSERT INTO meta (key, value) VALUES ('deletion_gen', '0'), ('paused', '0');
"""


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    # executescript would COMMIT first and break the migration's transaction: run statements one by one.
    for stmt in _V1.split(";"):
        if stmt.strip():
            conn.execute(stmt)


_V2 = """
CREATE TABLE keyframe_tokens (
    keyframe_id INTEGER PRIMARY KEY,
    h INTEGER NOT NULL CHECK (h > 0),
    w INTEGER NOT NULL CHECK (w > 0),
    d INTEGER NOT NULL CHECK (d > 0),
    data BLOB NOT NULL
)
"""


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    # Only adds a table: v1 keyframes simply have no token grid.
    conn.execute(_V2)


# version -> function that upgrades a database from version-1 to version. Add new versions at the end.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_to_v1, 2: _migrate_to_v2}

# Every table a memory database has; repair copies these.
TABLES = (
    "meta",
    "models",
    "sessions",
    "episodes",
    "keyframes",
    "keyframe_tokens",
    "events",
    "objects",
    "object_prototypes",
)


def repair_hint(path: str | Path) -> str:
    return f"run `glasses-runtime memory repair --db {path} --out NEW.db` to salvage what can be read"


def check_header(path: Path) -> None:
    """Raise CorruptMemoryError when an existing file is not an SQLite database at all."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if len(head) > 0 and head != SQLITE_MAGIC:
        raise CorruptMemoryError(f"{path} is not an SQLite memory database (bad header); {repair_hint(path)}")


def connect(path: Path, *, readonly: bool, synchronous: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open a connection with the memory's pragmas: WAL, secure_delete, the synchronous level.

    Autocommit mode (isolation_level=None): transactions are explicit ``BEGIN IMMEDIATE`` blocks so a
    writer takes the lock up front instead of failing halfway through a batch.
    """
    if path.exists():
        check_header(path)
    elif readonly:
        raise CorruptMemoryError(f"no memory database at {path}; record one first or check the --db path")
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CorruptMemoryError(
                    f"{path}: cannot switch to WAL mode (got {mode}); is the folder writable?"
                )
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Deleted content is overwritten with zeros, so `forget` removes the bytes, not just the rows.
        conn.execute("PRAGMA secure_delete=ON")
        if readonly:
            conn.execute("PRAGMA query_only=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            raise
        raise CorruptMemoryError(
            f"{path} cannot be read as a memory database ({e}); {repair_hint(path)}"
        ) from None
    return conn


def migrate(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> int:
    """Bring the schema to SCHEMA_VERSION. Returns the version found before migrating."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has memory schema v{found} but this glasses-runtime knows up to v{SCHEMA_VERSION}; "
            "upgrade glasses-runtime"
        )
    if found == SCHEMA_VERSION:
        return found
    if found == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0:
        raise CorruptMemoryError(
            f"{path} is an SQLite file but not a glasses-runtime memory (no schema version)"
        )
    if readonly:
        raise SchemaVersionError(
            f"{path} has schema v{found}; open it once for writing to migrate to v{SCHEMA_VERSION}"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
