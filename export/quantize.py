"""Int8 post-training quantization with PT2E and ExecuTorch's XNNPACKQuantizer.

static: per-channel symmetric int8 weights, int8 activations calibrated on real frames.
dynamic: per-channel int8 weights, activations quantized per call (no calibration data needed).

    qmodel = quantize(spec.module, spec.example_inputs, calib, mode="static")
"""

from __future__ import annotations

import torch
from torch import nn

from export.errors import ExportError

MODES = ("none", "int8", "int8-dynamic")


def quantize(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    calibration: list[torch.Tensor],
    mode: str = "int8",
) -> nn.Module:
    """-> a quantized GraphModule with the same call signature (re-export it with torch.export)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if mode not in ("int8", "int8-dynamic"):
        raise ExportError(f"unknown quantization '{mode}'; choose one of {', '.join(MODES)}")
    dynamic = mode == "int8-dynamic"
    if not dynamic and not calibration:
        raise ExportError("static int8 needs calibration images: pass --calib DIR with real frames")
    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    quantizer = XNNPACKQuantizer().set_global(config)
    graph = torch.export.export(module, example_inputs).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for x in calibration if not dynamic else calibration[:1] or [example_inputs[0]]:
            prepared(x)
    return convert_pt2e(prepared)


@torch.no_grad()
def fidelity(reference: nn.Module, candidate, images: list[torch.Tensor]) -> dict[str, float]:
    """Cosine between reference and candidate outputs over ``images``: mean and min."""
    cos = []
    for x in images:
        a = reference(x).flatten().float()
        b = candidate(x).flatten().float()
        cos.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    if not cos:
        raise ExportError("no held-out images to measure fidelity on")
    return {"cosine_mean": sum(cos) / len(cos), "cosine_min": min(cos), "images": len(cos)}
