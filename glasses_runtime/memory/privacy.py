"""Privacy of stored thumbnails and clips: face blurring and encryption at rest.

Faces are found with OpenCV's frontal-face Haar cascade, whose model file ships inside the
opencv-python-headless 4.x wheel (``cv2.data.haarcascades``), so it works offline with nothing to
download. Detection runs on the full frame before it is shrunk to a thumbnail, where faces are still
large enough to find; each face box (grown by 25 %) is pixelated and blurred beyond recognition.

Encryption is AES-256-GCM (``cryptography``). The key is derived from the user's passphrase with
scrypt and a random salt kept in the database; a key-check record tells a wrong passphrase apart
from corrupt data. Every blob gets a fresh 12-byte nonce and is bound to its row through the
associated data, so a ciphertext cannot be moved to another keyframe unnoticed.
"""

from __future__ import annotations

import os
from functools import lru_cache

import cv2
import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from glasses_runtime.memory.errors import EncryptionKeyError, MemoryStoreError

FACE_CASCADE = "haarcascade_frontalface_default.xml"
_KEY_CHECK = b"glasses-runtime memory key check v1"
_NONCE = 12


@lru_cache(maxsize=1)
def _face_detector() -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, FACE_CASCADE)
    det = cv2.CascadeClassifier(path)
    if det.empty():
        raise MemoryStoreError(
            f"cannot load the face detector {path}; reinstall opencv-python-headless>=4.10,<5"
        )
    return det


def detect_faces(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> int [F, 4] face boxes (x, y, w, h) in pixels."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    boxes = _face_detector().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)


def blur_faces(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """RGB uint8 [H, W, 3] -> (copy with every detected face pixelated and blurred, number of faces)."""
    out = rgb.copy()
    boxes = detect_faces(rgb)
    h, w = rgb.shape[:2]
    for x, y, bw, bh in boxes:
        gx, gy = int(bw * 0.125), int(bh * 0.125)
        x0, y0 = max(0, x - gx), max(0, y - gy)
        x1, y1 = min(w, x + bw + gx), min(h, y + bh + gy)
        patch = out[y0:y1, x0:x1]
        # Pixelate to an 6x6 grid, then blur the blocks: no facial detail survives either step.
        small = cv2.resize(patch, (6, 6), interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        k = max(3, (min(x1 - x0, y1 - y0) // 4) | 1)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)
    return out, len(boxes)


def encode_thumbnail(rgb: np.ndarray, max_side: int, quality: int, blur: bool) -> bytes:
    """RGB uint8 [H, W, 3] -> JPEG bytes of at most max_side pixels on the longer side."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise MemoryStoreError(f"a keyframe image must be RGB uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    if blur:
        rgb, _ = blur_faces(rgb)
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MemoryStoreError("OpenCV could not encode a thumbnail as JPEG")
    return buf.tobytes()


def decode_thumbnail(jpeg: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 [H, W, 3]."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MemoryStoreError("a stored thumbnail is not a readable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def derive_key(passphrase: bytes, salt: bytes) -> bytes:
    """passphrase + 16-byte salt -> 32-byte AES key (scrypt, n=2**14, r=8, p=1)."""
    if not passphrase:
        raise EncryptionKeyError("the encryption passphrase is empty; give a non-empty key")
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(passphrase)


class BlobCipher:
    """AES-256-GCM for thumbnails and audio clips. Stored form: nonce (12 B) + ciphertext + tag (16 B)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise EncryptionKeyError(f"an AES-256 key is 32 bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise EncryptionKeyError(
                "an encrypted thumbnail/clip does not decrypt with this key (wrong key or tampered data); "
                "give the key it was recorded with"
            ) from None

    def key_check(self) -> bytes:
        """A record stored once per database so a wrong key is reported as such."""
        return self.encrypt(_KEY_CHECK, b"key-check")

    def verify(self, check: bytes) -> None:
        try:
            ok = self._aead.decrypt(check[:_NONCE], check[_NONCE:], b"key-check") == _KEY_CHECK
        except InvalidTag:
            ok = False
        if not ok:
            raise EncryptionKeyError(
                "wrong memory encryption key: give the key this memory was recorded with"
            )
