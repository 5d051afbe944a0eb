"""Building a run's parts from a resolved config: the data splits, the encoder's description
(``meta``), the encoder, the view maker and the method. Everything here is built (and so
validated) before a run directory is created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config as conf
from . import data as sources
from . import methods
from .data.normal import normal_split
from .data.paired import split_channels
from .data.table import align_categories
from .errors import ConfigError, DataError
from .modalities import Modality, modality_of
from .modalities.base import fill_unset, modality_for


def load_data(
    cfg: conf.Config,
) -> tuple[sources.Splits, sources.Samples | None, sources.Samples | None]:
    """The training split and the labelled (bank, query) pair for evaluation."""
    dc = cfg.data
    splits = sources.load_source(
        dc.source,
        dc.image_size,
        dc.skip_corrupt,
        dc.cache_dir,
        label_column=dc.label_column,
        options=dc.options,
    )
    if dc.pair_channels:  # two modalities from one multichannel source (selfsup.data.paired)
        splits = split_channels(splits, dc.pair_channels)
    ev = None
    if dc.eval_source:
        size = dc.image_size or getattr(splits.train, "size", None)
        ev = sources.load_source(
            dc.eval_source,
            size,
            dc.skip_corrupt,
            dc.cache_dir,
            label_column=dc.label_column,
            options=dc.options,
        )
        ev = align_categories(ev, splits.train)  # tables: codes of the training vocabulary
        if dc.pair_channels:
            ev = split_channels(ev, dc.pair_channels)
    if (
        dc.normal_label is not None
    ):  # anomaly detection: normal training samples, the whole test split
        splits, bank, query = normal_split(
            splits, dc.normal_label, None if ev is None else ev.test or ev.train
        )
    elif _labelled(ev or splits):
        bank, query = sources.eval_splits(splits, ev, seed=0)
    elif modality_of((ev or splits).train).evaluates_unlabelled:  # retrieval needs no labels
        bank, query = sources.unlabelled_eval_splits(ev or splits, seed=0)
    else:
        bank, query = None, None
    if dc.limit is not None and dc.limit < len(splits.train):
        keep = np.sort(
            np.random.default_rng(cfg.train.seed).permutation(len(splits.train))[: dc.limit]
        )
        splits = sources.Splits(splits.train.subset(keep), splits.test)
    for d in (bank, query):
        if d is not None and (
            d.modality != splits.train.modality or d.channels != splits.train.channels
        ):
            raise DataError(
                f"evaluation data '{d.name}' ({d.modality}, {d.channels} channel(s)) does not "
                f"match the training data ({splits.train.modality}, {splits.train.channels} "
                "channel(s)); give --eval-data of the same kind"
            )
    return splits, bank, query


def _labelled(s: sources.Splits) -> bool:
    return s.train.labelled or (s.test is not None and s.test.labelled)


def with_defaults(cfg: conf.Config, train: sources.Samples) -> conf.Config:
    """``cfg`` with the defaults of the data's modality and, over them, those the method was tuned
    with (:attr:`selfsup.methods.Needs.defaults`), each applied only where the user left the field
    unset."""
    mod = modality_of(train)
    needs = methods.requirements(cfg.method, cfg.params)
    methods.check_fit(cfg.method, needs, mod.towers, mod.edges)  # before a method's defaults apply
    defaults = mod.config_defaults(cfg, train)
    for section, fields in needs.defaults.items():
        defaults.setdefault(section, {}).update(fields)
    set_by_user = "epochs" in cfg.train.model_fields_set
    epochs = (
        cfg.train.epochs
        if set_by_user
        else defaults.get("train", {}).get("epochs", cfg.train.epochs)
    )
    shape = tuple(getattr(train.x, "shape", (len(train),))[1:])
    sized = methods.data_defaults(cfg.method, cfg.params, len(train), shape, int(epochs))
    for section, fields in sized.items():
        defaults.setdefault(section, {}).update(fields)
    # a method's backbone default applies to the modalities that have that backbone (CLAN's
    # residual MLP is a table backbone: on other data the modality's own default stays)
    backbone = defaults.get("model", {}).get("backbone")
    if backbone is not None and backbone not in mod.backbone_names():
        del defaults["model"]["backbone"]
    return fill_unset(cfg, defaults)


def encoder_meta(cfg: conf.Config, mod: Modality, input_meta: dict, needs: methods.Needs) -> dict:
    """What ``encoder.safetensors`` records: enough to rebuild the encoder without the run."""
    backbone = mod.resolve_backbone(cfg.model.backbone, input_meta, needs, cfg.method)
    meta = {
        "format": "selfsup-encoder-1",
        "modality": mod.name,
        "backbone": backbone,
        "cifar_stem": cfg.model.cifar_stem,
        "width": cfg.model.width,
        **input_meta,
        "method": cfg.method,
        **({"plugins": list(cfg.plugins)} if cfg.plugins else {}),
        **({"data_options": dict(cfg.data.options)} if cfg.data.options else {}),
    }
    try:  # a plug-in modality whose input_meta does not fit its own declared meta_type
        mod.check_meta(meta)
    except ValueError as err:
        raise ConfigError(f"modality '{mod.name}' describes its encoder wrongly: {err}") from None
    return meta


def build_encoder(cfg: conf.Config | conf.ModelConfig, meta: dict, seed: int = 0) -> nn.Module:
    """The encoder for inputs described by ``meta`` (see :class:`selfsup.modalities.Modality`):
    the modality's backbone behind the input normalisation, initialised under ``seed``."""
    mc = cfg.model if isinstance(cfg, conf.Config) else cfg
    if meta.get("backbone"):  # the recorded choice (``auto`` resolved for the method's needs)
        mc = mc.model_copy(update={"backbone": meta["backbone"]})
    mod = modality_for(meta)
    torch.manual_seed(seed)
    return mod.build_encoder(meta, mc)


@dataclass
class Parts:
    """Everything a run trains, built (and so validated) before its run directory is created."""

    modality: Modality
    preset: str
    meta: dict
    method: methods.Method
    views: nn.Module
    x: Any
    labels: torch.Tensor | None


def assemble(cfg: conf.Config, train: sources.Samples, device: torch.device) -> Parts:
    """The training split's modality, views, encoder and method, on ``device``."""
    vc = cfg.views
    mod = modality_of(train)
    needs = methods.requirements(cfg.method, cfg.params)
    preset, input_meta = mod.input_meta(cfg, train, needs)
    if needs.exact_views and preset != needs.view_preset:
        raise ConfigError(
            f"method '{cfg.method}' works only on its own '{needs.view_preset}' views, and "
            f"{mod.name} data gets '{preset}' views; leave views.preset unset on data whose "
            "modality has those views, or pick another method (`selfsup methods`)"
        )
    meta = encoder_meta(cfg, mod, input_meta, needs)
    encoder = build_encoder(cfg, meta, cfg.train.seed)
    x = mod.to_tensor(train)
    # images: the training view size (image_size is the evaluation size, views.image.eval_size)
    view_size = (meta.get("view_spec") or {}).get("size") or meta.get("image_size")
    typed = {
        "batch_size": cfg.train.batch_size,
        "local_crops": vc.local_crops,
        "input_shape": tuple(getattr(x, "shape", (0,))[1:]),
        "view_size": view_size,
    }
    ctx = methods.Context(
        model=cfg.model,
        n_samples=len(train),
        n_views=vc.n_views,
        **typed,
        reconstruction=mod.reconstruction,
        extra={**typed, "image_size": view_size},  # the same, for plug-ins that read extra
    )
    method = methods.build(cfg.method, encoder, cfg.params, ctx).to(device)
    views = mod.build_views(cfg, meta).to(device)
    x = x.to(device)
    if callable(getattr(views, "check", None)):  # a user's plug-in view maker: tried on two samples
        views.check(x[:2])
    if callable(
        getattr(views, "fit", None)
    ):  # views drawing from the training split (tables' marginals)
        views.fit(x)
    labels = None
    if method.uses_labels:
        if train.y is None:
            raise DataError(f"method '{cfg.method}' needs labels but '{train.name}' has none")
        labels = torch.from_numpy(train.y).to(device)
    return Parts(mod, preset, meta, method, views, x, labels)
