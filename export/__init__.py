"""export: the `glasses-export` CLI (distill, quantize, lower to ExecuTorch, verify, bench)."""
