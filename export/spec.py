"""What to export: every model kind becomes an ``ExportSpec`` and then follows the same path.

An ``ExportSpec`` holds an eval-mode module whose ``forward`` takes fixed-shape tensors, example
inputs of those shapes, what the manifest needs (names, normalisation, dims) and how to make real
inputs from a folder of frames (calibration, verification). Kinds: ``encoder`` (an encoder
checkpoint, or the EMA target encoder of a training checkpoint: what training ships as
encoder.safetensors), ``predictor`` (the JEPA predictor of a training checkpoint, with one mask
layout baked in: ``predictor_spec``), ``world_model`` (pooled embeddings) and ``token_world_model``
(the token grid: ``token_world_model_spec``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from edge_models.checkpoint import encoder_config, file_sha256, load_encoder, load_predictor, read_metadata
from edge_models.errors import CheckpointError
from edge_models.masks import MultiBlockMasks
from edge_models.masks.blocks import spatial_indices
from edge_models.models import VisionTransformer
from edge_models.models.layers import mean_last_dim
from edge_models.models.predictor import FixedMaskPredictor
from edge_models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from export.errors import ExportError


@dataclass
class ExportSpec:
    kind: str
    preset: str
    module: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    normalization: dict = field(default_factory=dict)
    embedding_dim: int | None = None
    action_dim: int | None = None
    source_checkpoint: str | None = None
    source_checkpoint_sha256: str | None = None
    # Real inputs from a folder of frames: load_inputs(folder, limit=None, offset=0) -> one tensor per
    # frame, shaped like example_inputs[0] (single-input models; None where there is no such thing).
    load_inputs: Callable[..., list[torch.Tensor]] | None = None
    # Distinguishes exports of one checkpoint that the kind and preset do not (the predictor's mask).
    variant: str | None = None

    def outputs(self, *xs: torch.Tensor, module: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Run ``module`` (default: the fp32 reference) -> {output name: tensor}, in manifest order."""
        with torch.no_grad():
            ys = (module or self.module)(*xs)
        ys = tuple(ys) if isinstance(ys, (tuple, list)) else (ys,)
        return dict(zip(self.output_names, ys, strict=True))


class PooledEncoder(nn.Module):
    """Image encoder for deployment, one call, two outputs:

    x [1, 3, S, S] normalised -> (embedding [1, D], the pooled tokens L2-normalised: memory, queries;
                                  tokens [1, h, w, D], the spatial grid: world model, planner energy)
    ``tokens=False`` keeps the single-output form (embedding only, not normalised), as older files.
    """

    def __init__(self, encoder: VisionTransformer, size: int, tokens: bool = True) -> None:
        super().__init__()
        self.encoder = encoder.inference_copy()
        self.grid = self.encoder.grid((1, 3, size, size))
        self.encoder.fix_position_grid(self.grid)
        self.tokens = tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        tokens, pooled = self.encoder.embed(x)
        if not self.tokens:
            return pooled
        b, d = pooled.shape
        # L2 norm as the ops XNNPACK delegates (a 4-D mean, sqrt, div), like the layer norm
        ms = mean_last_dim((pooled * pooled).reshape(b, 1, d)).reshape(b, 1)
        embedding = pooled / torch.sqrt(ms * d + 1e-12)
        _, gh, gw = self.grid
        return embedding, tokens.reshape(b, gh, gw, d)


ENCODER_OUTPUTS = ("embedding", "tokens")


def encoder_spec(ckpt: str | Path, img_size: int | None = None, tokens: bool = True) -> ExportSpec:
    """``tokens``: also output the token grid (default); False writes the older single-output form."""
    from export.calibration import load_images

    encoder = load_encoder(ckpt)
    size = img_size or encoder.config.img_size
    if size % encoder.config.patch_size:
        raise ExportError(
            f"--img-size {size} is not a multiple of the patch size {encoder.config.patch_size}"
        )
    return ExportSpec(
        kind="encoder",
        preset=encoder.config.preset,
        module=PooledEncoder(encoder, size, tokens=tokens).eval(),
        example_inputs=(torch.rand(1, 3, size, size),),
        input_names=["image"],
        output_names=list(ENCODER_OUTPUTS) if tokens else ["embedding"],
        normalization={
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "size": size,
            "resize": "short_side_then_center_crop",
            "layout": "NCHW",
            "color": "RGB",
            "scale": "uint8/255",
        },
        embedding_dim=encoder.config.width,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
        load_inputs=partial(load_images, size=size),
    )


MASK_LAYOUTS = ("right-half", "center-block", "multiblock[:SEED]")


def mask_layout(name: str, grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """A named mask layout on a token grid -> (ctx_idx [Nc], tgt_idx [K, Nt], parameters).

    right-half:      predict the right half of the columns from the left half (K = 1).
    center-block:    predict the centred (H/2 x W/2) block from everything around it (K = 1).
    multiblock:SEED: the I-JEPA training sampler's draw for (seed, step 0), batch of one: K = 4 target
                     blocks of equal size, the context block minus all of them (SEED defaults to 0).
    Token indices as in training: t * (H * W) + row * W + col, every time step of a position.
    """
    gt, gh, gw = grid
    if gh < 2 or gw < 2:
        raise ExportError(f"a {gh}x{gw} token grid is too small to split into context and targets")
    hw = gh * gw

    def tokens(mask_hw: torch.Tensor) -> torch.Tensor:
        s = spatial_indices(mask_hw)
        return (torch.arange(gt).unsqueeze(1) * hw + s.unsqueeze(0)).flatten()

    if name in ("right-half", "center-block"):
        tgt = torch.zeros(gh, gw, dtype=torch.bool)
        if name == "right-half":
            tgt[:, gw // 2 :] = True
            params: dict = {"target_columns": [gw // 2, gw]}
        else:
            bh, bw = max(1, gh // 2), max(1, gw // 2)
            top, left = (gh - bh) // 2, (gw - bw) // 2
            tgt[top : top + bh, left : left + bw] = True
            params = {"target_rows": [top, top + bh], "target_columns": [left, left + bw]}
        return tokens(~tgt), tokens(tgt).unsqueeze(0), params
    head, _, arg = name.partition(":")
    if head == "multiblock":
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise ExportError(f"mask '{name}': the seed must be an integer, e.g. multiblock:3") from None
        pair = MultiBlockMasks(seed=seed)(1, grid, step=0)[0]
        tgt_idx = torch.stack([t[0] for t in pair.targets])
        return pair.context[0], tgt_idx, {"seed": seed, "step": 0, "sampler": "MultiBlockMasks defaults"}
    raise ExportError(f"unknown mask layout '{name}'; choose one of: {', '.join(MASK_LAYOUTS)}")


def predictor_spec(ckpt: str | Path, img_size: int | None = None, mask: str | None = None) -> ExportSpec:
    """The JEPA predictor of a training checkpoint with the mask layout ``mask`` baked in.

    input: context [1, Nc, D], the context encoder's tokens at the layout's context positions (the
    encoder runs on those tokens only, as in training) -> predicted [1, K * Nt, D] at its targets.
    """
    from export.calibration import load_context_tokens

    if mask is None:
        raise ExportError(f"--model predictor needs --mask LAYOUT, one of: {', '.join(MASK_LAYOUTS)}")
    predictor = load_predictor(ckpt)  # CheckpointError unless a training checkpoint
    context_encoder = load_encoder(ckpt, prefix="encoder.")
    c = context_encoder.config
    size = img_size or c.img_size
    if size % c.patch_size:
        raise ExportError(f"--img-size {size} is not a multiple of the patch size {c.patch_size}")
    grid = context_encoder.grid((1, c.in_chans, size, size))
    ctx_idx, tgt_idx, params = mask_layout(mask, grid)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(1, len(ctx_idx), c.width, generator=gen)
    return ExportSpec(
        kind="predictor",
        preset=c.preset,
        module=FixedMaskPredictor(predictor, ctx_idx, tgt_idx, grid).eval(),
        example_inputs=(example,),
        input_names=["context"],
        output_names=["predicted"],
        normalization={
            "context_tokens": "context encoder (the training checkpoint's 'encoder.' weights) run on the "
            "context positions only, as in training; its final-norm outputs in context_idx order",
            "img_size": size,
            "grid": list(grid),
            "mask": {
                "layout": mask,
                "params": params,
                "context_idx": ctx_idx.tolist(),
                "target_idx": tgt_idx.tolist(),
                "target_blocks": int(tgt_idx.shape[0]),
                "output_order": "target_idx row-major (block 0 first)",
            },
        },
        embedding_dim=c.width,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
        load_inputs=partial(load_context_tokens, encoder=context_encoder, size=size, ctx_idx=ctx_idx),
        variant=mask.replace(":", "-s"),
    )


def world_model_spec(ckpt: str | Path, img_size: int | None = None) -> ExportSpec:
    """The world model as one planner iteration: S candidate sequences of H actions, unrolled.

    inputs: context [S, C, D] (L2-normalised embeddings, oldest first), actions [S, H, A] (one-hot
    if discrete) -> predicted [S, H, D]. S, H are the checkpoint's export_samples / export_horizon.
    """
    from edge_models.world_model import WorldModelRollout, load_world_model

    if img_size is not None:
        raise ExportError("--img-size does not apply to a world model (it takes embeddings); drop it")
    model, meta = load_world_model(ckpt)
    c = model.config
    s, h = c.export_samples, c.export_horizon
    gen = torch.Generator().manual_seed(0)
    context = torch.nn.functional.normalize(torch.randn(s, c.context, c.embed_dim, generator=gen), dim=-1)
    if c.action_kind == "discrete":
        actions = torch.nn.functional.one_hot(
            torch.randint(0, c.action_dim, (s, h), generator=gen), c.action_dim
        ).float()
    else:
        actions = torch.randn(s, h, c.action_dim, generator=gen) * torch.tensor(c.action_scale or 1.0)
    return ExportSpec(
        kind="world_model",
        preset=f"wm_c{c.context}_h{c.hidden}x{c.depth}_s{s}_t{h}",
        module=WorldModelRollout(model).eval(),
        example_inputs=(context, actions),
        input_names=["context", "actions"],
        output_names=["predicted"],
        normalization={
            "embedding": "l2_unit",
            "encoder_sha256": meta.get("encoder_sha256"),
            "action_kind": c.action_kind,
            "action_encoding": "one_hot" if c.action_kind == "discrete" else "raw",
            "action_scale": list(c.action_scale),
            "context": c.context,
            "horizon": h,
            "samples": s,
        },
        embedding_dim=c.embed_dim,
        action_dim=c.action_dim,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
    )


def token_world_model_spec(
    ckpt: str | Path, img_size: int | None = None, candidates: tuple[int, int] | None = None
) -> ExportSpec:
    """The token world model as one planner iteration (``TokenPlannerStep``), unrolled.

    ``candidates``: (S, H) of the program instead of the checkpoint's export_samples / export_horizon,
    e.g. (4, 1): the four one-step actions, all salience's surprise needs.

    inputs: context [1, C, h, w, Dt] (reduced encoder tokens, oldest first), actions [S, H, A] (one-hot),
    goal [1, h, w, Dt] -> distance [S, H] (grid distance to the goal after each step), predicted
    [S, H, h*w, d] (the predicted states, unit cells).
    """
    from edge_models.world_model.token_model import TokenPlannerStep, load_token_world_model

    if img_size is not None:
        raise ExportError("--img-size does not apply to a world model (it takes tokens); drop it")
    model, meta = load_token_world_model(ckpt)
    c = model.config
    s, h = candidates or (c.export_samples, c.export_horizon)
    if s < 1 or h < 1:
        raise ExportError(f"--samples and --horizon must be >= 1, got {s} and {h}")
    gh, gw = c.grid
    gen = torch.Generator().manual_seed(0)
    # example tokens near the training distribution: the projection's mean plus noise
    mean = model.token_mean()
    context = mean + 0.5 * torch.randn(1, c.context, gh, gw, c.token_dim, generator=gen)
    goal = mean + 0.5 * torch.randn(1, gh, gw, c.token_dim, generator=gen)
    actions = torch.nn.functional.one_hot(
        torch.randint(0, c.action_dim, (s, h), generator=gen), c.action_dim
    ).float()
    return ExportSpec(
        kind="token_world_model",
        preset=f"twm_c{c.context}_d{c.state_dim}_h{c.hidden}x{c.depth}_g{gh}x{gw}_s{s}_t{h}",
        module=TokenPlannerStep(model, samples=s).eval(),
        example_inputs=(context, actions, goal),
        input_names=["context", "actions", "goal"],
        output_names=["distance", "predicted"],
        normalization={
            "tokens": "reduced: encoder tokens with rows averaged in pairs (glasses_runtime.tokens.reduce_tokens)",
            "encoder_sha256": meta.get("encoder_sha256"),
            "action_kind": c.action_kind,
            "action_encoding": "one_hot",
            "context": c.context,
            "horizon": h,
            "samples": s,
            "grid": [gh, gw],
            "state_dim": c.state_dim,
        },
        embedding_dim=c.token_dim,
        action_dim=c.action_dim,
        source_checkpoint=str(ckpt),
        source_checkpoint_sha256=file_sha256(ckpt),
    )


# Explicit registry: checkpoint kind -> builder.
SPEC_BUILDERS: dict[str, Callable[..., ExportSpec]] = {"encoder": encoder_spec, "train": encoder_spec}
SPEC_BUILDERS["world_model"] = world_model_spec
SPEC_BUILDERS["token_world_model"] = token_world_model_spec


MODELS = ("encoder", "predictor")


def spec_from_checkpoint(
    ckpt: str | Path | ExportSpec,
    img_size: int | None = None,
    model: str | None = None,
    mask: str | None = None,
    tokens: bool = True,
    candidates: tuple[int, int] | None = None,
) -> ExportSpec:
    """Build the export spec for the model the checkpoint holds (clear error otherwise).

    candidates: (S, H) for a token world model's program (default: its checkpoint's).

    model: None exports what the checkpoint's kind ships (a training checkpoint: its EMA target
    encoder); ``predictor`` the JEPA predictor of a training checkpoint, with ``mask`` baked in.
    An ``ExportSpec`` passes through unchanged, so a caller that built one runs the same pipeline.
    """
    if isinstance(ckpt, ExportSpec):
        return ckpt
    if model is not None and model not in MODELS:
        raise ExportError(f"unknown --model '{model}'; choose one of: {', '.join(MODELS)}")
    if mask is not None and model != "predictor":
        raise ExportError("--mask applies to --model predictor only")
    try:
        kind = read_metadata(ckpt).get("kind", "")
        if model == "predictor":
            return predictor_spec(ckpt, img_size=img_size, mask=mask)
        if model == "encoder" and kind not in ("encoder", "train"):
            raise ExportError(f"checkpoint {ckpt} holds a '{kind}' model, not an encoder")
        encoder_config(ckpt)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    if kind not in SPEC_BUILDERS:
        raise ExportError(f"checkpoint {ckpt} holds a '{kind}' model, which has no export path yet")
    if candidates is not None and kind != "token_world_model":
        raise ExportError("--samples/--horizon apply to a token world model only; drop them")
    try:
        if kind == "token_world_model":
            return token_world_model_spec(ckpt, img_size=img_size, candidates=candidates)
        if SPEC_BUILDERS[kind] is encoder_spec:
            return encoder_spec(ckpt, img_size=img_size, tokens=tokens)
        return SPEC_BUILDERS[kind](ckpt, img_size=img_size)
    except CheckpointError as e:
        raise ExportError(str(e)) from None


def spec_from_manifest(manifest, ckpt: str | Path) -> ExportSpec:
    """Rebuild the fp32 spec an exported model was made from (its manifest + source checkpoint).

    For a predictor the mask layout is recomputed from its name and checked against the index sets
    the manifest recorded, so a changed sampler cannot silently compare different masks.
    """
    if manifest.kind == "predictor":
        norm = manifest.normalization
        mask = norm.get("mask") or {}
        spec = predictor_spec(ckpt, img_size=norm.get("img_size"), mask=mask.get("layout"))
        got = spec.normalization["mask"]
        if got["context_idx"] != mask.get("context_idx") or got["target_idx"] != mask.get("target_idx"):
            raise ExportError(
                f"mask layout '{mask.get('layout')}' no longer gives the index sets recorded in the manifest "
                "(the mask sampler changed); re-export the predictor"
            )
        return spec
    if manifest.kind == "token_world_model":  # its program's S and H, as exported
        norm = manifest.normalization or {}
        return spec_from_checkpoint(ckpt, candidates=(int(norm["samples"]), int(norm["horizon"])))
    if manifest.kind == "encoder":  # a single-output file (older exports) is rebuilt as one
        tokens = "tokens" in [t.name for t in manifest.outputs]
        return spec_from_checkpoint(ckpt, img_size=manifest.inputs[0].shape[-1], tokens=tokens)
    return spec_from_checkpoint(ckpt)
