"""Methods by name. Each module registers its class with ``@register``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..config import _format_validation_error
from ..errors import ConfigError
from ..models.encoder import Encoder
from .base import Batch, Context, Method, Params

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise ConfigError(
            f"unknown method '{name}'; choose one of: {', '.join(sorted(REGISTRY))} "
            "(`selfsup methods` lists them with their papers)"
        )
    return REGISTRY[name]


def validate_params(name: str, loss: dict[str, Any]) -> Params:
    cls = get(name)
    try:
        return cls.Params.model_validate(loss)
    except ValidationError as err:
        msg = _format_validation_error(err)
        raise ConfigError(
            msg.replace("config field '", "config field 'loss.")
            + f" (method '{name}' accepts: {', '.join(cls.Params.model_fields) or 'no fields'})"
        ) from None


def build(name: str, encoder: Encoder, loss: dict[str, Any], ctx: Context) -> Method:
    cls = get(name)
    have = int(getattr(encoder, "towers", 1))
    if (
        have != cls.towers
    ):  # a method declares how many encoders it trains; the data decides how many exist
        if cls.towers == 1:
            raise ConfigError(
                f"method '{name}' trains one encoder, but the data is paired (two modalities, a "
                f"two-tower encoder); use a paired method ({', '.join(_names(2))}) or "
                "single-modality data"
            )
        raise ConfigError(
            f"method '{name}' trains {cls.towers} towers on paired data, but the data has one "
            "modality; give paired data (--pair-channels A:B, or an .npz with x_a and x_b) or a "
            f"single-modality method"
        )
    on_graph = bool(getattr(encoder, "graph", False))
    if on_graph != bool(
        getattr(cls, "graph", False)
    ):  # graph methods take GraphBatch views, others tensors
        graph = sorted(n for n, c in REGISTRY.items() if getattr(c, "graph", False))
        if on_graph:
            raise ConfigError(
                f"method '{name}' does not train on graphs (it concatenates views as tensors); "
                f"choose one of: {', '.join(graph)}"
            )
        raise ConfigError(
            f"method '{name}' trains on graphs only; give a graph (an .npz with x and edge_index, "
            "karate or sbm) or another method"
        )
    return cls(encoder, validate_params(name, loss), ctx)


def _names(towers: int) -> list[str]:
    return sorted(n for n, c in REGISTRY.items() if c.towers == towers)


def _import_all() -> None:
    """Import every module of this package once, so each registers its method(s)."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_import_all()

__all__ = [
    "REGISTRY",
    "register",
    "get",
    "build",
    "validate_params",
    "Batch",
    "Context",
    "Method",
    "Params",
]
