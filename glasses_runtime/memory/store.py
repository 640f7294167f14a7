"""EpisodicMemory: the persistent store of what the glasses saw (SQLite WAL + a derived vector index).

    mem = EpisodicMemory.open("memory.db")                  # the one writer (a lock file enforces it)
    sid = mem.start_session("camera")
    ids = mem.add_keyframes([KeyframeIn(t_ns, z, model_id, image=rgb)], sid)   # ids = acknowledged
    hits = mem.search(z_query, model_id, k=10)               # see queries.py for the query family
    mem.close()

    reader = EpisodicMemory.open("memory.db", readonly=True)  # any number, also in other processes

A batch is one ``BEGIN IMMEDIATE ... COMMIT`` transaction; ``add_keyframes`` returns the new ids only
after COMMIT returned, so a returned id is durable at the configured synchronous level (FULL by
default: the WAL is fsynced at commit). The vector index is updated after the commit and saved every
``IndexConfig.save_every`` vectors and on close; after a crash the unsaved tail is re-added from SQLite
on the next open. Consecutive keyframes of a session whose embeddings are near-duplicates (cosine >=
``episode_threshold``, gap <= ``episode_max_gap_s``) are consolidated into one episode as they arrive;
when an episode closes, its representative (the keyframe nearest the episode's mean) is stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from glasses_runtime.memory import queries, retention
from glasses_runtime.memory.codec import (
    EventIn,
    KeyframeIn,
    normalise,
    pack_embedding,
    pack_many,
    unpack_many,
)
from glasses_runtime.memory.config import MemoryConfig
from glasses_runtime.memory.errors import (
    CorruptMemoryError,
    EncryptionKeyError,
    ModelMismatchError,
    ReadOnlyError,
    WriterBusyError,
)
from glasses_runtime.memory.privacy import BlobCipher, derive_key, encode_thumbnail
from glasses_runtime.memory.schema import connect, migrate, repair_hint
from glasses_runtime.memory.vector_index import ModelIndex

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F, hold_lock: bool = True) -> F:
    """Serialise on the memory's lock (unless the function locks finely itself); turn SQLite's
    'malformed' errors into CorruptMemoryError naming the repair command."""

    @functools.wraps(fn)
    def wrapper(self: EpisodicMemory, *args: Any, **kwargs: Any) -> Any:
        try:
            with self.lock if hold_lock else contextlib.nullcontext():
                return fn(self, *args, **kwargs)
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise
            raise CorruptMemoryError(f"{self.path}: {e}; {repair_hint(self.path)}") from None
        except sqlite3.DatabaseError as e:
            raise CorruptMemoryError(f"{self.path} is damaged ({e}); {repair_hint(self.path)}") from None

    return wrapper  # type: ignore[return-value]


@dataclass
class _OpenEpisode:
    episode_id: int
    model_ref: int
    last_vec: np.ndarray  # float32 [D]
    last_t_ns: int


class EpisodicMemory:
    """Persistent episodic memory. Thread-safe: one lock serialises this object's transactions."""

    def __init__(self, path: Path, cfg: MemoryConfig, readonly: bool) -> None:
        self.path = path
        self.cfg = cfg
        self.readonly = readonly
        self.index_dir = Path(str(path) + ".index")
        self.lock = threading.RLock()
        self.conn: sqlite3.Connection | None = None
        self.indexes: dict[int, ModelIndex] = {}
        self.index_report: dict[str, str] = {}
        self.models: dict[str, tuple[int, int]] = {}  # model hash -> (model_ref, dim)
        self.cipher: BlobCipher | None = None
        self.deletion_gen = 0
        self._open_episodes: dict[int, _OpenEpisode] = {}
        self._lock_fd: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        config: MemoryConfig | None = None,
        *,
        readonly: bool = False,
        key: bytes | None = None,
    ) -> EpisodicMemory:
        """Open (creating if needed, unless readonly) the memory at path.

        key: passphrase bytes for thumbnail/clip encryption; new thumbnails are encrypted when given.
        Raises CorruptMemoryError, SchemaVersionError, WriterBusyError, EncryptionKeyError.
        """
        self = cls(Path(path), config or MemoryConfig(), readonly)
        try:
            if not readonly:
                self._take_writer_lock()
            self._open(key)
        except BaseException:
            self.close(save_index=False)
            raise
        return self

    @guarded
    def _open(self, key: bytes | None) -> None:
        self.conn = connect(
            self.path,
            readonly=self.readonly,
            synchronous=self.cfg.synchronous,
            busy_timeout_ms=self.cfg.busy_timeout_ms,
        )
        migrate(self.conn, self.path, readonly=self.readonly)
        if key is not None:
            self._setup_cipher(key)
        self.sync_indexes()

    def _take_writer_lock(self) -> None:
        lock_path = Path(str(self.path) + ".writer.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WriterBusyError(
                f"{self.path} is already open for writing by process {holder}; stop that recorder first, "
                "or open the memory read-only"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _setup_cipher(self, key: bytes) -> None:
        meta = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('enc_salt', 'enc_check')"))
        if "enc_salt" not in meta:
            if self.readonly:
                raise EncryptionKeyError(f"{self.path} holds no encrypted data; open it without a key")
            salt = os.urandom(16)
            cipher = BlobCipher(derive_key(key, salt))
            with self.transaction():
                self.db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("enc_salt", salt.hex()), ("enc_check", cipher.key_check().hex())],
                )
        else:
            cipher = BlobCipher(derive_key(key, bytes.fromhex(meta["enc_salt"])))
            cipher.verify(bytes.fromhex(meta["enc_check"]))
        self.cipher = cipher

    def close(self, save_index: bool = True) -> None:
        """Close open episodes, save the index (writer), release the connection and the writer lock."""
        with self.lock:
            if self.conn is not None:
                if not self.readonly and save_index:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        for sid in list(self._open_episodes):
                            self._close_episode(sid)
                        self.save_indexes()
                self.conn.close()
                self.conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    def __enter__(self) -> EpisodicMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise ReadOnlyError(f"the memory {self.path} is closed; open it again")
        return self.conn

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction under this object's lock (BEGIN IMMEDIATE takes SQLite's write lock now)."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only; open it without readonly to change it")
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                self.models = {}  # may hold a model row that was rolled back; reloaded on next use
                raise

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    # ---- models and the index -------------------------------------------------------------------------

    def _refresh_models(self) -> None:
        self.models = {
            h: (ref, dim) for ref, h, dim in self.db.execute("SELECT id, model_hash, dim FROM models")
        }

    def model(self, model_id: str, dim: int | None = None) -> tuple[int, int]:
        """model hash -> (model_ref, dim) of a model this memory has recorded with; clear error otherwise."""
        if model_id not in self.models:
            self._refresh_models()
        if model_id not in self.models:
            known = ", ".join(f"{h[:12]}(dim {d})" for h, (_, d) in self.models.items()) or "none"
            raise ModelMismatchError(
                f"nothing in this memory was recorded with model {model_id[:12]}; recorded models: {known}. "
                "Query with the encoder that recorded the memory"
            )
        ref, mdim = self.models[model_id]
        if dim is not None and dim != mdim:
            raise ModelMismatchError(
                f"embedding has dimension {dim} but model {model_id[:12]} records dimension {mdim}; "
                "use that model's embeddings"
            )
        return ref, mdim

    def _model_for_write(self, model_id: str, dim: int) -> int:
        if not model_id:
            raise ModelMismatchError("a keyframe needs the model_id (sha256) of the encoder that embedded it")
        try:
            return self.model(model_id, dim)[0]
        except ModelMismatchError:
            if model_id in self.models:
                raise
        cur = self.db.execute(
            "INSERT INTO models (model_hash, dim, created_ns) VALUES (?, ?, ?)",
            (model_id, dim, time.time_ns()),
        )
        self.models[model_id] = (int(cur.lastrowid), dim)
        return int(cur.lastrowid)

    @guarded
    def sync_indexes(self) -> None:
        """Bring every model's index up to date with SQLite: load, catch up, or rebuild (see vector_index)."""
        with self.lock:
            gen = int(self.meta("deletion_gen", "0") or 0)
            if gen != self.deletion_gen:
                # Rows were deleted by another connection: reload from disk or rebuild.
                self.indexes.clear()
                self.deletion_gen = gen
            row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'keyframes'").fetchone()
            seq = int(row[0]) if row else 0
            self._refresh_models()
            for model_hash, (ref, dim) in self.models.items():
                idx = self.indexes.get(ref)
                if idx is None:
                    idx, why = ModelIndex.load(self.index_dir, model_hash, dim, self.cfg.index, gen)
                    if idx is None:
                        idx = ModelIndex.build(self.db, ref, model_hash, dim, self.cfg.index, seq)
                        self.index_report[model_hash] = f"rebuilt ({why})"
                    else:
                        self.index_report[model_hash] = "loaded"
                    self.indexes[ref] = idx
                if idx.synced_id < seq:
                    before = idx.ntotal
                    for ids, vecs in self._rows_after(ref, dim, idx.synced_id, seq):
                        idx.add(ids, vecs)
                    idx.synced_id = seq
                    if idx.ntotal > before and self.index_report.get(model_hash) == "loaded":
                        self.index_report[model_hash] = f"loaded, caught up {idx.ntotal - before}"
                if not self.readonly:
                    self._maintain(ref)

    def _rows_after(self, ref: int, dim: int, after: int, upto: int):
        from glasses_runtime.memory.vector_index import read_vectors

        for ids, vecs in read_vectors(self.db, ref, dim, after):
            keep = ids <= upto
            yield ids[keep], vecs[keep]

    def _maintain(self, ref: int) -> None:
        idx = self.indexes[ref]
        if idx.needs_rebuild():
            seq = max(idx.synced_id, 0)
            self.indexes[ref] = ModelIndex.build(self.db, ref, idx.model_hash, idx.dim, self.cfg.index, seq)
            self.indexes[ref].save(self.index_dir, self.deletion_gen)
        elif idx.unsaved >= self.cfg.index.save_every or (
            idx.unsaved and not ModelIndex.paths(self.index_dir, idx.model_hash)[0].exists()
        ):
            idx.save(self.index_dir, self.deletion_gen)

    def save_indexes(self) -> None:
        with self.lock:
            for idx in self.indexes.values():
                if idx.unsaved or not ModelIndex.paths(self.index_dir, idx.model_hash)[0].exists():
                    idx.save(self.index_dir, self.deletion_gen)

    # ---- recording ------------------------------------------------------------------------------------

    @guarded
    def start_session(self, source: str) -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO sessions (source, started_ns) VALUES (?, ?)", (source, time.time_ns())
            )
        return int(cur.lastrowid)

    @guarded
    def end_session(self, session_id: int) -> None:
        with self.transaction() as db:
            self._close_episode(session_id)
            db.execute("UPDATE sessions SET ended_ns = ? WHERE id = ?", (time.time_ns(), session_id))

    @property
    def paused(self) -> bool:
        return self.meta("paused", "0") == "1"

    def pause(self) -> None:
        """Stop recording: add_keyframes/add_events store nothing until resume(). Persists across processes."""
        with self.transaction() as db:
            db.execute("UPDATE meta SET value = '1' WHERE key = 'paused'")

    def resume(self) -> None:
        with self.transaction() as db:
            db.execute("UPDATE meta SET value = '0' WHERE key = 'paused'")

    @staticmethod
    def set_paused(path: str | Path, paused: bool, config: MemoryConfig | None = None) -> None:
        """Pause/resume from any process, without taking the writer slot (a recorder may hold it)."""
        cfg = config or MemoryConfig()
        conn = connect(Path(path), readonly=False, synchronous=cfg.synchronous, busy_timeout_ms=cfg.busy_timeout_ms)
        try:
            migrate(conn, Path(path), readonly=True)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'paused'", ("1" if paused else "0",))
        finally:
            conn.close()

    def _prepare(self, kf: KeyframeIn, session_id: int, blob: bytes | None) -> tuple:
        v = np.asarray(kf.embedding)
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
            raise ModelMismatchError(f"a keyframe embedding must be a finite float vector [D], got {v.shape}")
        blob = blob if blob is not None else pack_embedding(normalise(v))
        thumb, enc = None, None
        if kf.image is not None:
            thumb = encode_thumbnail(
                kf.image, self.cfg.thumbnail_max_side, self.cfg.thumbnail_quality, self.cfg.blur_faces
            )
            if self.cipher is not None:
                thumb, enc = self.cipher.encrypt(thumb, f"kf:{session_id}:{kf.t_ns}".encode()), 1
        pose = tuple(float(p) for p in kf.pose) if kf.pose is not None else (None,) * 4
        if len(pose) != 4:
            raise ValueError(f"pose is (x, y, z, yaw), got {kf.pose}")
        return blob, thumb, enc, pose

    @guarded
    def add_keyframes(self, batch: Sequence[KeyframeIn], session_id: int) -> list[int]:
        """Record a batch in one transaction. Returns the keyframe ids once committed ([] while paused)."""
        if not batch:
            return []
        # Thumbnails (face detection, JPEG) are made before the write lock is taken.
        dims = {np.shape(kf.embedding) for kf in batch}
        blobs = pack_many(normalise(np.stack([kf.embedding for kf in batch]))) if len(dims) == 1 and len(
            next(iter(dims))) == 1 else [None] * len(batch)
        prepared = [self._prepare(kf, session_id, b) for kf, b in zip(batch, blobs, strict=True)]
        with self.transaction() as db:
            if self.meta("paused") == "1":
                return []
            rows, touched = [], {}
            vecs = (
                unpack_many([p[0] for p in prepared], len(prepared[0][0]) - 4)
                if len({len(p[0]) for p in prepared}) == 1
                else None
            )
            closing: list[int] = []
            for i, (kf, (blob, thumb, enc, pose)) in enumerate(zip(batch, prepared, strict=True)):
                dim = len(blob) - 4
                ref = self._model_for_write(kf.model_id, dim)
                vec = vecs[i] if vecs is not None else unpack_many([blob], dim)[0]
                ep = self._episode_for(session_id, ref, vec, int(kf.t_ns), closing)
                touched.setdefault(ep, []).append(int(kf.t_ns))
                rows.append((session_id, ref, ep, int(kf.t_ns), blob, thumb, enc, *pose, kf.source or None))
            db.executemany(
                "INSERT INTO keyframes (session_id, model_ref, episode_id, t_ns, emb, thumb, thumb_enc, "
                "pose_x, pose_y, pose_z, pose_yaw, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            last = int(db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'keyframes'").fetchone()[0])
            # Under BEGIN IMMEDIATE no other writer interleaves, and AUTOINCREMENT ids are consecutive.
            ids = list(range(last - len(rows) + 1, last + 1))
            for ep, ts in touched.items():
                db.execute(
                    "UPDATE episodes SET n_keyframes = n_keyframes + ?, start_ns = min(start_ns, ?), "
                    "end_ns = max(end_ns, ?) WHERE id = ?",
                    (len(ts), min(ts), max(ts), ep),
                )
            for ep in closing:
                self._set_representative(ep)
        # Committed: from here on the ids are acknowledged. The index follows.
        with self.lock:
            by_ref: dict[int, list[int]] = {}
            for i, r in enumerate(rows):
                by_ref.setdefault(r[1], []).append(i)
            for ref, pos in by_ref.items():
                dim = self.models_by_ref()[ref]
                v = vecs[pos] if vecs is not None else unpack_many([rows[i][4] for i in pos], dim)
                if ref not in self.indexes:
                    self.indexes[ref] = ModelIndex(self._hash_of(ref), dim, self.cfg.index)
                self.indexes[ref].add(np.asarray([ids[i] for i in pos], dtype=np.int64), v)
                self._maintain(ref)
        return ids

    def models_by_ref(self) -> dict[int, int]:
        return {ref: dim for ref, dim in self.models.values()}

    def _hash_of(self, ref: int) -> str:
        return next(h for h, (r, _) in self.models.items() if r == ref)

    def _episode_for(self, session_id: int, ref: int, vec: np.ndarray, t_ns: int, closing: list[int]) -> int:
        cur = self._open_episodes.get(session_id)
        if (
            cur is not None
            and cur.model_ref == ref
            and 0 <= t_ns - cur.last_t_ns <= self.cfg.episode_max_gap_s * 1e9
            and float(vec @ cur.last_vec) >= self.cfg.episode_threshold
        ):
            cur.last_vec, cur.last_t_ns = vec, t_ns
            return cur.episode_id
        if cur is not None:
            closing.append(cur.episode_id)
        c = self.db.execute(
            "INSERT INTO episodes (session_id, model_ref, start_ns, end_ns, n_keyframes) "
            "VALUES (?, ?, ?, ?, 0)",
            (session_id, ref, t_ns, t_ns),
        )
        self._open_episodes[session_id] = _OpenEpisode(int(c.lastrowid), ref, vec, t_ns)
        return int(c.lastrowid)

    def _close_episode(self, session_id: int) -> None:
        cur = self._open_episodes.pop(session_id, None)
        if cur is not None:
            self._set_representative(cur.episode_id)

    def _set_representative(self, episode_id: int) -> None:
        """Store the episode's keyframe nearest to the mean of its embeddings (inside a transaction)."""
        ep = self.db.execute(
            "SELECT model_ref, start_ns, end_ns FROM episodes WHERE id = ?", (episode_id,)
        ).fetchone()
        if ep is None:
            return
        rows = self.db.execute(
            "SELECT id, emb FROM keyframes WHERE model_ref = ? AND t_ns BETWEEN ? AND ? "
            "AND episode_id = ? ORDER BY t_ns",
            (*ep, episode_id),
        ).fetchall()
        if not rows:
            return
        vecs = unpack_many([r[1] for r in rows], len(rows[0][1]) - 4)
        best = rows[int(np.argmax(vecs @ normalise(vecs.mean(axis=0))))][0]
        self.db.execute("UPDATE episodes SET rep_keyframe_id = ? WHERE id = ?", (best, episode_id))

    @guarded
    def add_events(self, batch: Sequence[EventIn], session_id: int) -> list[int]:
        """Record events (speech, surprise boundaries, user marks) in one transaction; [] while paused."""
        rows = []
        for ev in batch:
            data, enc = ev.data, None
            if data is not None and self.cipher is not None:
                data, enc = self.cipher.encrypt(data, f"ev:{session_id}:{ev.t_ns}".encode()), 1
            rows.append((session_id, int(ev.t_ns), ev.kind, ev.text, data, enc))
        with self.transaction() as db:
            if self.meta("paused") == "1" or not rows:
                return []
            db.executemany(
                "INSERT INTO events (session_id, t_ns, kind, text, data, data_enc) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            last = int(db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    @guarded
    def enroll(self, name: str, embeddings: np.ndarray, model_id: str) -> int:
        """Enroll an object: name + prototype embeddings float32 [N, D]. Adds to an existing name."""
        protos = normalise(np.atleast_2d(np.asarray(embeddings, dtype=np.float32)))
        if not name.strip():
            raise ValueError("an enrolled object needs a non-empty name")
        with self.transaction() as db:
            ref = self._model_for_write(model_id, protos.shape[1])
            db.execute(
                "INSERT OR IGNORE INTO objects (name, model_ref, created_ns) VALUES (?, ?, ?)",
                (name, ref, time.time_ns()),
            )
            oid = int(
                db.execute("SELECT id FROM objects WHERE name = ? AND model_ref = ?", (name, ref)).fetchone()[
                    0
                ]
            )
            db.executemany(
                "INSERT INTO object_prototypes (object_id, emb) VALUES (?, ?)",
                [(oid, pack_embedding(p)) for p in protos],
            )
        return oid

    @guarded
    def thumbnail(self, keyframe_id: int) -> bytes | None:
        """JPEG bytes of a keyframe's thumbnail (decrypted), or None when it has none."""
        row = self.db.execute(
            "SELECT session_id, t_ns, thumb, thumb_enc FROM keyframes WHERE id = ?", (keyframe_id,)
        ).fetchone()
        if row is None or row[2] is None:
            return None
        if row[3]:
            if self.cipher is None:
                raise EncryptionKeyError(
                    "this thumbnail is encrypted; open the memory with its key (--key-file)"
                )
            return self.cipher.decrypt(row[2], f"kf:{row[0]}:{row[1]}".encode())
        return bytes(row[2])

    # ---- queries, retention, privacy (implemented in their own modules) -------------------------------

    search = guarded(queries.search)
    last_seen = guarded(queries.last_seen)
    where = guarded(queries.where)
    timeline = guarded(queries.timeline)
    place = guarded(queries.place)
    stats = guarded(queries.stats)
    forget = guarded(retention.forget)
    apply_retention = guarded(retention.apply_retention, hold_lock=False)
    consolidate = guarded(retention.consolidate)
