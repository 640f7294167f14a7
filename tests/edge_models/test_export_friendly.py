"""The encoder lowers to ExecuTorch's XNNPACK backend as one fully delegated subgraph."""

from __future__ import annotations

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.devtools.backend_debug import get_delegation_info
from executorch.exir import to_edge_transform_and_lower

from edge_models.models import vit_pico


class _Pooled(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder.embed(x)[1]


def test_pico_encoder_fully_delegated_to_xnnpack():
    model = _Pooled(vit_pico().inference_copy()).eval()
    ep = torch.export.export(model, (torch.rand(1, 3, 64, 64),))
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    info = get_delegation_info(edge.exported_program().graph_module)
    df = info.get_operator_delegation_dataframe()
    leftovers = df[
        (df.occurrences_in_non_delegated_graphs > 0) & (df.op_type != "getitem") & (df.op_type != "Total")
    ]
    assert leftovers.empty, f"ops outside XNNPACK: {leftovers.op_type.tolist()}"
    assert info.num_delegated_subgraphs == 1
