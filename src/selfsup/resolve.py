"""From what a user gives (a recipe, keyword options, ``key=value`` overrides) to one validated
:class:`~selfsup.config.Config`. Every name this module knows comes from a registry: methods,
backbones (each modality's), evaluation protocols."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import config as conf
from . import data as sources
from . import methods
from . import validate as validation
from .errors import ConfigError
from .eval import protocols as EP
from .modalities import REGISTRY

#: shortcut keyword (and CLI option) -> config path
OPTIONS = {
    "method": "method",
    "data": "data.source",
    "eval_data": "data.eval_source",
    "backbone": "model.backbone",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "seed": "train.seed",
    "device": "train.device",
    "out": "out",
    "skip_corrupt": "data.skip_corrupt",
    "logger": "train.logger",
    "label_column": "data.label_column",
    "normal_label": "data.normal_label",
    "pair_channels": "data.pair_channels",
    "data_options": "data.options",
    "nproc": "train.nproc",
    "plugins": "plugins",
}


def known_backbones() -> list[str]:
    """Every backbone name some registered modality builds (each modality refuses the others')."""
    from .modalities import REGISTRY

    names: list[str] = []
    for mod in REGISTRY.values():
        names += [n for n in mod.backbone_names() if n not in names]
    return names


def resolve_config(
    config: conf.Config | dict | str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    **options: Any,
) -> conf.Config:
    """Defaults <- recipe (a Config, dict or YAML path) <- keyword options <- ``key=value``
    overrides, validated (see :func:`selfsup.validate.check_config`).

    The modality's and the method's defaults are not applied here: they depend on the data, which
    this does not read. :func:`selfsup.train` applies them after loading it
    (:func:`selfsup.parts.with_defaults`); a script that builds its parts from this config itself
    must call that too, or it trains with the generic defaults (e.g. point clouds at batch 256)."""
    if isinstance(config, conf.Config):
        d = config.to_dict()
    elif isinstance(config, dict):
        d = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        d = conf.load_yaml(config)
    elif config is None:
        d = {}
    else:
        raise ConfigError(
            "config must be a Config, a dict or the path of a YAML recipe, "
            f"got {type(config).__name__}"
        )
    for k, v in options.items():
        if k not in OPTIONS:
            raise ConfigError(f"unknown option '{k}'; valid: {', '.join(OPTIONS)}")
        if v is not None:
            conf.set_path(d, OPTIONS[k], os.fspath(v) if isinstance(v, os.PathLike) else v)
    conf.apply_overrides(d, overrides or [])
    cfg = conf.validate(d)  # loads the plug-ins it names first
    methods.validate_params(cfg.method, cfg.params)
    known = known_backbones()
    if cfg.model.backbone.startswith("timm:"):  # timm models: the timm extra (issue 25)
        from .models.timm_backbone import require_timm

        require_timm()
    elif cfg.model.backbone != "auto" and cfg.model.backbone not in known:
        raise ConfigError(
            f"unknown backbone '{cfg.model.backbone}'; choose one of: auto, {', '.join(known)}"
        )
    EP.parse(cfg.eval.protocols)
    validation.check_config(cfg)  # the one validation pass: numbers, seeds, device, packages
    for modality in REGISTRY.values():  # and each modality's own fields (image sizes, ...)
        modality.check_config(cfg)
    return cfg


def absolute_paths(cfg: conf.Config) -> conf.Config:
    """The config with its data paths made absolute (built-in names stay as they are)."""
    dc = cfg.data
    fix = {
        k: str(Path(v).expanduser().absolute())
        for k, v in (
            ("source", dc.source),
            ("eval_source", dc.eval_source),
            ("cache_dir", dc.cache_dir),
        )
        if v and v not in sources.BUILTIN and os.path.exists(os.path.expanduser(v))
    }
    plugins = [
        str(Path(p).expanduser().absolute()) if p.endswith(".py") else p for p in cfg.plugins
    ]
    update: dict = {"plugins": plugins} if plugins != cfg.plugins else {}
    if fix:
        update["data"] = dc.model_copy(update=fix)
    return cfg.model_copy(update=update) if update else cfg


def protected_paths(cfg: conf.Config) -> list[str]:
    """Paths a run directory may never be, contain or lie inside: the data and its cache."""
    from .data.cache import cache_root

    return [
        p for p in (cfg.data.source, cfg.data.eval_source, str(cache_root(cfg.data.cache_dir))) if p
    ]
