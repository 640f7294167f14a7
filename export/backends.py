"""Lowering an exported program to an ExecuTorch ``.pte`` for one backend.

| backend  | runs here | what it needs |
|----------|-----------|---------------|
| xnnpack  | yes       | nothing (in the executorch wheel) |
| portable | yes       | nothing: ExecuTorch's portable kernels, no delegate (the slow reference) |
| coreml   | no (Apple)| coremltools (comes with executorch); produces the .pte on Linux |
| vulkan   | no (GPU)  | nothing to lower; running needs a Vulkan-enabled runtime build |
| ethos-u  | no (NPU)  | ``executorch[ethos-u]`` + ``ethos-u-vela``: int8 only; separate venv (ml_dtypes conflicts with onnx) |
| qnn      | no (NPU)  | the Qualcomm QNN SDK (``QNN_SDK_ROOT``) |
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

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


def lower_ethos_u(ep: ExportedProgram, quantized: bool) -> Lowered:
    if not quantized:
        raise ExportError("ethos-u runs int8 only: add --quantize int8")
    try:
        from executorch.backends.arm.ethosu import EthosUCompileSpec, EthosUPartitioner
    except ImportError as e:
        raise BackendUnavailable(
            f"ethos-u needs the Arm toolchain ({e}): in a separate virtualenv (its ml_dtypes pin conflicts with "
            "onnx) run pip install 'executorch[ethos-u]==1.5.1' ethos-u-vela"
        ) from None
    spec = EthosUCompileSpec("ethos-u55-128")
    return with_partitioners(ep, [EthosUPartitioner(spec)])


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


def lower(ep: ExportedProgram, backend: str, quantized: bool) -> Lowered:
    if backend not in BACKENDS:
        raise ExportError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[backend](ep, quantized)
