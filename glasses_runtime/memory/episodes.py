"""Episodes: runs of near-duplicate consecutive keyframes, consolidated online as they are recorded.

A keyframe joins its session's open episode when it comes from the same model, at most
``MemoryConfig.episode_max_gap_s`` after the previous keyframe (never before it), with cosine
>= ``episode_threshold`` to that keyframe; otherwise it starts a new episode and the open one closes.
A closed episode stores its representative: the member nearest to the mean of its embeddings.

The store drives one ``EpisodeTracker`` per writer, inside the batch's write transaction:

    first = last_keyframe_id(db) + 1                               # the batch's ids are first, first+1, ...
    plan = tracker.plan(db, session_id, first, refs, t_ns, vecs)   # writes the episode rows
    ...insert the keyframes with plan.episode_ids, check their ids...
    ...COMMIT...
    tracker.apply(plan)                                            # only now the in-memory state moves on

A batch costs a few statements whatever its number of episodes: episodes that open and close inside the
batch are inserted with their representative in one executemany, the continued episode is updated
once, and a closed one gets its representative in one UPDATE. That matters because consecutive
keyframes often do not repeat (a keyframe is already a change of view). The open episode's members
stay in memory (up to ``MEMBERS_IN_MEMORY``) so closing it reads nothing back; beyond that, or after
a deletion touched it, they are read from SQLite. A rolled-back batch leaves the tracker as it was,
because ``apply`` runs only after COMMIT.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from glasses_runtime.memory.codec import normalise, unpack_many

if TYPE_CHECKING:
    from glasses_runtime.memory.store import EpisodicMemory

MEMBERS_IN_MEMORY = 4096  # per open episode: 4096 x D float32 (3 MB at D = 192)


@dataclass(frozen=True)
class OpenEpisode:
    """The episode a session's next keyframe may join. Immutable: a batch builds the next state."""

    episode_id: int
    model_ref: int
    last_vec: np.ndarray  # float32 [D]
    last_t_ns: int
    n_members: int
    member_ids: tuple[np.ndarray, ...] | None  # int64 [n_i] per batch; None: read members from SQLite
    member_vecs: tuple[np.ndarray, ...] | None  # float32 [n_i, D]


@dataclass
class BatchPlan:
    """How one batch of a session splits into episodes. Rows are the batch's keyframes, in order."""

    session_id: int
    episode_ids: list[int]  # episode id of each row
    next_open: OpenEpisode  # the session's open episode once the batch is committed


def representative(ids: np.ndarray, vecs: np.ndarray) -> int:
    """ids int64 [N], vecs float32 [N, D] -> the id whose vector is nearest the normalised mean."""
    if len(ids) == 1:  # the common case when consecutive keyframes rarely repeat
        return int(ids[0])
    return int(ids[int(np.argmax(vecs @ normalise(vecs.mean(axis=0))))])


def stored_members(db: sqlite3.Connection, episode_id: int) -> tuple[np.ndarray, np.ndarray]:
    """An episode's keyframes in SQLite: (ids int64 [N], stored embeddings float32 [N, D]); N may be 0."""
    ep = db.execute("SELECT model_ref, start_ns, end_ns FROM episodes WHERE id = ?", (episode_id,)).fetchone()
    rows = (
        db.execute(
            "SELECT id, emb FROM keyframes WHERE model_ref = ? AND t_ns BETWEEN ? AND ? AND episode_id = ?",
            (*ep, episode_id),
        ).fetchall()
        if ep is not None
        else []
    )
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, unpack_many([r[1] for r in rows], len(rows[0][1]) - 4)


def set_representative(db: sqlite3.Connection, episode_id: int) -> None:
    """Read an episode's members from SQLite and store its representative (inside a transaction)."""
    ids, vecs = stored_members(db, episode_id)
    if len(ids):
        db.execute(
            "UPDATE episodes SET rep_keyframe_id = ? WHERE id = ?", (representative(ids, vecs), episode_id)
        )


class EpisodeTracker:
    """The open episode of each session being recorded by this writer."""

    def __init__(self, threshold: float, max_gap_s: float) -> None:
        self.threshold = threshold
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.open: dict[int, OpenEpisode] = {}

    def open_ids(self) -> set[int]:
        return {e.episode_id for e in self.open.values()}

    def _joins(
        self, prev_ref: int, prev_t: int, prev_vec: np.ndarray, ref: int, t: int, vec: np.ndarray
    ) -> bool:
        return (
            ref == prev_ref and 0 <= t - prev_t <= self.max_gap_ns and float(vec @ prev_vec) >= self.threshold
        )

    def plan(
        self,
        db: sqlite3.Connection,
        session_id: int,
        first_id: int,
        refs: list[int],
        t_ns: list[int],
        vecs: list[np.ndarray],
    ) -> BatchPlan:
        """Split a batch into episodes and write their rows (inside the batch's write transaction).

        first_id: the id the batch's first keyframe will get (the rest follow consecutively).
        refs, t_ns, vecs: model ref, time (ns) and stored embedding float32 [D] of each row.
        """
        n = len(refs)
        ids = np.arange(first_id, first_id + n, dtype=np.int64)
        cur = self.open.get(session_id)
        joins = [
            cur is not None
            and self._joins(cur.model_ref, cur.last_t_ns, cur.last_vec, refs[0], t_ns[0], vecs[0])
        ]
        if n > 1 and len({len(v) for v in vecs}) == 1:
            x = np.asarray(vecs)
            sims = np.einsum("ij,ij->i", x[1:], x[:-1])
            gaps = np.diff(np.asarray(t_ns, dtype=np.int64))
            same = np.asarray(refs[1:]) == np.asarray(refs[:-1])
            joins += (same & (gaps >= 0) & (gaps <= self.max_gap_ns) & (sims >= self.threshold)).tolist()
        else:
            joins += [
                len(vecs[i]) == len(vecs[i - 1])
                and self._joins(refs[i - 1], t_ns[i - 1], vecs[i - 1], refs[i], t_ns[i], vecs[i])
                for i in range(1, n)
            ]
        starts = [i for i in range(n) if i == 0 or not joins[i]]
        segments = list(zip(starts, [*starts[1:], n], strict=True))
        if cur is not None and not joins[0]:
            self._close(db, cur)
        # Episodes that start in this batch get consecutive ids after the current maximum.
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'episodes'").fetchone()
        next_eid = (int(row[0]) if row else 0) + 1
        new_rows, episode_ids = [], []
        for k, (s, e) in enumerate(segments):
            last = k == len(segments) - 1
            if joins[s]:  # the session's open episode goes on
                assert cur is not None
                eid = cur.episode_id
                db.execute(
                    "UPDATE episodes SET n_keyframes = n_keyframes + ?, start_ns = min(start_ns, ?), "
                    "end_ns = max(end_ns, ?) WHERE id = ?",
                    (e - s, min(t_ns[s:e]), max(t_ns[s:e]), eid),
                )
                if last:
                    cur = self._extended(cur, ids[s:e], vecs[s:e], t_ns[e - 1])
                else:
                    self._close(db, cur, ids[s:e], np.asarray(vecs[s:e]))
            else:
                eid, next_eid = next_eid, next_eid + 1
                rep = (
                    None
                    if last
                    else int(ids[s])
                    if e - s == 1
                    else representative(ids[s:e], np.asarray(vecs[s:e]))
                )
                new_rows.append((eid, session_id, refs[s], min(t_ns[s:e]), max(t_ns[s:e]), e - s, rep))
                if last:
                    cur = OpenEpisode(
                        eid, refs[s], vecs[e - 1], t_ns[e - 1], e - s, (ids[s:e],), (np.asarray(vecs[s:e]),)
                    )
            episode_ids += [eid] * (e - s)
        if new_rows:
            db.executemany(
                "INSERT INTO episodes (id, session_id, model_ref, start_ns, end_ns, n_keyframes, rep_keyframe_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                new_rows,
            )
        assert cur is not None
        return BatchPlan(session_id, episode_ids, cur)

    def apply(self, plan: BatchPlan) -> None:
        """After COMMIT: the batch's last episode is now the session's open one."""
        self.open[plan.session_id] = plan.next_open

    @staticmethod
    def _extended(cur: OpenEpisode, ids: np.ndarray, vecs: list[np.ndarray], t_ns: int) -> OpenEpisode:
        n = cur.n_members + len(ids)
        keep = cur.member_ids is not None and cur.member_vecs is not None and n <= MEMBERS_IN_MEMORY
        return OpenEpisode(
            cur.episode_id,
            cur.model_ref,
            vecs[-1],
            t_ns,
            n,
            (*cur.member_ids, ids) if keep else None,  # type: ignore[misc]
            (*cur.member_vecs, np.asarray(vecs)) if keep else None,  # type: ignore[misc]
        )

    @staticmethod
    def _close(
        db: sqlite3.Connection,
        ep: OpenEpisode,
        more_ids: np.ndarray | None = None,
        more_vecs: np.ndarray | None = None,
    ) -> None:
        """Store the representative of an episode that stops being open. Its members: the cache (or,
        when dropped, the rows in SQLite) plus more_ids int64 [M] / more_vecs float32 [M, D], members
        from the current batch that are not inserted yet."""
        if ep.member_ids is None or ep.member_vecs is None:
            parts = [stored_members(db, ep.episode_id)]
        else:
            parts = list(zip(ep.member_ids, ep.member_vecs, strict=True))
        if more_ids is not None and more_vecs is not None:
            parts.append((more_ids, more_vecs))
        parts = [p for p in parts if len(p[0])]
        if parts:
            rep = representative(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
            db.execute("UPDATE episodes SET rep_keyframe_id = ? WHERE id = ?", (rep, ep.episode_id))

    def close(self, db: sqlite3.Connection, session_id: int) -> None:
        """Close a session's open episode: store its representative (inside a transaction)."""
        cur = self.open.pop(session_id, None)
        if cur is not None:
            self._close(db, cur)

    def close_all(self, db: sqlite3.Connection) -> None:
        for sid in list(self.open):
            self.close(db, sid)

    def members_changed(self, episode_id: int, emptied: bool) -> None:
        """Deletions touched an episode: forget it when emptied, else re-read its members on close."""
        for sid, ep in list(self.open.items()):
            if ep.episode_id == episode_id:
                if emptied:
                    del self.open[sid]
                else:
                    self.open[sid] = OpenEpisode(
                        ep.episode_id, ep.model_ref, ep.last_vec, ep.last_t_ns, ep.n_members, None, None
                    )


def refresh_after_delete(mem: EpisodicMemory, episode_id: int) -> None:
    """Recount an episode after deletions inside it; drop it when empty, re-pick its representative."""
    db = mem.db
    ep = db.execute(
        "SELECT model_ref, start_ns, end_ns, rep_keyframe_id FROM episodes WHERE id = ?", (episode_id,)
    ).fetchone()
    if ep is None:
        return
    n, lo, hi = db.execute(
        "SELECT count(*), min(t_ns), max(t_ns) FROM keyframes WHERE model_ref = ? AND "
        "t_ns BETWEEN ? AND ? AND episode_id = ?",
        (*ep[:3], episode_id),
    ).fetchone()
    mem.episodes.members_changed(episode_id, emptied=n == 0)
    if n == 0:
        db.execute("DELETE FROM episodes WHERE id = ?", (episode_id,))
        return
    db.execute(
        "UPDATE episodes SET n_keyframes = ?, start_ns = ?, end_ns = ? WHERE id = ?", (n, lo, hi, episode_id)
    )
    if ep[3] is not None and db.execute("SELECT 1 FROM keyframes WHERE id = ?", (ep[3],)).fetchone() is None:
        set_representative(db, episode_id)


def consolidate(mem: EpisodicMemory) -> int:
    """Give every closed episode without a representative one (e.g. after a crash). Returns how many."""
    open_ids = mem.episodes.open_ids()
    todo = [
        r[0]
        for r in mem.db.execute("SELECT id FROM episodes WHERE rep_keyframe_id IS NULL")
        if r[0] not in open_ids
    ]
    with mem.transaction() as db:
        for ep in todo:
            set_representative(db, ep)
    return len(todo)
