"""Modalities: what makes images, series, tables or graphs different, in one place per kind.

A modality plugs into the one data path (see ``docs/architecture.md``) with:

- its sample container (:mod:`selfsup.data.base`) and sources (:mod:`selfsup.data`),
- its default view maker (:mod:`selfsup.views`) and default encoder (:mod:`selfsup.models`),
- the input statistics the encoder carries, the deterministic evaluation input, and the
  raw-input baseline.

Everything else (methods, losses, the training loop, evaluation protocols, run directories) is
shared and never asks which modality it runs on. ``modality_of(data)`` finds a container's modality;
``get(name)`` a modality by name (a saved encoder records it).
"""

from __future__ import annotations

import importlib
import pkgutil

from . import graph, image, paired, tabular, timeseries
from .base import REGISTRY, Modality, get, modality_of, register


def _import_all() -> None:
    """Register every modality module of this package: a new modality is a new file, no edit."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_import_all()

__all__ = [
    "Modality",
    "REGISTRY",
    "register",
    "get",
    "modality_of",
    "image",
    "timeseries",
    "paired",
    "tabular",
    "graph",
]
