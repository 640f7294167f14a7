"""Face blurring with the Haar cascade shipped in OpenCV, and AES-GCM encryption of thumbnails."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import MODEL, clustered

from glasses_runtime.memory import EncryptionKeyError, EpisodicMemory, KeyframeIn, MemoryConfig
from glasses_runtime.memory.privacy import blur_faces, decode_thumbnail, detect_faces

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _frame(index: int) -> np.ndarray:
    """RGB uint8 [272, 640, 3]: frame `index` of the real street clip bikes.mp4."""
    cap = cv2.VideoCapture(str(ASSETS / "bikes.mp4"))
    for _ in range(index + 1):
        ok, bgr = cap.read()
        assert ok
    cap.release()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_faces_are_blurred_and_the_rest_kept():
    rgb = _frame(36)  # a man cycling towards the camera, face at about x 360..420, y 0..70
    boxes = detect_faces(rgb)
    assert len(boxes) >= 1
    x, y, w, h = boxes[0]
    assert 340 <= x + w / 2 <= 440 and y + h / 2 <= 80  # on the real face, not elsewhere
    out, n = blur_faces(rgb)
    assert n == len(boxes)
    face_before, face_after = rgb[y : y + h, x : x + w].astype(float), out[y : y + h, x : x + w].astype(float)
    # Detail (high-frequency energy) inside the face box is gone; far from any face nothing changed.
    assert cv2.Laplacian(face_after, cv2.CV_64F).var() < 0.2 * cv2.Laplacian(face_before, cv2.CV_64F).var()
    assert np.array_equal(out[200:, :200], rgb[200:, :200])
    assert len(detect_faces(out)) == 0  # the detector itself no longer finds a face


def test_stored_thumbnail_is_blurred(db):
    rgb = _frame(36)
    (x, y, w, h) = detect_faces(rgb)[0]
    vec, _ = clustered(1, 1)
    with EpisodicMemory.open(db, MemoryConfig(thumbnail_max_side=640, thumbnail_quality=95)) as mem:
        kid = mem.add_keyframes([KeyframeIn(1, vec[0], MODEL, image=rgb)], mem.start_session("camera"))[0]
        thumb = decode_thumbnail(mem.thumbnail(kid))
    assert thumb.shape == rgb.shape
    face = thumb[y : y + h, x : x + w].astype(float)
    assert (
        cv2.Laplacian(face, cv2.CV_64F).var()
        < 0.2 * cv2.Laplacian(rgb[y : y + h, x : x + w].astype(float), cv2.CV_64F).var()
    )


def test_encrypted_thumbnails(db, tmp_path):
    rgb = _frame(10)
    vec, _ = clustered(1, 1)
    plain_db = tmp_path / "plain.db"
    with EpisodicMemory.open(plain_db, MemoryConfig(blur_faces=False)) as mem:
        mem.add_keyframes([KeyframeIn(1, vec[0], MODEL, image=rgb)], mem.start_session("camera"))
        jpeg = mem.thumbnail(1)
    with EpisodicMemory.open(db, MemoryConfig(blur_faces=False), key=b"correct horse") as mem:
        kid = mem.add_keyframes([KeyframeIn(1, vec[0], MODEL, image=rgb)], mem.start_session("camera"))[0]
        assert mem.thumbnail(kid) == jpeg
    raw = db.read_bytes() + (Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b"")
    assert jpeg[200:264] not in raw  # the JPEG never hits the disk in clear
    with pytest.raises(EncryptionKeyError, match="wrong memory encryption key"):
        EpisodicMemory.open(db, readonly=True, key=b"wrong")
    with EpisodicMemory.open(db, readonly=True) as mem, pytest.raises(EncryptionKeyError, match="--key-file"):
        mem.thumbnail(kid)
    with EpisodicMemory.open(db, readonly=True, key=b"correct horse") as mem:
        assert mem.thumbnail(kid) == jpeg
