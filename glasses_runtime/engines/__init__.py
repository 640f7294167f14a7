"""Inference engines: ExecuTorch ``.pte`` (with its manifest) and the eager PyTorch fallback."""
