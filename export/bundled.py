"""ExecuTorch Bundled Programs (``MODEL.bpte``): the ``.pte`` plus reference inputs and expected outputs.

    glasses-export lower CKPT --bundle 8 --calib frames/   ->  MODEL.pte, MODEL.bpte, MODEL.manifest.json
    glasses-export verify MODEL.bpte                        ->  per-case cosine / max abs error

A ``.bpte`` is ExecuTorch's self-checking format (``executorch.devtools.bundled_program``): the exact
program bytes of ``MODEL.pte`` and one ``forward`` test suite of N cases. The inputs are real frames
held out from calibration (or context tokens encoded from them, for a predictor) when ``--calib`` is
given, else the spec's example inputs (one case). The expected outputs come from the eager fp32 module
of the source checkpoint, never from the quantized one: for an int8 model the bundle therefore says
how far int8 is from fp32, and comparing needs a tolerance. Two are recorded in the manifest's
``bundled.comparison``: the cosine threshold ``verify`` uses (0.999 fp32, 0.99 int8) and an
elementwise ``atol`` for ExecuTorch's own allclose check (what a C++ bundled-program runner on the
device calls), ``atol = ATOL_SCALE[mode] * max |reference|`` with ``rtol = 0``.

Verification here loads the bundle with ExecuTorch's pybindings (``_load_bundled_program_from_buffer``
+ ``BundledModule.verify_result_with_bundled_expected_output``, which feeds the bundled input to the
program, runs it and runs ExecuTorch's allclose check), then compares the outputs with the bundled
expected outputs by cosine. Before anything reaches the C++ loader the file is parsed in Python
(file identifier, schema version, every tensor's byte count, the program's sha256 against the
manifest), so a truncated or foreign file is one clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from edge_models.checkpoint import file_sha256
from export.errors import ExportError, VerificationFailed
from export.spec import ExportSpec

SUFFIX = ".bpte"
METHOD = "forward"
FILE_IDENTIFIER = b"BP08"  # bundled_program_schema.fbs of executorch 1.5
REFERENCES = "eager fp32 PyTorch: the source checkpoint's module (not the quantized one)"
# The cosine threshold verify uses, by quantization mode.
COSINE_THRESHOLD = {"none": 0.999, "int8": 0.99, "int8-dynamic": 0.99}
# ExecuTorch's allclose check: atol = scale * max |reference| over the bundled cases, rtol = 0.
# fp32: kernel rounding only (vit_pico, XNNPACK, 8 bikes frames: max abs err 4.8e-7 at max |ref| 2.3);
# int8 vs the fp32 reference: 10 % of the range (vit_pico: 3.4 % with --num-calib 4, 0.7 % with 32).
ATOL_SCALE = {"none": 1e-3, "int8": 0.1, "int8-dynamic": 0.1}
# ExecuTorch ScalarType codes (executorch.exir.scalar_type) -> torch dtypes we bundle.
_DTYPES = {0: torch.uint8, 1: torch.int8, 4: torch.int64, 6: torch.float32, 11: torch.bool}


def bundle_path(pte: str | Path) -> Path:
    """MODEL.pte -> MODEL.bpte"""
    return Path(pte).with_suffix(SUFFIX)


def bundle_inputs(
    spec: ExportSpec, calib_dir: str | Path | None, count: int, offset: int = 0
) -> tuple[list[tuple[torch.Tensor, ...]], dict]:
    """-> (up to ``count`` input tuples, what they are). Real inputs from ``calib_dir`` past ``offset``
    (the frames calibration used) when the spec makes inputs from frames, else the example inputs."""
    if count < 1:
        raise ExportError(f"--bundle {count}: the number of bundled cases must be at least 1")
    if calib_dir is not None and spec.load_inputs is not None:
        try:
            xs = spec.load_inputs(calib_dir, limit=count, offset=offset)
        except ExportError:
            if not offset:
                raise
            raise ExportError(
                f"--bundle {count}: {calib_dir} has no frames left after the {offset} used for calibration; "
                "add frames or lower --num-calib"
            ) from None
        what = "real frames" if spec.kind == "encoder" else "inputs made from real frames"
        info = {
            "inputs": f"{what}, held out from calibration" if offset else what,
            "inputs_source": str(calib_dir),
            "inputs_offset": offset,
        }
        return [(x.contiguous(),) for x in xs], info
    return [tuple(x.contiguous() for x in spec.example_inputs)], {"inputs": "example inputs"}


def write_bundled_program(
    pte: Path, spec: ExportSpec, cases: list[tuple[torch.Tensor, ...]], info: dict, quantize_mode: str
) -> dict:
    """Write ``MODEL.bpte`` beside ``pte`` (references: ``spec.module``, fp32 eager) -> the manifest entry."""
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.core import BundledProgram
    from executorch.devtools.bundled_program.serialize import serialize_from_bundled_program_to_flatbuffer

    test_cases, peak = [], 0.0
    with torch.no_grad():
        for xs in cases:
            ys = tuple(y.detach().contiguous().clone() for y in spec.outputs(*xs).values())
            peak = max([peak] + [float(y.abs().max()) for y in ys if y.is_floating_point()])
            test_cases.append(MethodTestCase(inputs=xs, expected_outputs=ys))
    # pte_file_path: the bundle holds the .pte's bytes exactly as written (checked by sha256 on verify)
    program = BundledProgram(None, [MethodTestSuite(METHOD, test_cases)], pte_file_path=str(pte))
    try:
        buf = serialize_from_bundled_program_to_flatbuffer(program)
    except Exception as e:
        raise ExportError(f"could not serialize the bundled program: {type(e).__name__}: {e}") from e
    path = bundle_path(pte)
    path.write_bytes(buf)
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "size_bytes": len(buf),
        "method": METHOD,
        "cases": len(test_cases),
        **info,
        "references": REFERENCES,
        "comparison": {
            "cosine_min": COSINE_THRESHOLD[quantize_mode],
            "rtol": 0.0,
            "atol": ATOL_SCALE[quantize_mode] * peak,
            "atol_rule": f"{ATOL_SCALE[quantize_mode]:g} x max |reference| ({peak:.4g})",
        },
    }


@dataclass
class BundleContents:
    program: bytes
    method: str
    cases: list[tuple[list[torch.Tensor], list[torch.Tensor]]]  # (inputs, expected outputs)


def _table_vector(obj, vtable_offset: int, cls) -> list:
    """The tables in a vector field of a generated flatbuffer object, as ``cls`` objects.

    executorch 1.5's generated accessors for nested tables (``MethodTestSuites(j)``, ``TestCases(j)``,
    ``Inputs(j)``) fail with "'module' object is not callable" (their trailing module imports shadow the
    classes), so vectors of tables are walked here; leaf accessors of the generated classes work.
    """
    tab = obj._tab
    o = tab.Offset(vtable_offset)
    if not o:
        return []
    start, items = tab.Vector(o), []
    for j in range(tab.VectorLen(o)):
        item = cls()
        item.Init(tab.Bytes, tab.Indirect(start + 4 * j))
        items.append(item)
    return items


def _tensor(value, where: str) -> torch.Tensor:
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer.Tensor import (
        Tensor,
    )
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer.ValueUnion import (
        ValueUnion,
    )

    if value.ValType() != ValueUnion.Tensor:
        raise ExportError(f"{where} is not a tensor (only tensor inputs and outputs are bundled here)")
    table = value.Val()
    t = Tensor()
    t.Init(table.Bytes, table.Pos)
    dtype = _DTYPES.get(t.ScalarType())
    if dtype is None:
        raise ExportError(f"{where} has an unsupported scalar type {t.ScalarType()}")
    sizes = [int(s) for s in t.SizesAsNumpy()] if t.SizesLength() else []
    data = t.DataAsNumpy().tobytes() if t.DataLength() else b""
    numel = math.prod(sizes)
    if len(data) != numel * torch.empty((), dtype=dtype).element_size():
        raise ValueError(f"{where}: {len(data)} bytes for shape {sizes}")
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(sizes) if numel else torch.empty(sizes)


def read_bundled_program(path: str | Path) -> tuple[bytes, BundleContents]:
    """Parse a ``.bpte`` in Python -> (its bytes, contents). ExportError if truncated or foreign."""
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer import (
        BundledMethodTestCase as case_fb,
    )
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer import (
        BundledMethodTestSuite as suite_fb,
    )
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer import (
        BundledProgram as program_fb,
    )
    from executorch.devtools.bundled_program.serialize.generated.bundled_program_flatbuffer import (
        Value as value_fb,
    )
    from executorch.devtools.bundled_program.version import BUNDLED_PROGRAM_SCHEMA_VERSION

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"bundled program not found: {path}")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        found = buf[4:8] if len(buf) >= 8 else b"(file too short)"
        raise ExportError(
            f"{path.name} is not an ExecuTorch bundled program (identifier {found!r}, expected "
            f"{FILE_IDENTIFIER!r}); write one with `glasses-export lower ... --bundle N`"
        )
    try:
        root = program_fb.BundledProgram.GetRootAs(buf, 0)
        version = root.Version()
        if version != BUNDLED_PROGRAM_SCHEMA_VERSION:
            raise ExportError(
                f"{path.name} is bundled-program schema version {version}; this executorch reads version "
                f"{BUNDLED_PROGRAM_SCHEMA_VERSION}: re-export it"
            )
        # field offsets from bundled_program_schema.fbs: BundledProgram.method_test_suites = 6,
        # BundledMethodTestSuite.test_cases = 6, BundledMethodTestCase.inputs = 4 / expected_outputs = 6
        suites = _table_vector(root, 6, suite_fb.BundledMethodTestSuite)
        if root.ProgramIsNone() or len(suites) != 1:
            raise ValueError(f"no program, or {len(suites)} test suites where one is expected")
        program = root.ProgramAsNumpy().tobytes()
        method = suites[0].MethodName().decode()
        cases = []
        for i, case in enumerate(_table_vector(suites[0], 6, case_fb.BundledMethodTestCase)):
            values = [_table_vector(case, off, value_fb.Value) for off in (4, 6)]
            ins = [_tensor(v, f"case {i} input {j}") for j, v in enumerate(values[0])]
            outs = [_tensor(v, f"case {i} expected output {j}") for j, v in enumerate(values[1])]
            if not ins or not outs:
                raise ValueError(f"case {i} has no inputs or no expected outputs")
            cases.append((ins, outs))
        if not cases:
            raise ValueError("no test cases")
    except ExportError:
        raise
    except Exception as e:  # struct.error, ValueError, IndexError, UnicodeDecodeError from a bad buffer
        raise ExportError(
            f"{path.name} is truncated or corrupted ({type(e).__name__}: {e}); re-export it with --bundle"
        ) from None
    return buf, BundleContents(program=program, method=method, cases=cases)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def verify_bundled(path: str | Path, threshold: float | None = None, threads: int = 2) -> dict:
    """Run every bundled case through ExecuTorch and compare with its expected output.

    Uses the manifest beside the file when there is one (its sha256s, quantization and tolerances);
    without one, ``threshold`` is required. VerificationFailed below the cosine threshold.
    """
    from export.backends import RUNS_HERE
    from export.verify import RUNS_ELSEWHERE
    from glasses_runtime.manifest import ManifestError, load_manifest, manifest_path

    path = Path(path)
    buf, contents = read_bundled_program(path)
    try:
        m = load_manifest(path)
    except ManifestError:
        if manifest_path(path).is_file():
            raise
        m = None
    entry = (m.bundled or {}) if m is not None else {}
    mode = m.quantization.get("mode", "none") if m is not None else None
    if m is None and threshold is None:
        raise ExportError(
            f"no manifest {manifest_path(path).name} beside {path.name}: pass --threshold (0.999 fp32, 0.99 int8)"
        )
    if m is not None:
        if m.backend not in RUNS_HERE:
            where = RUNS_ELSEWHERE.get(m.backend, "on its target, with ExecuTorch's bundled-program runner")
            raise ExportError(f"{path.name} was lowered for {m.backend}: it runs only {where}")
        if entry.get("sha256") and entry["sha256"] != hashlib.sha256(buf).hexdigest():
            raise ExportError(
                f"{path.name} does not match its manifest (sha256 differs): it was changed, truncated or "
                "replaced; re-export it"
            )
        if hashlib.sha256(contents.program).hexdigest() != m.pte_sha256:
            raise ExportError(
                f"the program inside {path.name} is not the {m.pte_file} its manifest describes; re-export it"
            )
        want = [t.shape for t in m.inputs]
        for i, (ins, _) in enumerate(contents.cases):
            if [list(x.shape) for x in ins] != want:
                raise ExportError(
                    f"{path.name} case {i} inputs are {[list(x.shape) for x in ins]}, not {want}"
                )
    comparison = entry.get("comparison", {})
    thr = (
        threshold
        if threshold is not None
        else comparison.get("cosine_min", COSINE_THRESHOLD.get(mode, 0.999))
    )
    rtol, atol = float(comparison.get("rtol", 0.0)), comparison.get("atol")

    from executorch.extension.pybindings import portable_lib

    from glasses_runtime.engines.pte import set_threads

    set_threads(threads)
    try:
        # the program alone first, with the full flatbuffer verification, before the bundled loader
        portable_lib._load_program_from_buffer(
            contents.program, program_verification=portable_lib.Verification.InternalConsistency
        )
        bundle = portable_lib._load_bundled_program_from_buffer(buf)
    except Exception as e:
        raise ExportError(
            f"ExecuTorch cannot load the program in {path.name} ({type(e).__name__}: {e}); re-export it"
        ) from None
    per_case = []
    for i, (_, expected) in enumerate(contents.cases):
        allclose = None
        try:
            if atol is not None:  # ExecuTorch's own check at the recorded tolerance
                with contextlib.redirect_stderr(io.StringIO()):  # its log line on a mismatch: reported below
                    outs = bundle.verify_result_with_bundled_expected_output(contents.method, i, rtol, atol)
                allclose = True
        except RuntimeError:
            allclose = False
        if allclose is not True:
            try:  # the same run with an unbounded tolerance: load the bundled input, execute, return outputs
                outs = bundle.verify_result_with_bundled_expected_output(contents.method, i, 0.0, math.inf)
            except RuntimeError as e:
                raise VerificationFailed(
                    f"{path.name} case {i}: ExecuTorch could not run it or its output is not finite ({e})"
                ) from None
        got = torch.cat([o.flatten().float() for o in outs])
        ref = torch.cat([o.flatten().float() for o in expected])
        if got.numel() != ref.numel():
            raise VerificationFailed(
                f"{path.name} case {i}: {got.numel()} output values, expected {ref.numel()}"
            )
        per_case.append(
            {
                "case": i,
                "cosine": _cosine(got, ref),
                "max_abs_err": float((got - ref).abs().max()),
                "allclose": allclose,
            }
        )
    cos = [c["cosine"] for c in per_case]
    worst = min(range(len(cos)), key=lambda i: cos[i] if not math.isnan(cos[i]) else -math.inf)
    passed = all(c >= thr for c in cos)
    report = {
        "bpte": str(path),
        "kind": m.kind if m is not None else None,
        "method": contents.method,
        "cases": len(per_case),
        "inputs": entry.get("inputs", "bundled inputs"),
        "references": entry.get("references", "bundled expected outputs"),
        "cosine_mean": sum(cos) / len(cos),
        "cosine_min": min(cos),
        "max_abs_err": max(c["max_abs_err"] for c in per_case),
        "threshold": thr,
        "allclose": {"rtol": rtol, "atol": atol} if atol is not None else None,
        "quantization": mode,
        "per_case": per_case,
        "passed": passed,
    }
    if not passed:
        raise VerificationFailed(
            f"{path.name} disagrees with its bundled references: case {worst} cosine {cos[worst]:.4f} < {thr} "
            f"(min over {len(cos)} cases, max abs err {per_case[worst]['max_abs_err']:.4g})"
        )
    return report
