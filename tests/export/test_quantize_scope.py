"""int8 scope ``attention`` on the bundled pico encoder and real frames: the attention bmm are int8
(q/dq around them, XNNPACK's QS8 batch-matmul at run time), residual adds and layer norm stay fp32,
the .pte is fully delegated and agrees with fp32. One quantization and one lowering for the module."""

from __future__ import annotations

import pytest
import torch

import export.pipeline
from export.calibration import load_images
from export.errors import ExportError
from export.pipeline import export_model
from export.quantize import SCOPES
from export.spec import spec_from_checkpoint
from glasses_runtime.engines.pte import PteEngine


def _is_q(node) -> bool:
    """quantized_decomposed.quantize_per_tensor (the namespace registers when torchao loads)."""
    return isinstance(node, torch.fx.Node) and str(node.target).endswith(".quantize_per_tensor.default")


def _is_dq(node) -> bool:
    return isinstance(node, torch.fx.Node) and str(node.target).endswith(".dequantize_per_tensor.default")


def _ops(graph, target):
    return [n for n in graph.graph.nodes if n.op == "call_function" and n.target == target]


@pytest.fixture(scope="module")
def exported(ckpt, bikes_frames, tmp_path_factory):
    """export_model(scope="attention") on 4 calibration + 4 held-out frames; keeps the quantized graph."""
    captured = {}
    quantize = export.pipeline.quantize

    def spy(*args, **kwargs):
        captured["graph"] = quantize(*args, **kwargs)
        return captured["graph"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export.pipeline, "quantize", spy)
        res = export_model(
            ckpt,
            "xnnpack",
            "int8",
            bikes_frames,
            tmp_path_factory.mktemp("attention"),
            num_calib=4,
            num_holdout=4,
            scope="attention",
        )
    return res, captured["graph"]


def test_scope_is_listed():
    assert SCOPES == ("matmul", "attention", "all")


def test_attention_bmm_is_int8_and_adds_stay_fp32(exported):
    _, graph = exported
    bmms = _ops(graph, torch.ops.aten.bmm.default)
    assert len(bmms) == 2 * 4  # two per block, 4 blocks in pico
    for bmm in bmms:
        a, b = bmm.args[:2]
        assert _is_dq(a) and _is_dq(b), bmm
        assert b.args[2] == 0  # right operand symmetric: XNNPACK's QS8 bmm needs zero point 0
        assert len(bmm.users) == 1 and all(_is_q(u) for u in bmm.users), bmm
    # add/mul stay fp32: XNNPACK runs an op in int8 only when every input is dequantized (dq -> op -> q);
    # here one input is always a plain fp32 tensor (the residual stream, a layer-norm intermediate,
    # a constant). A q after one is the next linear's input quantization, not the op's.
    adds = _ops(graph, torch.ops.aten.add.Tensor)
    muls = _ops(graph, torch.ops.aten.mul.Tensor)
    assert len(adds) >= 2 * 4 and len(muls) >= 2 * 4  # residual adds; layer-norm products
    for node in adds + muls:
        assert not all(_is_dq(x) for x in node.args[:2]), node


def test_attention_pte_is_fully_delegated_and_agrees_with_fp32(exported, ckpt, bikes_frames):
    res, _ = exported
    d = res.manifest_data.delegation
    assert d["fully_delegated"] and d["delegated_subgraphs"] == 1 and d["ops_outside_delegates"] == {}
    q = res.manifest_data.quantization
    assert q["scope"] == "attention" and q["calibration_images"] == 4
    assert q["fidelity_vs_fp32"]["images"] == 4 and q["fidelity_vs_fp32"]["cosine_min"] >= 0.99
    spec = spec_from_checkpoint(ckpt)
    engine = PteEngine(res.pte, threads=1)
    with torch.no_grad():
        for x in load_images(bikes_frames, 96, limit=4, offset=8):  # neither calibration nor held out
            a, b = spec.outputs(x)["embedding"].flatten(), engine.run(x).flatten()
            assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) >= 0.99


def test_xnnpack_runs_the_bmm_in_int8(exported, tmp_path):
    """The runtime's own event names: the attention products run as QS8 batch-matmuls, none in fp32."""
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    res, _ = exported
    program = Runtime.get().load_program(res.pte, enable_etdump=True)
    program.load_method("forward").execute([torch.rand(1, 3, 96, 96)])
    program.write_etdump_result_to_file(str(tmp_path / "run.etdp"), str(tmp_path / "debug.bin"))
    names = [e.name for b in Inspector(etdump_path=str(tmp_path / "run.etdp")).event_blocks for e in b.events]
    bmm = [n for n in names if n.startswith("Batch Matrix Multiply")]
    assert len(bmm) == 2 * 4 and all("QS8" in n for n in bmm), bmm


def test_attention_scope_needs_static_int8(ckpt, bikes_frames, tmp_path):
    with pytest.raises(ExportError, match="static"):
        export_model(ckpt, "xnnpack", "int8-dynamic", bikes_frames, tmp_path, num_calib=1, scope="attention")
    with pytest.raises(ExportError, match="unknown quantization scope"):
        export_model(ckpt, "xnnpack", "int8", bikes_frames, tmp_path, num_calib=1, scope="bmm")
