"""`glasses-runtime memory ...`: query and manage the episodic memory from the command line.

    glasses-runtime memory stats --db memory.db --json
    glasses-runtime memory query --db memory.db --image keys.jpg --model encoder.safetensors
    glasses-runtime memory enroll keys photo1.jpg photo2.jpg --db memory.db --model encoder.safetensors
    glasses-runtime memory where keys --db memory.db
    glasses-runtime memory place --db memory.db --image here.jpg --model encoder.safetensors
    glasses-runtime memory timeline --db memory.db --last 3600
    glasses-runtime memory forget --db memory.db --all --yes
    glasses-runtime memory repair --db damaged.db --out salvaged.db

Every command is a thin wrapper over the Python API. With --json it prints exactly one JSON object on
stdout; a failure prints one line on stderr and exits 1.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from glasses_runtime.memory.errors import MemoryStoreError
from glasses_runtime.memory.repair import salvage
from glasses_runtime.memory.store import EpisodicMemory

memory_app = typer.Typer(
    help="Query and manage the episodic memory (SQLite + vector index).",
    no_args_is_help=True,
    add_completion=False,
)

DbOpt = Annotated[Path, typer.Option("--db", help="Memory database file (SQLite).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="Encoder checkpoint (.safetensors) for --image.")
]
EmbOpt = Annotated[
    Path | None, typer.Option("--embedding", help="A float32 [D] embedding saved with np.save.")
]
ModelIdOpt = Annotated[
    str | None,
    typer.Option("--model-id", help="Model hash of --embedding (default: the memory's only model)."),
]
KeyOpt = Annotated[Path | None, typer.Option("--key-file", help="File holding the encryption passphrase.")]


class CliError(Exception):
    """A usage problem found by the CLI itself."""


def _fails_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from glasses_runtime.embedder import EmbedderError

        try:
            return fn(*args, **kwargs)
        except (MemoryStoreError, EmbedderError, CliError, ValueError, OSError) as e:
            typer.echo(f"error: {e}".splitlines()[0], err=True)
            raise typer.Exit(1) from None

    return wrapper


def _emit(as_json: bool, obj: dict, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(obj))
    else:
        for line in lines:
            typer.echo(line)


def _key(key_file: Path | None) -> bytes | None:
    if key_file is None:
        return None
    key = key_file.read_bytes().strip()
    if not key:
        raise CliError(f"{key_file} is empty; put the passphrase in it")
    return key


def _open_reader(db: Path, key_file: Path | None = None) -> EpisodicMemory:
    if not db.exists():
        raise CliError(f"no memory database at {db}; check --db")
    return EpisodicMemory.open(db, readonly=True, key=_key(key_file))


def _read_image(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CliError(f"cannot read image {path}; give a JPEG or PNG file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _embeddings(
    mem: EpisodicMemory | None,
    images: list[Path],
    model: Path | None,
    embedding: Path | None,
    model_id: str | None,
) -> tuple[np.ndarray, str]:
    """-> (float32 [N, D], model hash) from images + --model, or from --embedding (+ --model-id)."""
    if bool(images) == (embedding is not None):
        raise CliError("give either image(s) with --model, or --embedding")
    if embedding is not None:
        vec = np.atleast_2d(np.load(embedding)).astype(np.float32)
        if model_id is None:
            if mem is None or len(mem.models) != 1:
                raise CliError(
                    "--embedding needs --model-id when the memory holds more or fewer than one model"
                )
            model_id = next(iter(mem.models))
        return vec, model_id
    if model is None:
        raise CliError("--image needs --model (the encoder checkpoint that recorded the memory)")
    from glasses_runtime.embedder import load_embedder

    emb = load_embedder(model)
    return np.stack([emb.embed(_read_image(p)) for p in images]), emb.model_id


@memory_app.command()
@_fails_cleanly
def query(
    db: DbOpt,
    image: Annotated[Path | None, typer.Option("--image", help="Query image.")] = None,
    model: ModelOpt = None,
    embedding: EmbOpt = None,
    model_id: ModelIdOpt = None,
    k: Annotated[int, typer.Option("--k", help="How many moments.")] = 10,
    last_seen: Annotated[
        bool, typer.Option("--last-seen", help="Only the most recent moment above --threshold.")
    ] = False,
    threshold: Annotated[float, typer.Option("--threshold", help="Cosine for --last-seen.")] = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """Find the moments that look most like an image or embedding."""
    with _open_reader(db) as mem:
        vecs, mid = _embeddings(mem, [image] if image else [], model, embedding, model_id)
        if last_seen:
            m = mem.last_seen(vecs[0], mid, threshold)
            moments = [m] if m else []
        else:
            moments = mem.search(vecs[0], mid, k=k)
    _emit(
        as_json,
        {"model_id": mid, "moments": [m.to_json() for m in moments]},
        [
            f"{m.t_ns}  score {m.score:.3f}  keyframe {m.keyframe_id}  episode {m.episode_id}  pose {m.pose}"
            for m in moments
        ]
        or ["no matching moment"],
    )


@memory_app.command()
@_fails_cleanly
def enroll(
    name: Annotated[str, typer.Argument(help="Object name, e.g. keys.")],
    images: Annotated[list[Path] | None, typer.Argument(help="Photos of the object.")] = None,
    db: DbOpt = Path("memory.db"),
    model: ModelOpt = None,
    embedding: EmbOpt = None,
    model_id: ModelIdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enroll an object by name from photos (or embeddings), so `where NAME` can find it."""
    with EpisodicMemory.open(db) as mem:
        vecs, mid = _embeddings(mem, images or [], model, embedding, model_id)
        oid = mem.enroll(name, vecs, mid)
    _emit(
        as_json,
        {"object_id": oid, "name": name, "prototypes": len(vecs), "model_id": mid},
        [f"enrolled {name!r} with {len(vecs)} prototype(s) (object {oid})"],
    )


@memory_app.command()
@_fails_cleanly
def where(
    name: Annotated[str, typer.Argument(help="An enrolled object name.")],
    db: DbOpt = Path("memory.db"),
    k: Annotated[int, typer.Option("--k", help="How many sightings.")] = 5,
    threshold: Annotated[float, typer.Option("--threshold", help="Minimum cosine.")] = 0.7,
    as_json: JsonOpt = False,
) -> None:
    """Last sightings of an enrolled object, newest first."""
    with _open_reader(db) as mem:
        found = mem.where(name, k=k, threshold=threshold)
    _emit(
        as_json,
        {"name": name, "sightings": [m.to_json() for m in found]},
        [f"{m.t_ns}  score {m.score:.3f}  keyframe {m.keyframe_id}  pose {m.pose}" for m in found]
        or [f"{name!r} not seen"],
    )


def _pose(text: str) -> tuple[float, float, float, float]:
    """'x,y,z' or 'x,y,z,yaw' (metres, radians) -> (x, y, z, yaw)."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) not in (3, 4):
        raise CliError(f"--pose takes x,y,z or x,y,z,yaw (metres, radians), got {text!r}")
    return (*vals, 0.0) if len(vals) == 3 else tuple(vals)  # type: ignore[return-value]


@memory_app.command()
@_fails_cleanly
def place(
    db: DbOpt,
    image: Annotated[Path | None, typer.Option("--image", help="A view of the place.")] = None,
    model: ModelOpt = None,
    embedding: EmbOpt = None,
    model_id: ModelIdOpt = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Minimum cosine to count as the same place.")
    ] = 0.85,
    before: Annotated[
        int | None,
        typer.Option("--before", help="Only visits before this time, ns (leaves the current visit out)."),
    ] = None,
    pose: Annotated[
        str | None,
        typer.Option(
            "--pose",
            help="Where the view was taken: x,y,z[,yaw]; with --radius, visits farther away are left out.",
        ),
    ] = None,
    radius: Annotated[float | None, typer.Option("--radius", help="Metres around --pose.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many visits.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Have I been here before, and when? Earlier visits to the place in an image or embedding."""
    if (pose is None) != (radius is None):
        raise CliError("--pose and --radius go together: give both, or neither")
    at = _pose(pose) if pose is not None else None
    with _open_reader(db) as mem:
        vecs, mid = _embeddings(mem, [image] if image else [], model, embedding, model_id)
        visits = mem.place(vecs[0], mid, threshold=threshold, before_ns=before, pose=at, radius_m=radius, k=k)
    _emit(
        as_json,
        {"model_id": mid, "visits": visits},
        [
            f"episode {v['episode_id']}: {v['start_ns']}..{v['end_ns']}  score {v['score']:.3f}  keyframe "
            f"{v['keyframe_id']}"
            for v in visits
        ]
        or ["not been here before"],
    )


@memory_app.command()
@_fails_cleanly
def timeline(
    db: DbOpt,
    start: Annotated[int | None, typer.Option("--start", help="Start time, ns.")] = None,
    end: Annotated[int | None, typer.Option("--end", help="End time, ns.")] = None,
    last: Annotated[float | None, typer.Option("--last", help="Seconds before the newest keyframe.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Episodes (with representative keyframes) and events between two times."""
    with _open_reader(db) as mem:
        newest = mem.db.execute("SELECT max(t_ns) FROM keyframes").fetchone()[0] or 0
        t1 = end if end is not None else newest
        t0 = start if start is not None else (t1 - int(last * 1e9) if last is not None else 0)
        eps, events = mem.timeline(t0, t1)
    _emit(
        as_json,
        {"start_ns": t0, "end_ns": t1, "episodes": [e.to_json() for e in eps], "events": events},
        [
            f"episode {e.episode_id}: {e.start_ns}..{e.end_ns}  {e.n_keyframes} keyframes  representative "
            f"{e.representative.keyframe_id if e.representative else None}"
            for e in eps
        ]
        + [f"event {ev['t_ns']} {ev['kind']}: {ev['text'] or ''}" for ev in events]
        or ["nothing in this range"],
    )


@memory_app.command()
@_fails_cleanly
def stats(
    db: DbOpt,
    check: Annotated[bool, typer.Option("--check", help="Also run integrity_check.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Counts, sizes on disk and index state."""
    with _open_reader(db) as mem:
        s = mem.stats(check=check)
    _emit(as_json, s, [f"{k}: {v}" for k, v in s.items()])


@memory_app.command()
@_fails_cleanly
def forget(
    db: DbOpt,
    start: Annotated[int | None, typer.Option("--start", help="Start time, ns.")] = None,
    end: Annotated[int | None, typer.Option("--end", help="End time, ns.")] = None,
    episode: Annotated[int | None, typer.Option("--episode", help="Episode id.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Forget everything.")] = False,
    vacuum: Annotated[bool, typer.Option("--vacuum", help="Also rebuild the file compactly.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove memories for good (rows, thumbnails, index entries; bytes overwritten)."""
    if not db.exists():
        raise CliError(f"no memory database at {db}; check --db")
    if not yes and (
        not sys.stdin.isatty() or not typer.confirm("This permanently deletes memories. Continue?", err=True)
    ):
        raise CliError("nothing forgotten (not confirmed; pass --yes to confirm without a question)")
    with EpisodicMemory.open(db) as mem:
        rep = mem.forget(t0=start, t1=end, episode_id=episode, everything=everything, vacuum=vacuum)
    _emit(
        as_json,
        rep,
        [
            f"forgot {rep['keyframes']} keyframes, {rep['events']} events, {rep['episodes']} "
            f"episodes; bytes purged from the WAL: {rep['purged']}"
        ],
    )


def _keyframe_id(kid: object) -> int:
    """A keyframe id as stored by this package: a non-negative integer. Anything else means the database
    was altered (e.g. a view in place of the table), and it must not name a file."""
    if type(kid) is not int or kid < 0:
        raise CliError(
            f"keyframe id {str(kid)[:40]!r} is not an integer: this database was altered; export refuses it "
            "(check it with 'glasses-runtime memory repair')"
        )
    return kid


def _inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves under ``root``, else a CliError (no write outside --out)."""
    r, p = root.resolve(), path.resolve()
    if r != p and r not in p.parents:
        raise CliError(f"refusing to write {path}: it is outside --out {root}")
    return path


@memory_app.command()
@_fails_cleanly
def export(
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="New folder to write into.")],
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export sessions, episodes, keyframe metadata, events and thumbnails (JPEG) into a folder."""
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} is not empty; choose a new --out folder")
    (out / "thumbnails").mkdir(parents=True, exist_ok=True)
    with _open_reader(db, key_file) as mem:
        q = mem.db.execute
        doc: dict[str, Any] = {
            "sessions": [
                dict(zip(("id", "source", "started_ns", "ended_ns"), r, strict=True))
                for r in q("SELECT id, source, started_ns, ended_ns FROM sessions")
            ],
            "episodes": [
                dict(
                    zip(
                        ("id", "session_id", "start_ns", "end_ns", "n_keyframes", "rep_keyframe_id"),
                        r,
                        strict=True,
                    )
                )
                for r in q(
                    "SELECT id, session_id, start_ns, end_ns, n_keyframes, rep_keyframe_id FROM episodes"
                )
            ],
            "events": [
                dict(zip(("id", "session_id", "t_ns", "kind", "text"), r, strict=True))
                for r in q("SELECT id, session_id, t_ns, kind, text FROM events")
            ],
            "objects": [r[0] for r in q("SELECT name FROM objects")],
            "keyframes": [],
        }
        skipped = 0
        for kid, sid, t, ep, thumb, enc, x, y, z, yaw, src, mh in q(
            "SELECT k.id, session_id, t_ns, episode_id, thumb IS NOT NULL, thumb_enc, pose_x, pose_y, pose_z, "
            "pose_yaw, source, m.model_hash FROM keyframes k JOIN models m ON m.id = k.model_ref ORDER BY t_ns"
        ):
            name = None
            if thumb and (not enc or mem.cipher is not None):
                name = f"thumbnails/{_keyframe_id(kid)}.jpg"  # file names from validated integers only
                _inside(out, out / name).write_bytes(mem.thumbnail(kid) or b"")
            elif thumb:
                skipped += 1
            doc["keyframes"].append(
                {
                    "id": kid,
                    "session_id": sid,
                    "t_ns": t,
                    "episode_id": ep,
                    "model_id": mh,
                    "pose": None if x is None else [x, y, z, yaw],
                    "source": src,
                    "thumbnail": name,
                }
            )
    (out / "memory.json").write_text(json.dumps(doc))
    rep = {
        "out": str(out),
        "keyframes": len(doc["keyframes"]),
        "episodes": len(doc["episodes"]),
        "events": len(doc["events"]),
        "encrypted_thumbnails_skipped": skipped,
    }
    _emit(
        as_json,
        rep,
        [f"exported {rep['keyframes']} keyframes to {out}"]
        + ([f"{skipped} encrypted thumbnails skipped: pass --key-file"] if skipped else []),
    )


@memory_app.command()
@_fails_cleanly
def repair(
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="New database file to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Salvage every readable row of a damaged memory into a new file."""
    rep = salvage(db, out)
    _emit(
        as_json,
        rep,
        [
            f"{t}: {v['rows']} rows salvaged, {v['lost_rowids']} unreadable rowids"
            for t, v in rep["tables"].items()
        ]
        + [f"wrote {out}"],
    )


@memory_app.command()
@_fails_cleanly
def pause(db: DbOpt, as_json: JsonOpt = False) -> None:
    """Pause recording: a running recorder stores nothing until `resume`."""
    _set_paused(db, True, as_json)


@memory_app.command()
@_fails_cleanly
def resume(db: DbOpt, as_json: JsonOpt = False) -> None:
    """Resume recording after `pause`."""
    _set_paused(db, False, as_json)


def _set_paused(db: Path, paused: bool, as_json: bool) -> None:
    if not db.exists():
        raise CliError(f"no memory database at {db}; check --db")
    # Not the writer slot: a recorder may hold it. The flag is one row it reads before every batch.
    EpisodicMemory.set_paused(db, paused)
    _emit(
        as_json, {"db": os.fspath(db), "paused": paused}, [f"recording {'paused' if paused else 'resumed'}"]
    )
