"""Int8 post-training quantization with PT2E and ExecuTorch's XNNPACKQuantizer (Arm's EthosUQuantizer
for the ``ethos-u`` backend: static int8 over the whole graph, see ``_ethos_u_quantizer``).

static: per-channel symmetric int8 weights, int8 activations calibrated on real frames.
dynamic: per-channel int8 weights, activations quantized per call (no calibration data needed).

Scope (what runs in int8; everything else stays fp32 inside the same XNNPACK subgraph):

| scope | int8 | fp32 |
|---|---|---|
| ``matmul`` (default) | linear, convolution | attention ``bmm``, softmax, GELU, layer norm, residual adds |
| ``attention`` | linear, convolution, the two attention ``bmm`` | softmax, GELU, layer norm, residual adds |
| ``all`` | ``quantizer.set_global``: linear, conv, add, mul (+ cat, pooling) | ``bmm``, softmax, GELU, sqrt, div, sub |

``all`` loses fidelity (pico, 16 held-out real frames: cosine min 0.980 vs 0.99993 for ``matmul``)
because int8 residual streams and the variance products of layer norm lose the small differences
layer norm divides by. ``attention`` keeps those fp32 and quantizes the two activation x activation
products of attention instead. XNNPACKQuantizer has no ``bmm`` annotator (its patterns: linear,
conv, add, mul, cat, adaptive_avg_pool2d) and ExecuTorch's XNNPACK partitioner delegates ``bmm`` as
fp32 only, so this module brings both: ``_annotate_bmm`` (int8 in, int8 out; the right-hand operand,
k^T or v, symmetric, because XNNPACK's QS8 batch-matmul requires a zero point of 0 there) and
``xnnpack_partitioner(scope)``, whose ``bmm`` config also takes the static-int8 pattern
(dq -> bmm -> q), which the XNNPACK runtime runs as "Batch Matrix Multiply (NC, QS8)".

Measured on vit_tiny 224 (distilled student, 32 calibration + 16 held-out bikes frames, 2-core AVX2
machine without VNNI): ``attention`` keeps the fidelity of ``matmul`` (held-out cosine min 0.99993 vs
0.99994) but is not measurably faster: XNNPACK's QS8 batch-matmul takes as long as its fp32 one here
(ETDump: 3.05 vs 2.95 ms for the 24 bmm), and the int8 GEMMs of the linear layers (~60% of the time)
are the same in every scope. Hence ``matmul`` stays the default; ``attention`` is for CPUs with int8
dot-product instructions (Arm dotprod/i8mm, x86 VNNI), where it is untested.

    qmodel = quantize(spec.module, spec.example_inputs, calib, mode="int8", scope="matmul")
"""

from __future__ import annotations

import torch
from torch import nn

from export.errors import ExportError

MODES = ("none", "int8", "int8-dynamic")
SCOPES = ("matmul", "attention", "all")
# Ops that only move or reshape data: int8 in -> the same int8 out (the quantizer shares one observer).
_SHARED = {
    torch.ops.aten.permute.default,
    torch.ops.aten.transpose.int,
    torch.ops.aten.reshape.default,
    torch.ops.aten.view.default,
}


def _symmetric_activation():
    """Per-tensor symmetric int8 activations (zero point 0), calibrated like the default activations."""
    from torchao.quantization.pt2e import HistogramObserver
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    return QuantizationSpec(
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        qscheme=torch.per_tensor_symmetric,
        is_dynamic=False,
        observer_or_fake_quant_ctr=HistogramObserver.with_args(eps=2**-12),
    )


def _annotate_bmm(model: torch.fx.GraphModule, act, sym) -> int:
    """Annotate every ``aten.bmm``: int8 inputs and output; the second operand symmetric.

    The second operand usually comes from a linear layer through reshapes/permutes that share the
    linear's observer: that linear's output spec becomes the symmetric one, so the int8 tensor
    flows into the bmm without a requantization. Returns the number of bmm nodes annotated.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    def root(node):
        """Walk back over data-movement ops that share their input's observer."""
        while (
            isinstance(node, torch.fx.Node)
            and node.op == "call_function"
            and node.target in _SHARED
            and isinstance(
                getattr(node.meta.get(Q_ANNOTATION_KEY), "output_qspec", None), SharedQuantizationSpec
            )
        ):
            node = node.args[0]
        return node

    count = 0
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.bmm.default:
            continue
        a, b = node.args[0], node.args[1]
        ann = root(b).meta.get(Q_ANNOTATION_KEY)
        spec = getattr(ann, "output_qspec", None)
        if spec is not None and not isinstance(spec, SharedQuantizationSpec):
            ann.output_qspec = sym  # otherwise b is requantized to the symmetric spec on the way in
        node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
            input_qspec_map={a: act, b: sym}, output_qspec=act, _annotated=True
        )
        count += 1
    return count


def _quantizer(scope: str, config):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    class AttentionQuantizer(XNNPACKQuantizer):
        """XNNPACKQuantizer for linear + conv, plus int8 attention bmm (which it cannot annotate)."""

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            _annotate_bmm(model, config.input_activation, _symmetric_activation())
            return model

    quantizer = AttentionQuantizer() if scope == "attention" else XNNPACKQuantizer()
    if scope == "all":
        quantizer.set_global(config)
    else:
        quantizer.set_operator_type(torch.ops.aten.linear.default, config)
        quantizer.set_operator_type(torch.ops.aten.conv2d.default, config)
    return quantizer


def _ethos_u_quantizer(npu_target: str | None):
    """Arm's EthosUQuantizer for the compile spec the Ethos-U partitioner will get, over the whole graph.

    The NPU runs int8 only: anything left fp32 falls out of the delegate onto the CPU, so every op is
    annotated (``set_global``; int8 activations, per-channel symmetric int8 weights, int32 bias).
    """
    from export.backends import ethos_u_compile_spec

    spec = ethos_u_compile_spec(npu_target)  # BackendUnavailable without the Arm toolchain
    from executorch.backends.arm.quantizer import EthosUQuantizer, get_symmetric_quantization_config

    return EthosUQuantizer(spec).set_global(get_symmetric_quantization_config(is_per_channel=True))


def quantize(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    calibration: list[torch.Tensor],
    mode: str = "int8",
    scope: str = "matmul",
    backend: str = "xnnpack",
    npu_target: str | None = None,
) -> nn.Module:
    """-> a quantized GraphModule with the same call signature (re-export it with torch.export).

    ``backend="ethos-u"`` quantizes with Arm's EthosUQuantizer for ``npu_target`` (static int8, the
    whole graph; ``scope`` does not apply); every other backend with the XNNPACKQuantizer and ``scope``.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if mode not in ("int8", "int8-dynamic"):
        raise ExportError(f"unknown quantization '{mode}'; choose one of {', '.join(MODES)}")
    dynamic = mode == "int8-dynamic"
    if not dynamic and not calibration:
        raise ExportError("static int8 needs calibration images: pass --calib DIR with real frames")
    if scope not in SCOPES:
        raise ExportError(f"unknown quantization scope '{scope}'; choose one of {', '.join(SCOPES)}")
    if dynamic and scope == "attention":
        raise ExportError(
            "scope 'attention' quantizes activation x activation products, which needs calibrated ranges: "
            "use --quantize int8 (static) or --scope matmul"
        )
    if backend == "ethos-u":
        if dynamic:
            raise ExportError(
                "ethos-u runs static int8 only (the NPU has no dynamic quantization): use --quantize int8 --calib DIR"
            )
        quantizer = _ethos_u_quantizer(npu_target)
    else:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            get_symmetric_quantization_config,
        )

        config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
        quantizer = _quantizer(scope, config)
    exported = torch.export.export(module, example_inputs)
    # Arm's annotation passes cannot take the guard-check call_module that .module() inserts.
    graph = exported.module(check_guards=False) if backend == "ethos-u" else exported.module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for x in calibration if not dynamic else calibration[:1] or [example_inputs[0]]:
            prepared(x)
    return convert_pt2e(prepared)


def xnnpack_partitioner(scope: str = "matmul"):
    """The XNNPACK partitioner for a model quantized with ``scope``.

    ``attention``: ExecuTorch's ``BMMConfig`` delegates fp32 ``bmm`` only, so an int8 ``bmm`` would run
    as convert -> fp32 bmm -> convert; this config also accepts the static-int8 pattern, which XNNPACK
    runs with its QS8 batch-matmul kernel. Other scopes: the stock partitioner.
    """
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import BMMConfig
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    if scope != "attention":
        return XnnpackPartitioner()

    class Int8BMMConfig(BMMConfig):
        def supported_precision_types(self) -> list:
            return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

    configs = [Int8BMMConfig if c is BMMConfig else c for c in ALL_PARTITIONER_CONFIGS]
    return XnnpackPartitioner(configs=configs)


@torch.no_grad()
def fidelity(reference: nn.Module, candidate, images: list[torch.Tensor]) -> dict:
    """Cosine between reference and candidate outputs over ``images``: mean and min of the first
    output (the embedding), and per output under ``outputs`` when the model has several."""
    per: list[list[float]] = []
    with torch.no_grad():
        for x in images:
            ra, ca = reference(x), candidate(x)
            ra = ra if isinstance(ra, (tuple, list)) else (ra,)
            ca = ca if isinstance(ca, (tuple, list)) else (ca,)
            per.append(
                [
                    float(
                        torch.nn.functional.cosine_similarity(a.flatten().float(), b.flatten().float(), dim=0)
                    )
                    for a, b in zip(ra, ca, strict=True)
                ]
            )
    if not per:
        raise ExportError("no held-out images to measure fidelity on")
    cos = [c[0] for c in per]
    report: dict = {"cosine_mean": sum(cos) / len(cos), "cosine_min": min(cos), "images": len(cos)}
    if len(per[0]) > 1:
        report["outputs"] = [
            {"cosine_mean": sum(c[i] for c in per) / len(per), "cosine_min": min(c[i] for c in per)}
            for i in range(len(per[0]))
        ]
    return report
