"""The model manifest: the JSON contract beside every exported ``.pte``.

Written by ``glasses-export``, enforced by the runtime: it says what the model is (kind, preset),
how to feed it (input shapes and dtypes, normalisation), what comes out (embedding/action dims),
how it was made (quantization, backend, delegation, source checkpoint hash, versions) and which
exact bytes it describes (sha256 of the ``.pte``). The runtime refuses a ``.pte`` whose hash or
shapes do not match.

    MODEL.pte  +  MODEL.manifest.json  (+ MODEL.bpte, an optional ExecuTorch Bundled Program)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_models.hashing import file_sha256

MANIFEST_FORMAT = "glasses-manifest/1"
KINDS = ("encoder", "predictor", "world_model", "token_world_model")
DTYPES = ("float32", "int64", "int8", "uint8")


class ManifestError(Exception):
    """A manifest is missing, malformed, or does not match its model file."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: list[int]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ManifestError(
                f"tensor '{self.name}' has unknown dtype {self.dtype!r}; expected one of {DTYPES}"
            )
        if not all(isinstance(d, int) and d > 0 for d in self.shape):
            raise ManifestError(f"tensor '{self.name}' has an invalid shape {self.shape}")


@dataclass
class Manifest:
    kind: str
    preset: str
    backend: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    pte_file: str
    pte_sha256: str
    normalization: dict = field(default_factory=dict)
    embedding_dim: int | None = None
    action_dim: int | None = None
    quantization: dict = field(default_factory=lambda: {"scheme": "none"})
    delegation: dict = field(default_factory=dict)
    source_checkpoint: str | None = None
    source_checkpoint_sha256: str | None = None
    versions: dict = field(default_factory=dict)
    created: str | None = None
    # Optional ExecuTorch Bundled Program beside the .pte (glasses-export lower --bundle N): its file,
    # sha256, case count, what the inputs and references are, and the comparison tolerances.
    bundled: dict | None = None
    format: str = MANIFEST_FORMAT

    def __post_init__(self) -> None:
        if self.format != MANIFEST_FORMAT:
            raise ManifestError(
                f"manifest format {self.format!r} is not {MANIFEST_FORMAT!r}; re-export the model"
            )
        if self.kind not in KINDS:
            raise ManifestError(f"unknown model kind {self.kind!r}; expected one of {KINDS}")
        self.inputs = [t if isinstance(t, TensorSpec) else TensorSpec(**t) for t in self.inputs]
        self.outputs = [t if isinstance(t, TensorSpec) else TensorSpec(**t) for t in self.outputs]
        if not self.inputs or not self.outputs:
            raise ManifestError("a manifest needs at least one input and one output")
        if self.bundled is not None and not isinstance(self.bundled, dict):
            raise ManifestError("manifest field 'bundled' must be an object; re-export the model")

    def to_json(self) -> str:
        data = asdict(self)
        if data["bundled"] is None:  # optional: absent unless a .bpte was written
            del data["bundled"]
        return json.dumps(data, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as e:
            raise ManifestError(f"manifest is missing fields ({e}); re-export the model") from None


def manifest_path(pte: str | Path) -> Path:
    """MODEL.pte -> MODEL.manifest.json"""
    pte = Path(pte)
    return pte.with_name(pte.stem + ".manifest.json")


def write_manifest(manifest: Manifest, pte: str | Path) -> Path:
    path = manifest_path(pte)
    path.write_text(manifest.to_json() + "\n")
    return path


def load_manifest(pte: str | Path) -> Manifest:
    """Read the manifest beside ``pte``; ManifestError with the fix if missing or malformed."""
    path = manifest_path(pte)
    if not path.is_file():
        raise ManifestError(
            f"no manifest {path.name} beside {pte}; export models with 'glasses-export' which writes it"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"manifest {path} is not valid JSON ({e}); re-export the model") from None
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path} is not a JSON object; re-export the model")
    return Manifest.from_dict(data)


def check_hash(pte: str | Path, manifest: Manifest) -> None:
    """ManifestError unless the file's sha256 is the one the manifest was written for."""
    actual = file_sha256(pte)
    if actual != manifest.pte_sha256:
        raise ManifestError(
            f"{pte} does not match its manifest (sha256 {actual[:12]}... != {manifest.pte_sha256[:12]}...): the "
            "file was changed, truncated or replaced; re-export it or restore the matching pair"
        )
