"""`glasses-runtime memory ...`: help, one JSON object with --json, one clear stderr line on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import MODEL, clustered, record
from typer.testing import CliRunner

from glasses_runtime.cli import app
from glasses_runtime.memory import EpisodicMemory, MemoryConfig

COMMANDS = [
    "query",
    "enroll",
    "where",
    "place",
    "timeline",
    "stats",
    "forget",
    "export",
    "repair",
    "pause",
    "resume",
]
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["memory", *args])
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def filled(db: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    vecs, centers = clustered(300, 3)
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        img = np.full((32, 32, 3), 120, np.uint8)
        record(mem, vecs, sid, image=img)
    return db, centers


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    code, out, _ = run(cmd, "--help")
    assert code == 0 and "--db" in out


def test_query_where_timeline_stats_json(filled, tmp_path):
    db, centers = filled
    q = tmp_path / "q.npy"
    np.save(q, centers[1])
    code, out, _ = run("query", "--db", str(db), "--embedding", str(q), "--k", "3", "--json")
    res = json.loads(out)
    assert (
        code == 0 and len(res["moments"]) == 3 and all(100 < m["keyframe_id"] <= 200 for m in res["moments"])
    )
    code, out, _ = run(
        "query", "--db", str(db), "--embedding", str(q), "--last-seen", "--threshold", "0.9", "--json"
    )
    assert json.loads(out)["moments"][0]["keyframe_id"] > 100
    code, out, _ = run("enroll", "mug", "--db", str(db), "--embedding", str(q), "--json")
    assert code == 0 and json.loads(out)["prototypes"] == 1
    code, out, _ = run("where", "mug", "--db", str(db), "--threshold", "0.9", "--json")
    assert code == 0 and len(json.loads(out)["sightings"]) == 5
    code, out, _ = run("timeline", "--db", str(db), "--json")
    assert code == 0 and len(json.loads(out)["episodes"]) == 3
    code, out, _ = run("stats", "--db", str(db), "--check", "--json")
    s = json.loads(out)
    assert code == 0 and s["keyframes"] == 300 and s["integrity"] == "ok"


def test_place_lists_earlier_visits(db, tmp_path):
    vecs, centers = clustered(300, 3)
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False)) as mem:
        sid = mem.start_session("camera")
        record(mem, vecs[:200], sid, pose=(0.0, 0.0, 0.0, 0.0))  # place 0, then place 1
        record(mem, vecs[:100], sid, t0_ns=200 * 10**8, pose=(50.0, 0.0, 0.0, 0.0))  # place 0 again
    here = tmp_path / "here.npy"
    np.save(here, centers[0])
    place = ["place", "--db", str(db), "--embedding", str(here), "--threshold", "0.9"]
    code, out, _ = run(*place, "--json")
    visits = json.loads(out)["visits"]
    assert code == 0 and [(v["start_ns"], v["end_ns"]) for v in visits] == [
        (200 * 10**8, 299 * 10**8),
        (0, 99 * 10**8),
    ]
    assert 200 < visits[0]["keyframe_id"] <= 300 and visits[1]["keyframe_id"] <= 100
    assert all(v["score"] >= 0.9 for v in visits)
    code, out, _ = run(*place, "--before", str(200 * 10**8), "--json")  # leave the current visit out
    assert code == 0 and [v["start_ns"] for v in json.loads(out)["visits"]] == [0]
    code, out, _ = run(*place, "--pose", "49,0,0", "--radius", "5", "--json")  # only visits near (49, 0, 0)
    assert code == 0 and [v["start_ns"] for v in json.loads(out)["visits"]] == [200 * 10**8]
    code, out, _ = run(*place, "--k", "1")
    assert code == 0 and out.splitlines() == [
        f"episode 3: {200 * 10**8}..{299 * 10**8}  score "
        f"{visits[0]['score']:.3f}  keyframe {visits[0]['keyframe_id']}"
    ]
    np.save(here, centers[2])  # never there
    code, out, _ = run(*place)
    assert code == 0 and out.strip() == "not been here before"


def test_forget_export_repair_pause(filled, tmp_path):
    db, _ = filled
    code, out, _ = run("export", "--db", str(db), "--out", str(tmp_path / "exp"), "--json")
    assert code == 0 and json.loads(out)["keyframes"] == 300
    assert len(list((tmp_path / "exp" / "thumbnails").glob("*.jpg"))) == 300
    code, out, _ = run("pause", "--db", str(db), "--json")
    assert code == 0 and json.loads(out)["paused"] is True
    assert json.loads(run("stats", "--db", str(db), "--json")[1])["paused"] is True
    code, out, _ = run("forget", "--db", str(db), "--start", "0", "--end", str(99 * 10**8), "--yes", "--json")
    assert code == 0 and json.loads(out)["keyframes"] == 100
    code, out, _ = run("repair", "--db", str(db), "--out", str(tmp_path / "r.db"), "--json")
    assert code == 0 and json.loads(out)["tables"]["keyframes"]["rows"] == 200


def test_failures_are_one_line_on_stderr(filled, tmp_path):
    db, _ = filled
    bad = tmp_path / "q16.npy"
    np.save(bad, np.ones(16, np.float32))
    cases = [
        (["stats", "--db", str(tmp_path / "nope.db")], "no memory database"),
        (["query", "--db", str(db), "--embedding", str(bad)], "dimension 16"),
        (
            ["query", "--db", str(db), "--embedding", str(bad), "--model-id", "f" * 64],
            "Query with the encoder",
        ),
        (["where", "wallet", "--db", str(db)], "enroll it first"),
        (["forget", "--db", str(db)], "not confirmed"),
        (["place", "--db", str(db), "--embedding", str(bad), "--pose", "1,2,3"], "go together"),
        (
            ["place", "--db", str(db), "--embedding", str(bad), "--pose", "1,x", "--radius", "2"],
            "--pose takes",
        ),
        (["place", "--db", str(db), "--embedding", str(bad)], "dimension 16"),
        (["query", "--db", str(db)], "either image"),
    ]
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"x" * 5000)
    cases.append((["stats", "--db", str(garbage)], "memory repair"))
    for args, msg in cases:
        code, out, err = run(*args)
        assert code == 1 and out == "", args
        assert len(err.strip().splitlines()) == 1 and msg in err and "Traceback" not in err, (args, err)


def test_image_query_with_a_real_encoder_subprocess(db, tmp_path):
    torch = pytest.importorskip("torch")
    from edge_models.checkpoint import save_encoder
    from edge_models.models import vit_pico

    torch.manual_seed(0)
    model = save_encoder(tmp_path / "enc.safetensors", vit_pico())
    frames = sorted((Path(__file__).resolve().parents[1] / "assets" / "bikes_frames").glob("*.jpg"))[:3]
    exe = [str(Path(sys.executable).parent / "glasses-runtime")]
    r = subprocess.run(
        [
            *exe,
            "memory",
            "enroll",
            "street",
            *map(str, frames[:2]),
            "--db",
            str(db),
            "--model",
            str(model),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prototypes"] == 2
    from glasses_runtime.embedder import load_embedder
    from glasses_runtime.memory import KeyframeIn

    emb = load_embedder(model)
    with EpisodicMemory.open(db) as mem:
        sid = mem.start_session("video")
        rgb = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in frames]
        mem.add_keyframes(
            [KeyframeIn(i, emb.embed(x), emb.model_id, image=x) for i, x in enumerate(rgb)], sid
        )
    r = subprocess.run(
        [
            *exe,
            "memory",
            "query",
            "--db",
            str(db),
            "--image",
            str(frames[2]),
            "--model",
            str(model),
            "--k",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)["moments"][0]
    assert top["keyframe_id"] == 3 and top["score"] > 0.99


def test_stats_on_memory_with_no_model_is_valid(db):
    EpisodicMemory.open(db).close()
    code, out, _ = run("stats", "--db", str(db), "--json")
    assert code == 0 and json.loads(out)["keyframes"] == 0 and MODEL not in out


def test_export_of_a_crafted_database_writes_nothing_outside_out(filled, tmp_path):
    """#15: a `keyframes` view whose id is '../../../x' || id must not choose the file names."""
    import shutil
    import sqlite3

    db, _ = filled
    crafted = tmp_path / "crafted.db"
    with EpisodicMemory.open(db):  # checkpoint the WAL into the file before copying it
        pass
    shutil.copy(db, crafted)
    con = sqlite3.connect(crafted)
    cols = [r[1] for r in con.execute("PRAGMA table_info(keyframes)")]
    con.execute("ALTER TABLE keyframes RENAME TO kf_real")
    select = ", ".join("'../../../x' || id AS id" if c == "id" else c for c in cols)
    con.execute(f"CREATE VIEW keyframes AS SELECT {select} FROM kf_real")
    con.commit()
    con.close()
    out = tmp_path / "a" / "b" / "exp"
    before = set(tmp_path.rglob("*"))
    code, _, err = run("export", "--db", str(crafted), "--out", str(out))
    written = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert all(out in p.parents for p in written), sorted(written)
    assert code != 0 and "not an integer" in err and "Traceback" not in err
