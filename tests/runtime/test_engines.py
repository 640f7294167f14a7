"""Model files the runtime must refuse with a clear message, and the two engines agreeing on real frames."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_models.checkpoint import file_sha256
from glasses_runtime.engines.encoder import EagerEncoder, PteEncoder, load_encoder
from glasses_runtime.engines.pte import ModelFileError
from glasses_runtime.manifest import manifest_path
from glasses_runtime.sources import ImageFolder, ImageFolderConfig


def _copy(pte, d, name="model"):
    dst = d / f"{name}.pte"
    shutil.copy(pte, dst)
    shutil.copy(manifest_path(pte), manifest_path(dst))
    return dst


def _rehash(pte):
    """Make the manifest describe the file's current bytes, so the check under test is not the hash."""
    m = json.loads(manifest_path(pte).read_text())
    m["pte_sha256"] = file_sha256(pte)
    manifest_path(pte).write_text(json.dumps(m))
    return m


def test_truncated_pte_is_refused_by_hash(pico_pte, tmp_path):
    p = _copy(pico_pte, tmp_path)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="does not match its manifest.*truncated"):
        load_encoder(p)


def test_truncated_pte_with_a_matching_manifest_is_refused_by_the_loader(pico_pte, tmp_path):
    p = _copy(pico_pte, tmp_path)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    _rehash(p)
    with pytest.raises(ModelFileError, match="not a loadable ExecuTorch program"):
        load_encoder(p)


def test_foreign_file_is_refused(pico_pte, bikes_mp4, tmp_path):
    p = _copy(pico_pte, tmp_path)
    shutil.copy(bikes_mp4, p)  # a video named .pte
    _rehash(p)
    with pytest.raises(ModelFileError, match="not a loadable ExecuTorch program"):
        load_encoder(p)


def test_manifest_of_another_shape_is_refused(pico_pte, tmp_path):
    p = _copy(pico_pte, tmp_path)
    m = json.loads(manifest_path(p).read_text())
    m["inputs"][0]["shape"] = [1, 3, 128, 128]
    manifest_path(p).write_text(json.dumps(m))
    with pytest.raises(
        ModelFileError, match=r"takes \[\[1, 3, 96, 96\]\].*manifest says \[\[1, 3, 128, 128\]\]"
    ):
        load_encoder(p)


def test_missing_manifest_and_unknown_suffix(pico_pte, tmp_path):
    p = tmp_path / "alone.pte"
    shutil.copy(pico_pte, p)
    with pytest.raises(ModelFileError, match="no manifest alone.manifest.json.*glasses-export"):
        load_encoder(p)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unsupported model file model.onnx"):
        load_encoder(onnx)
    with pytest.raises(ModelFileError, match="model file not found"):
        load_encoder(tmp_path / "missing.pte")


def test_pte_and_eager_agree_on_real_frames(pico_pte, pico_ckpt, bikes_frames):
    pte, eager = load_encoder(pico_pte), load_encoder(pico_ckpt)
    assert isinstance(pte, PteEncoder) and isinstance(eager, EagerEncoder)
    assert pte.dim == eager.dim and pte.size == eager.size == 96
    assert pte.model_id != eager.model_id  # vectors of different files never mix in memory
    src = ImageFolder(ImageFolderConfig(bikes_frames))
    sims = []
    for _ in range(6):
        img = src.read().image
        a, b = pte.encode(pte.preprocess(img)), eager.encode(eager.preprocess(img))
        assert a.shape == (pte.dim,) and abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
        sims.append(float(a @ b))
    assert min(sims) > 0.999
