"""The saved encoder: ``encoder.safetensors`` holds the weights, and its metadata the JSON
description (``meta``) that rebuilds the module without the run (see
:class:`selfsup.modalities.Modality`). Nothing here unpickles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from . import config as conf
from . import validate as validation
from .errors import CheckpointError, ConfigError, RunDirError
from .parts import build_encoder

ENCODER_FILE = "encoder.safetensors"


def save_encoder(path: Path, encoder: nn.Module, meta: dict) -> None:
    from safetensors.torch import save_file

    from .io import atomic_path
    from .train.checkpoint import CHECKSUM_KEY, checksum

    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in encoder.state_dict().items()}
    meta = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    # the checksum (of the weights and of the meta JSON without it) lets a load refuse a damaged
    # file. It goes inside the one metadata entry: safetensors writes several entries in a
    # per-process hash order, and the same encoder must give the same bytes every time
    sealed = {**meta, CHECKSUM_KEY: checksum(tensors, json.dumps(meta))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"selfsup": json.dumps(sealed)})


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a trained encoder (a run directory or an ``encoder.safetensors``) as a plain module.

    Images: the module takes float images in [0, 1] of shape (N, C, H, W) and returns features
    (N, D); its ``image_size`` attribute is the size it was trained at. Series: float (N, C, T) in
    the data's own units, NaN for missing or padded steps. ``meta`` holds the recorded description
    (``meta["modality"]``, channels, input statistics, ...). Paired runs: a
    :class:`~selfsup.models.two_tower.TwoTower` whose towers ``.a`` and ``.b`` are such encoders
    (each with its own ``meta``, also under ``meta["towers"]``); ``embed_a`` / ``embed_b`` map into
    the shared space and calling it on a pair ``(x_a, x_b)`` returns both towers' features side by
    side.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from .train.checkpoint import CHECKSUM_KEY, checksum

    p = validation.path_arg(path, "load_encoder's path")
    if p.is_dir():
        p = p / ENCODER_FILE
    if not p.is_file():
        raise RunDirError(
            f"no encoder at '{path}'; give a finished run directory or its {ENCODER_FILE}"
        )
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["selfsup"])
        # the checksum is the last key: without it, the JSON that was summed (save_encoder)
        sealed = meta.pop(CHECKSUM_KEY, None) if isinstance(meta, dict) else None
        plugins = meta.get("plugins") or []
        if not isinstance(plugins, list) or not all(isinstance(q, str) for q in plugins):
            raise TypeError("plugins")
    except (
        SafetensorError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ):
        raise CheckpointError(
            f"'{p}' is not a selfsup encoder file (safetensors with valid metadata)"
        ) from None
    from .modalities.base import LEGACY_MODALITY, REGISTRY, check_encoder_input, get
    from .plugins import load_all

    load_all(plugins)  # the modality may be a plug-in's (recorded by the run that trained it)
    if meta.get("modality", LEGACY_MODALITY) not in REGISTRY:
        raise ConfigError(
            f"'{p}' holds an encoder of modality '{meta.get('modality')}', which no loaded "
            "plug-in defines; load the plug-in that defines it first (selfsup.plugins.load)"
        )
    modality = get(meta.get("modality", LEGACY_MODALITY))
    try:
        modality.check_meta(meta)
    except ValueError as err:
        raise CheckpointError(f"'{p}' is not a selfsup encoder file: {err}") from None
    try:
        tensors = load_file(str(p), device="cpu")
        mc = conf.ModelConfig(
            backbone=meta["backbone"], cifar_stem=meta["cifar_stem"], width=meta["width"]
        )
        enc = build_encoder(mc, meta, seed=0)
    except (
        SafetensorError,
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        TypeError,
        RecursionError,
        ConfigError,
    ):  # pydantic's ValidationError is a ValueError
        raise CheckpointError(
            f"'{p}' is not a selfsup encoder file (safetensors with valid metadata)"
        ) from None
    if sealed is not None and checksum(tensors, json.dumps(meta)) != sealed:
        raise CheckpointError(
            f"'{p}' is corrupt: its weights do not match its checksum (a damaged copy or disk); "
            "copy it again, or train again"
        )
    try:
        enc.load_state_dict(tensors)
    except RuntimeError as err:
        raise CheckpointError(
            f"'{p}' does not match its recorded architecture: {str(err).splitlines()[0]}"
        ) from None
    enc.image_size = meta.get("image_size")
    enc.meta = meta
    enc.register_forward_pre_hook(
        check_encoder_input
    )  # wrong layout/channels/dtype/range: one line
    return enc.to(device).eval()
