"""Per-op profile of a ``.pte`` with ExecuTorch's devtools: ETDump + ``executorch.devtools.Inspector``.

    .venv/bin/python benchmarks/profile_etdump.py models/t224/encoder_vit_tiny_int8_xnnpack.pte \
        --runs 30 --warmup 5 --out benchmarks/results/etdump_vit_tiny_224.json

Loads the program through ``executorch.runtime`` with event tracing on (``enable_etdump=True``; the
pip wheel is built with the event tracer), runs ``forward`` warm-up + ``--runs`` times on one random
input, writes the ETDump, and reads it back with the Inspector. The first ``--warmup`` samples of
every event are dropped, the rest give a median per event. Prints the top events and the same ops
grouped by kind (XNNPACK names them "Fully Connected (NC, QS8, QC8W) GEMM #12": the kind is the part
before " #"), with their share of the delegate call. XNNPACK reports each operator of its runtime
separately, so the granularity is one XNNPACK operator (after its own fusions), not one aten op.
Two labels come out odd in executorch 1.5.1: GELU shows as "Invalid Unary Op", and one of the fp32
batch-matmuls of a program as "Batch Matrix Multiply (NC, F32, QC8W)". The delegate call minus the
sum of the op medians (~10% on vit_tiny 224) is XNNPACK's dispatch between operators plus the tracer.

``--etrecord`` passes an ETRecord to the Inspector (adds op types / module names where it can map
them); our lowering does not write one, and XNNPACK's string event names need none to be read.
The ETDump itself is kept with ``--etdump PATH``. Close other jobs first: on a shared 2-core machine
the milliseconds mean little, the shares somewhat more.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

_SUFFIX = re.compile(r"\s+#\d+$")
_TOP_LEVEL = ("Method::execute", "DELEGATE_CALL")


def op_kind(name: str) -> str:
    """'Fully Connected (NC, QS8, QC8W) GEMM #12' -> 'Fully Connected (NC, QS8, QC8W) GEMM'"""
    return _SUFFIX.sub("", name)


_FLOAT32 = 6  # c10::ScalarType::Float, as MethodMeta's TensorInfo.dtype() reports it


def run_with_etdump(pte: Path, runs: int, warmup: int, threads: int, etdump: Path, seed: int = 0) -> dict:
    """Run ``forward`` warmup + runs times with event tracing; write the ETDump to ``etdump``."""
    import torch
    from executorch.runtime import Runtime

    from glasses_runtime.engines.pte import set_threads

    set_threads(threads)
    program = Runtime.get().load_program(pte, enable_etdump=True)
    method = program.load_method("forward")
    meta = method.metadata
    gen = torch.Generator().manual_seed(seed)
    inputs = []
    for i in range(meta.num_inputs()):
        info = meta.input_tensor_meta(i)
        if info.dtype() != _FLOAT32:
            raise SystemExit(f"error: input {i} of {pte.name} is not float32 ({info}); not supported here")
        inputs.append(torch.rand(*info.sizes(), generator=gen))
    for _ in range(warmup + runs):
        method.execute(inputs)
    program.write_etdump_result_to_file(str(etdump), str(etdump.with_suffix(".debug.bin")))
    return {"inputs": [list(x.shape) for x in inputs]}


def summarize(etdump: Path, warmup: int, etrecord: Path | None = None) -> dict:
    """Inspector over the ETDump -> medians per event (warm-up samples dropped) and per op kind."""
    from executorch.devtools import Inspector

    inspector = Inspector(etdump_path=str(etdump), etrecord=str(etrecord) if etrecord else None)
    events, top = [], {}
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for ev in block.events:
            samples = list(ev.perf_data.raw) if ev.perf_data is not None else []
            samples = samples[warmup:] if len(samples) > warmup else samples
            if not samples:
                continue
            med = statistics.median(samples)
            if ev.name in _TOP_LEVEL and not ev.is_delegated_op:
                top[ev.name] = {"p50_ms": med, "runs": len(samples)}
                continue
            event = {
                "name": ev.name,
                "kind": op_kind(ev.name),
                "delegated": bool(ev.is_delegated_op),
                "p50_ms": med,
                "mean_ms": statistics.fmean(samples),
                "runs": len(samples),
            }
            if ev.op_types:  # only with an ETRecord that maps the event back to aten ops
                event["op_types"] = list(ev.op_types)
            events.append(event)
    if not events:
        raise SystemExit(
            f"error: {etdump} holds no per-op events (is event tracing built into this runtime?)"
        )
    ops_sum = sum(e["p50_ms"] for e in events)
    base = top.get("DELEGATE_CALL", top.get("Method::execute", {})).get("p50_ms") or ops_sum
    kinds: dict[str, dict] = defaultdict(lambda: {"count": 0, "p50_ms": 0.0})
    for e in events:
        e["share"] = e["p50_ms"] / base
        k = kinds[e["kind"]]
        k["count"] += 1
        k["p50_ms"] += e["p50_ms"]
    by_kind = sorted(
        ({"kind": k, **v, "share": v["p50_ms"] / base} for k, v in kinds.items()),
        key=lambda r: -r["p50_ms"],
    )
    return {
        "method_execute_p50_ms": top.get("Method::execute", {}).get("p50_ms"),
        "delegate_call_p50_ms": top.get("DELEGATE_CALL", {}).get("p50_ms"),
        "sum_of_op_p50_ms": ops_sum,
        "events": len(events),
        "by_kind": by_kind,
        "top_events": sorted(events, key=lambda e: -e["p50_ms"]),
    }


def _rounded(obj, digits: int = 4):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    return obj


def table(report: dict, top: int) -> str:
    lines = [
        f"{report['pte']}: {report['runs']} runs after {report['warmup']} warm-up, {report['threads']} threads",
        f"Method::execute p50 {report['method_execute_p50_ms']:.2f} ms, delegate call "
        f"{report['delegate_call_p50_ms'] or 0:.2f} ms, sum of {report['events']} op medians "
        f"{report['sum_of_op_p50_ms']:.2f} ms",
        "",
        "| op kind | count | sum of p50 ms | share of delegate call |",
        "|---|---|---|---|",
    ]
    for r in report["by_kind"][:top]:
        lines.append(f"| {r['kind']} | {r['count']} | {r['p50_ms']:.3f} | {100 * r['share']:.1f}% |")
    lines += ["", "| event | p50 ms | share |", "|---|---|---|"]
    for e in report["top_events"][:top]:
        lines.append(f"| {e['name']} | {e['p50_ms']:.3f} | {100 * e['share']:.1f}% |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pte", type=Path)
    ap.add_argument("--runs", type=int, default=30, help="profiled runs (after warm-up)")
    ap.add_argument("--warmup", type=int, default=5, help="runs whose samples are dropped")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=15, help="rows per table")
    ap.add_argument("--etrecord", type=Path, default=None, help="optional ETRecord for the Inspector")
    ap.add_argument("--etdump", type=Path, default=None, help="keep the ETDump here (default: a temp file)")
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = ap.parse_args()
    if not args.pte.is_file():
        raise SystemExit(f"error: {args.pte} not found")
    if args.runs < 1 or args.warmup < 0:
        raise SystemExit("error: --runs must be >= 1 and --warmup >= 0")

    with tempfile.TemporaryDirectory() as tmp:
        etdump = args.etdump or Path(tmp) / "run.etdp"
        etdump.parent.mkdir(parents=True, exist_ok=True)
        info = run_with_etdump(args.pte, args.runs, args.warmup, args.threads, etdump)
        summary = summarize(etdump, args.warmup, args.etrecord)
    report = {
        "pte": str(args.pte),
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        **info,
        **summary,
    }
    manifest = args.pte.with_suffix(".manifest.json")
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        report["preset"] = m.get("preset")
        report["quantization"] = {k: m.get("quantization", {}).get(k) for k in ("mode", "scope")}
    print(table(report, args.top))
    if args.out:
        report["top_events"] = report["top_events"][: max(args.top, 50)]  # by_kind covers every event
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_rounded(report), indent=1) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
