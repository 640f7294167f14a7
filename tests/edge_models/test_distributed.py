"""Two processes under torchrun (gloo on CPU) end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from edge_models.checkpoint import load_encoder
from edge_models.train.distributed import weights_digest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ranks_end_identical(bikes_frames, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "edge_models.train",
        "--data",
        str(bikes_frames),
        "--out",
        str(out),
        "--preset",
        "vit_pico",
        "--img-size",
        "64",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert weights_digest(load_encoder(out / "encoder.safetensors")) == digests[0]
