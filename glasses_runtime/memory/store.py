"""EpisodicMemory: the persistent store of what the glasses saw (SQLite WAL + a derived vector index).

    mem = EpisodicMemory.open("memory.db")                  # the one writer (a lock file enforces it)
    sid = mem.start_session("camera")
    ids = mem.add_keyframes([KeyframeIn(t_ns, z, model_id, image=rgb)], sid)   # ids = acknowledged
    hits = mem.search(z_query, model_id, k=10)               # see queries.py for the query family
    table = mem.keyframe_table(model_id, with_tokens=True)   # every keyframe of a model, no SQL needed
    mem.close()

    reader = EpisodicMemory.open("memory.db", readonly=True)  # any number, also in other processes

A batch is one ``BEGIN IMMEDIATE ... COMMIT`` transaction; ``add_keyframes`` returns the new ids only
after COMMIT returned, so a returned id is durable at the configured synchronous level (FULL by
default: the WAL is fsynced at commit). The vector index is updated after the commit and saved every
``IndexConfig.save_every`` vectors and on close; after a crash the unsaved tail is re-added from SQLite
on the next open. When the index outgrows its kind it is retrained in a background thread while
recording goes on (``indexing.py``). Near-duplicate consecutive keyframes are consolidated into
episodes as they arrive (``episodes.py``).
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
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from glasses_runtime.memory import episodes, indexing, queries, retention
from glasses_runtime.memory.codec import (
    EventIn,
    KeyframeIn,
    normalise,
    pack_embedding,
    pack_many,
    pack_tokens,
    unpack_many,
)
from glasses_runtime.memory.config import MemoryConfig
from glasses_runtime.memory.episodes import EpisodeTracker
from glasses_runtime.memory.errors import (
    CorruptMemoryError,
    EncryptionKeyError,
    ModelMismatchError,
    ReadOnlyError,
    WriterBusyError,
)
from glasses_runtime.memory.indexing import BackgroundBuild
from glasses_runtime.memory.privacy import BlobCipher, derive_key, encode_thumbnail
from glasses_runtime.memory.schema import connect, migrate, repair_hint
from glasses_runtime.memory.vector_index import ONLINE_THREADS, ModelIndex, last_keyframe_id, omp_threads

F = TypeVar("F", bound=Callable[..., Any])
_CLOSE_WAIT_S = 2.0  # close() waits this long for a cancelled background build to stop


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
        self.episodes = EpisodeTracker(cfg.episode_threshold, cfg.episode_max_gap_s)
        self.builds: dict[int, BackgroundBuild] = {}  # model_ref -> index being rebuilt in the background
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
        """Close open episodes, save the index (writer), release the connection and the writer lock.

        A background index build still running is cancelled (the saved index stays valid; the next
        writer retrains); close waits at most _CLOSE_WAIT_S for its thread to stop.
        """
        with self.lock:
            for build in self.builds.values():
                build.cancel(_CLOSE_WAIT_S)
            self.builds.clear()
            if self.conn is not None:
                if not self.readonly and save_index:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        if self.episodes.open:
                            with self.transaction() as db:
                                self.episodes.close_all(db)
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

    def refresh_models(self) -> None:
        self.models = {
            h: (ref, dim) for ref, h, dim in self.db.execute("SELECT id, model_hash, dim FROM models")
        }

    def model(self, model_id: str, dim: int | None = None) -> tuple[int, int]:
        """model hash -> (model_ref, dim) of a model this memory has recorded with; clear error otherwise."""
        if model_id not in self.models:
            self.refresh_models()
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
            self.episodes.close(db, session_id)
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
        conn = connect(
            Path(path), readonly=False, synchronous=cfg.synchronous, busy_timeout_ms=cfg.busy_timeout_ms
        )
        try:
            migrate(conn, Path(path), readonly=True)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'paused'", ("1" if paused else "0",))
        finally:
            conn.close()

    def _prepare(
        self, batch: Sequence[KeyframeIn], session_id: int
    ) -> tuple[list[bytes], list[np.ndarray], list]:
        """Validate and encode a batch before the write lock: (embedding blobs, the stored vectors
        float32 [D] as int8 round trips, (thumb, thumb_enc, pose, token row or None) per keyframe)."""
        embs = [np.asarray(kf.embedding, dtype=np.float32) for kf in batch]
        for e in embs:
            if e.ndim != 1 or e.size == 0:
                raise ModelMismatchError(
                    f"a keyframe embedding must be a float vector [D], got shape {e.shape}"
                )
        if len({e.shape for e in embs}) == 1:
            x = np.stack(embs)
            blobs = pack_many(normalise(x)) if np.isfinite(x).all() else []
            vecs = list(unpack_many(blobs, x.shape[1])) if blobs else []
        else:
            blobs = [pack_embedding(normalise(e)) for e in embs if np.isfinite(e).all()]
            vecs = [unpack_many([b], len(b) - 4)[0] for b in blobs]
        if len(blobs) != len(batch):
            raise ModelMismatchError("a keyframe embedding holds NaN or infinity; check the encoder output")
        extra = []
        for kf in batch:
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
            tok = None
            if kf.tokens is not None:  # validated by KeyframeIn: a finite [h, w, D] grid
                h, w, d = np.shape(kf.tokens)
                tok = (h, w, d, pack_tokens(kf.tokens))
            extra.append((thumb, enc, pose, tok))
        return blobs, vecs, extra

    @guarded
    def add_keyframes(self, batch: Sequence[KeyframeIn], session_id: int) -> list[int]:
        """Record a batch in one transaction. Returns the keyframe ids once committed ([] while paused)."""
        if not batch:
            return []
        # Embeddings are encoded and thumbnails made (face detection, JPEG) before the write lock.
        blobs, vecs, extra = self._prepare(batch, session_id)
        t_ns = [int(kf.t_ns) for kf in batch]
        with self.transaction() as db:
            if self.meta("paused") == "1":
                return []
            refs = [
                self._model_for_write(kf.model_id, len(b) - 4) for kf, b in zip(batch, blobs, strict=True)
            ]
            # Ids are assigned here, after the AUTOINCREMENT sequence: under BEGIN IMMEDIATE no other
            # writer interleaves, and the sequence guarantees they were never used (or forgotten) before.
            first = last_keyframe_id(db) + 1
            ids = list(range(first, first + len(batch)))
            plan = self.episodes.plan(db, session_id, first, refs, t_ns, vecs)
            db.executemany(
                "INSERT INTO keyframes (id, session_id, model_ref, episode_id, t_ns, emb, thumb, thumb_enc, "
                "pose_x, pose_y, pose_z, pose_yaw, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (kid, session_id, ref, ep, t, blob, thumb, enc, *pose, kf.source or None)
                    for kid, kf, ref, ep, t, blob, (thumb, enc, pose, _) in zip(
                        ids, batch, refs, plan.episode_ids, t_ns, blobs, extra, strict=True
                    )
                ],
            )
            db.executemany(
                "INSERT INTO keyframe_tokens (keyframe_id, h, w, d, data) VALUES (?, ?, ?, ?, ?)",
                [(kid, *tok) for kid, (*_, tok) in zip(ids, extra, strict=True) if tok is not None],
            )
        # Committed: from here on the ids are acknowledged. The episode state and the index follow.
        self.episodes.apply(plan)
        by_ref: dict[int, list[int]] = {}
        for i, ref in enumerate(refs):
            by_ref.setdefault(ref, []).append(i)
        with self.lock, omp_threads(ONLINE_THREADS):
            for ref, pos in by_ref.items():
                if ref not in self.indexes:
                    self.indexes[ref] = ModelIndex(self._hash_of(ref), len(vecs[pos[0]]), self.cfg.index)
                self.indexes[ref].add(
                    np.asarray([ids[i] for i in pos], dtype=np.int64), np.stack([vecs[i] for i in pos])
                )
                indexing.maintain(self, ref)
        return ids

    def _hash_of(self, ref: int) -> str:
        return next(h for h, (r, _) in self.models.items() if r == ref)

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

    # ---- index upkeep, queries, retention, episodes (implemented in their own modules) -----------------

    sync_indexes = guarded(indexing.sync_indexes)
    wait_for_index = guarded(indexing.wait_for_index, hold_lock=False)
    save_indexes = guarded(indexing.save_indexes)

    keyframe_table = guarded(queries.keyframe_table)
    keyframe_tokens = guarded(queries.keyframe_tokens)
    object_prototypes = guarded(queries.object_prototypes)
    search = guarded(queries.search)
    last_seen = guarded(queries.last_seen)
    where = guarded(queries.where)
    timeline = guarded(queries.timeline)
    place = guarded(queries.place)
    stats = guarded(queries.stats)
    forget = guarded(retention.forget)
    apply_retention = guarded(retention.apply_retention, hold_lock=False)
    consolidate = guarded(episodes.consolidate)
