"""Lowering an exported program to an ExecuTorch ``.pte`` for one backend.

| backend  | runs here | what it needs |
|----------|-----------|---------------|
| xnnpack  | yes       | nothing (in the executorch wheel) |
| portable | yes       | nothing: ExecuTorch's portable kernels, no delegate (the slow reference) |
| coreml   | no (Apple)| coremltools (comes with executorch); produces the .pte on Linux |
| vulkan   | no (GPU)  | nothing to lower; running needs a Vulkan-enabled runtime build |
| ethos-u  | no (NPU)  | ``executorch[ethos-u]`` + ``ethos-u-vela`` in their own venv (``make ethos-u-setup``: their ml_dtypes pin conflicts with onnx); static int8 only; the manifest gets vela's estimate |
| qnn      | no (NPU)  | the Qualcomm QNN SDK (``QNN_SDK_ROOT``) |
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.export import ExportedProgram

from export.errors import BackendUnavailable, ExportError


@dataclass
class Lowered:
    buffer: bytes
    delegation: dict


def _delegation(edge) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    df = info.get_operator_delegation_dataframe()
    outside = {
        str(r.op_type): int(r.occurrences_in_non_delegated_graphs)
        for r in df.itertuples()
        if r.op_type not in ("Total", "getitem") and r.occurrences_in_non_delegated_graphs > 0
    }
    return {
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_nodes": int(info.num_delegated_nodes),
        "non_delegated_nodes": int(info.num_non_delegated_nodes),
        "ops_outside_delegates": outside,
        "fully_delegated": not outside and info.num_delegated_subgraphs > 0,
    }


def _finish(edge) -> Lowered:
    delegation = _delegation(edge)
    program = edge.to_executorch()
    return Lowered(buffer=bytes(program.buffer), delegation=delegation)


def with_partitioners(ep: ExportedProgram, partitioners: list) -> Lowered:
    from executorch.exir import to_edge_transform_and_lower

    return _finish(to_edge_transform_and_lower(ep, partitioner=partitioners))


def lower_xnnpack(ep: ExportedProgram, quantized: bool) -> Lowered:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return with_partitioners(ep, [XnnpackPartitioner()])


def lower_portable(ep: ExportedProgram, quantized: bool) -> Lowered:
    return with_partitioners(ep, [])


def lower_coreml(ep: ExportedProgram, quantized: bool) -> Lowered:
    try:
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner
    except ImportError as e:
        raise BackendUnavailable(f"coreml needs coremltools ({e}); pip install coremltools") from None
    return with_partitioners(ep, [CoreMLPartitioner()])


def lower_vulkan(ep: ExportedProgram, quantized: bool) -> Lowered:
    from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner

    return with_partitioners(ep, [VulkanPartitioner()])


# Ethos-U accelerator configurations vela compiles for (MACs per cycle after the dash).
ETHOS_U_TARGETS = (
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
    "ethos-u85-128",
    "ethos-u85-256",
    "ethos-u85-512",
    "ethos-u85-1024",
    "ethos-u85-2048",
)
DEFAULT_ETHOS_U_TARGET = "ethos-u55-128"


def ethos_u_compile_spec(target: str | None = None):
    """Arm's EthosUCompileSpec for ``target`` (vela's default system config and memory mode for it)."""
    target = target or DEFAULT_ETHOS_U_TARGET
    if target not in ETHOS_U_TARGETS:
        raise ExportError(f"unknown Ethos-U target '{target}'; choose one of: {', '.join(ETHOS_U_TARGETS)}")
    try:
        from executorch.backends.arm.ethosu import EthosUCompileSpec
    except ImportError as e:
        raise BackendUnavailable(
            f"ethos-u needs the Arm toolchain ({e}): it lives in its own venv because its ml_dtypes pin "
            "conflicts with onnx: run `make ethos-u-setup` and use .venv-ethos/bin/glasses-export (or pip install "
            "'executorch[ethos-u]==1.5.1' ethos-u-vela in a separate virtualenv)"
        ) from None
    return EthosUCompileSpec(target)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what vela prints (its Python report and the C++ compiler's) to stderr: stdout stays --json's."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def vela_estimate(folder: str | Path, target: str) -> dict:
    """vela's performance estimate from the ``*_summary_*.csv`` it wrote under ``folder``.

    Only fields vela wrote: clock cycles, inference time at the system config's core clock, MACs,
    the memory each area holds (vela reports KiB; here bytes) and the weights before/after encoding.
    """
    files = sorted(Path(folder).rglob("*_summary_*.csv"))
    if not files:
        raise ExportError(f"vela wrote no summary CSV under {folder}; cannot report its performance estimate")
    with open(files[-1], newline="") as f:
        row = next(csv.DictReader(f), None) or {}
    estimate: dict = {"target": target}
    for key in ("system_config", "memory_mode", "accelerator_configuration"):
        if row.get(key):
            estimate[key] = row[key]
    clock = _number(row.get("core_clock"))
    if clock:
        estimate["core_clock_hz"] = int(clock)
    seconds = _number(row.get("inference_time"))
    if seconds is not None:
        estimate["inference_time_ms"] = seconds * 1e3
    fps = _number(row.get("inferences_per_second"))
    if fps is not None:
        estimate["inferences_per_second"] = fps
    for key, column in (
        ("cycles", "cycles_total"),
        ("npu_cycles", "cycles_npu"),
        ("macs", "nn_macs"),
        ("original_weights_bytes", "total_original_weights"),
        ("npu_encoded_weights_bytes", "total_npu_encoded_weights"),
    ):
        value = _number(row.get(column))
        if value is not None:
            estimate[key] = int(round(value))
    for area in ("sram", "dram", "on_chip_flash", "off_chip_flash"):
        kib = _number(row.get(f"{area}_memory_used"))
        if kib:  # vela lists every memory area; 0 where the system config does not use it
            estimate[f"{area}_bytes"] = int(round(kib * 1024))
    return estimate


def describe_npu_estimate(est: dict) -> str:
    """One line for the CLI: vela's estimate, with only the fields vela reported."""
    where = ", ".join(str(est[k]) for k in ("target", "system_config", "memory_mode") if k in est)
    parts = []
    if "inference_time_ms" in est:
        parts.append(f"{est['inference_time_ms']:.2f} ms/inference")
    if "cycles" in est:
        parts.append(f"{est['cycles']:,} cycles")
    if "macs" in est:
        parts.append(f"{est['macs']:,} MACs")
    for key, label in (("sram_bytes", "SRAM"), ("dram_bytes", "DRAM"), ("off_chip_flash_bytes", "flash")):
        if key in est:
            parts.append(f"{label} {est[key] / 1024:.0f} KiB")
    return f"vela estimate ({where}): {', '.join(parts) or 'no figures'}"


def lower_ethos_u(ep: ExportedProgram, quantized: bool, target: str | None = None) -> Lowered:
    """TOSA -> vela for one Ethos-U configuration; the delegation report carries vela's estimate.

    ``ep`` must come from ``quantize(..., backend="ethos-u")`` (Arm's quantizer; the same target).
    """
    if not quantized:
        raise ExportError("ethos-u runs int8 only: add --quantize int8")
    target = target or DEFAULT_ETHOS_U_TARGET
    spec = ethos_u_compile_spec(target)
    from executorch.backends.arm.ethosu import EthosUPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    with tempfile.TemporaryDirectory(prefix="vela-") as tmp:
        spec.dump_intermediate_artifacts_to(tmp)  # vela keeps its output (and summary CSV) there
        with _stdout_to_stderr():
            edge = to_edge_transform_and_lower(
                ep,
                partitioner=[EthosUPartitioner(spec)],
                compile_config=EdgeCompileConfig(_check_ir_validity=False),
            )
        estimate = vela_estimate(tmp, target) if any(Path(tmp).rglob("*_summary_*.csv")) else None
    lowered = _finish(edge)
    if estimate is not None:
        subgraphs = lowered.delegation["delegated_subgraphs"]
        if subgraphs > 1:  # each vela run writes the same summary file: the last one is what is left
            estimate["covers"] = f"the last of {subgraphs} NPU subgraphs only"
        lowered.delegation["npu_estimate"] = estimate
    return lowered


def lower_qnn(ep: ExportedProgram, quantized: bool) -> Lowered:
    root = os.environ.get("QNN_SDK_ROOT")
    if not root or not os.path.isdir(root):
        raise BackendUnavailable(
            "qnn needs the Qualcomm AI Engine Direct (QNN) SDK: install it and set QNN_SDK_ROOT to its folder "
            "(and LD_LIBRARY_PATH to $QNN_SDK_ROOT/lib/x86_64-linux-clang)"
        )
    try:
        from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
        from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
        from executorch.backends.qualcomm.utils.utils import (
            generate_htp_compiler_spec,
            generate_qnn_executorch_compiler_spec,
        )
    except ImportError as e:
        raise BackendUnavailable(
            f"the executorch wheel lacks the QNN AOT bindings ({e}); build executorch with QNN"
        ) from None
    specs = generate_qnn_executorch_compiler_spec(
        soc_model=QcomChipset.SM8650, backend_options=generate_htp_compiler_spec(use_fp16=not quantized)
    )
    return with_partitioners(ep, [QnnPartitioner(specs)])


# Explicit registry: backend name -> lowering function.
BACKENDS: dict[str, Callable[[ExportedProgram, bool], Lowered]] = {
    "xnnpack": lower_xnnpack,
    "portable": lower_portable,
    "coreml": lower_coreml,
    "vulkan": lower_vulkan,
    "ethos-u": lower_ethos_u,
    "qnn": lower_qnn,
}
RUNS_HERE = ("xnnpack", "portable")


def lower(ep: ExportedProgram, backend: str, quantized: bool, npu_target: str | None = None) -> Lowered:
    if backend not in BACKENDS:
        raise ExportError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    if backend == "ethos-u":
        return lower_ethos_u(ep, quantized, npu_target)
    return BACKENDS[backend](ep, quantized)
