"""Run an exported ``.pte`` through ``executorch.runtime``, after checking it against its manifest.

    engine = PteEngine("models/encoder_int8_xnnpack.pte", threads=2)
    z = engine.run(x)            # x: the manifest's input shape, float32 -> first output tensor
    out = engine.run_named(x)    # every output by its manifest name: {"embedding": ..., "tokens": ...}

Checks before loading: the manifest exists and parses, the file's sha256 matches, the program
loads (truncated or foreign files fail here with a clear message), and the method's input and
output shapes are the manifest's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from glasses_runtime.manifest import Manifest, ManifestError, check_hash, load_manifest


class ModelFileError(Exception):
    """A model file cannot be loaded or run."""


def set_threads(threads: int) -> None:
    """Size ExecuTorch's CPU thread pool (XNNPACK uses it)."""
    from executorch.extension.pybindings import portable_lib

    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    count = getattr(portable_lib, "_threadpool_get_thread_count", None)
    if reset is not None and threads > 0 and (count is None or count() != threads):
        reset(threads)  # logs a line on stderr: only when the size changes


class PteEngine:
    def __init__(self, path: str | Path, threads: int = 2, manifest: Manifest | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"model file not found: {self.path}")
        try:
            self.manifest = manifest or load_manifest(self.path)
            check_hash(self.path, self.manifest)
        except ManifestError as e:
            raise ModelFileError(str(e)) from None
        from executorch.runtime import Runtime

        set_threads(threads)
        try:
            program = Runtime.get().load_program(self.path)
            self.method = program.load_method("forward")
        except Exception as e:  # the runtime raises RuntimeError/ValueError for bad flatbuffers
            raise ModelFileError(
                f"{self.path} is not a loadable ExecuTorch program ({type(e).__name__}: {e}); it may be truncated, "
                "built for another backend, or not a .pte at all: re-export it"
            ) from None
        self._check_shapes()

    def _check_shapes(self) -> None:
        meta = self.method.metadata
        got_in = [list(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
        got_out = [list(meta.output_tensor_meta(i).sizes()) for i in range(meta.num_outputs())]
        want_in = [t.shape for t in self.manifest.inputs]
        want_out = [t.shape for t in self.manifest.outputs]
        if got_in != want_in or got_out != want_out:
            raise ModelFileError(
                f"{self.path} takes {got_in} -> {got_out} but its manifest says {want_in} -> {want_out}; "
                "the manifest belongs to another model: re-export"
            )

    @property
    def input_shape(self) -> list[int]:
        return self.manifest.inputs[0].shape

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.manifest.outputs]

    def run_all(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every output, in the manifest's order."""
        for x, spec in zip(inputs, self.manifest.inputs, strict=True):
            if list(x.shape) != spec.shape:
                raise ModelFileError(f"input '{spec.name}' must have shape {spec.shape}, got {list(x.shape)}")
        return list(self.method.execute([x.contiguous() for x in inputs]))

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The first output."""
        return self.run_all(*inputs)[0]

    def run_named(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.output_names, self.run_all(*inputs), strict=True))
