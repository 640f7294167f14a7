"""What is inside a ``.pte``: methods, input/output shapes and dtypes, delegates, ops left to
portable kernels, size. Reads the program with ExecuTorch's own loader and flatbuffer reader.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_models.checkpoint import file_sha256
from export.errors import ExportError
from glasses_runtime.manifest import ManifestError, load_manifest


def inspect_pte(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"file not found: {path}")
    data = path.read_bytes()
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary

        program = deserialize_pte_binary(data).program
    except Exception as e:
        raise ExportError(
            f"{path} is not a readable ExecuTorch program ({type(e).__name__}); it may be truncated or not a .pte"
        ) from None
    from executorch.runtime import Runtime

    try:
        loaded = Runtime.get().load_program(path)
    except Exception as e:
        raise ExportError(f"{path} does not load in executorch.runtime ({e}); re-export it") from None
    methods = []
    for plan in program.execution_plan:
        meta, load_error = None, None
        if plan.name in loaded.method_names:
            try:
                meta = loaded.load_method(plan.name).metadata
            except Exception as e:  # a delegate this runtime lacks (ethos-u, coreml, ...): read the program
                load_error = f"{type(e).__name__}: {e}"
        delegates = Counter(d.id for d in plan.delegates)
        ops: Counter = Counter()
        for chain in plan.chains:
            for ins in chain.instructions:
                args = ins.instr_args
                if hasattr(args, "op_index"):
                    op = plan.operators[args.op_index]
                    ops[op.name + (f".{op.overload}" if op.overload else "")] += 1
        entry = {
            "name": plan.name,
            "delegates": dict(delegates),
            "ops_outside_delegates": dict(ops),
            "fully_delegated": bool(delegates) and not ops,
        }
        if meta is not None:
            entry["inputs"] = [_tensor(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
            entry["outputs"] = [_tensor(meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]
        else:
            entry["inputs"] = [t for t in (_program_tensor(plan, i) for i in plan.inputs) if t]
            entry["outputs"] = [t for t in (_program_tensor(plan, i) for i in plan.outputs) if t]
        if load_error is not None:
            entry["loads_here"] = False
            entry["load_error"] = load_error
        methods.append(entry)
    report = {"file": str(path), "size_bytes": len(data), "sha256": file_sha256(path), "methods": methods}
    try:
        m = load_manifest(path)
        report["manifest"] = {
            "kind": m.kind,
            "preset": m.preset,
            "backend": m.backend,
            "quantization": m.quantization.get("mode", "none"),
            "hash_matches": m.pte_sha256 == report["sha256"],
        }
    except ManifestError as e:
        report["manifest"] = {"error": str(e)}
    return report


# ExecuTorch ScalarType codes (what the runtime's tensor info and the flatbuffer give) -> the
# names the manifest uses.
_DTYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
}
_DTYPES.update({11: "bool", 15: "bfloat16"})


def _dtype_name(code) -> str:
    try:
        return _DTYPES.get(int(code), f"scalar_type_{int(code)}")
    except (TypeError, ValueError):  # an enum: keep its own name
        return str(code).split(".")[-1]


def _tensor(info) -> dict:
    return {"shape": list(info.sizes()), "dtype": _dtype_name(info.dtype())}


def _program_tensor(plan, index: int) -> dict | None:
    """Shape and dtype of value ``index`` as the program's flatbuffer declares it (no runtime needed)."""
    value = plan.values[index].val
    if not hasattr(value, "sizes"):
        return None
    return {"shape": list(value.sizes), "dtype": _dtype_name(value.scalar_type)}
