"""Methods by name. Each module registers its class with ``@register``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from torch import nn

from ..config import _format_validation_error
from ..errors import ConfigError
from ..models.encoder import Encoder
from .base import Batch, Capability, Context, Method, Needs, Params

#: how a one-line error speaks of each backbone capability (:func:`register_capability`)
CAPABILITY_WORDS: dict[Capability, str] = {
    "tokens": "patch tokens to mask (a ViT)",
    "feature_maps": "convolutional feature maps that can run sparse (a ConvNet or ResNet)",
    "point_patches": "tokens of local point groups to mask (a point-patch transformer)",
}


def register_capability(name: Capability, words: str) -> None:
    """Add a backbone capability (backbones list it in ``capabilities``, methods need it in
    ``Needs.encoder``); ``words`` describe it in errors ("patch tokens to mask (a ViT)")."""
    CAPABILITY_WORDS[name] = words


def capability_words(name: Capability) -> str:
    """How errors speak of capability ``name``."""
    return CAPABILITY_WORDS.get(name, f"the '{name}' capability")


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
            msg.replace("config field '", "config field 'params.")
            + f" (method '{name}' accepts: {', '.join(cls.Params.model_fields) or 'no fields'})"
        ) from None


def data_defaults(
    name: str, loss: dict[str, Any], n_samples: int, sample_shape: tuple[int, ...], epochs: int
) -> dict[str, dict[str, Any]]:
    """Method ``name``'s defaults for this training data and run length
    (:meth:`Method.data_defaults`)."""
    return get(name).data_defaults(validate_params(name, loss), n_samples, sample_shape, epochs)


def requirements(name: str, loss: dict[str, Any]) -> Needs:
    """What method ``name`` needs with these hyper-parameters (see :class:`Needs`)."""
    return get(name).requirements(validate_params(name, loss))


def check_encoder(name: str, encoder: nn.Module, needs: Needs) -> None:
    """Refuse, in one line, an encoder that cannot serve method ``name``: the number of towers,
    graphs (edges) or not, and the backbone capability the method needs."""
    check_fit(
        name, needs, int(getattr(encoder, "towers", 1)), bool(getattr(encoder, "edges", False))
    )
    if needs.encoder is not None:
        backbone = getattr(encoder, "backbone", encoder)
        if needs.encoder not in getattr(backbone, "capabilities", ()):
            raise ConfigError(
                f"method '{name}' needs a backbone with {capability_words(needs.encoder)}, and "
                f"{type(backbone).__name__} has none; leave --backbone unset (auto picks one) or "
                "give such a backbone"
            )


def check_fit(name: str, needs: Needs, towers: int, edges: bool) -> None:
    """Refuse, in one line, data of ``towers`` modalities, with or without ``edges``, that method
    ``name`` cannot train on (checked on the data before anything is built, and on the encoder)."""
    have = towers
    if have != needs.towers:  # the method declares how many encoders it trains; the data decides
        if needs.towers == 1:
            raise ConfigError(
                f"method '{name}' trains one encoder, but the data is paired (two modalities, a "
                f"two-tower encoder); use a paired method ({', '.join(_names(towers=2))}) or "
                "single-modality data"
            )
        raise ConfigError(
            f"method '{name}' trains {needs.towers} towers on paired data, but the data has one "
            "modality; give paired data (--pair-channels A:B, or an .npz with x_a and x_b) or a "
            "single-modality method"
        )
    if edges != needs.edges:  # edge methods take graph views, the others tensors
        if edges:
            raise ConfigError(
                f"method '{name}' does not train on graphs (it concatenates views as tensors); "
                f"choose one of: {', '.join(_names(edges=True))}"
            )
        raise ConfigError(
            f"method '{name}' trains on graphs only; give a graph (an .npz with x and "
            "edge_index, karate or sbm) or another method"
        )


def build(name: str, encoder: Encoder, loss: dict[str, Any], ctx: Context) -> Method:
    """Method ``name`` on ``encoder`` (checked against the method's :class:`Needs`)."""
    cls = get(name)
    params = validate_params(name, loss)
    needs = cls.requirements(params)
    check_encoder(name, encoder, needs)
    if needs.n_views is not None and (ctx.n_views != needs.n_views or ctx.local_crops):
        raise ConfigError(
            f"method '{name}' uses exactly {needs.n_views} views and no multi-crop, got "
            f"views.n_views={ctx.n_views}, views.local_crops={ctx.local_crops}; set "
            f"--set views.n_views={needs.n_views} --set views.local_crops=0"
        )
    return cls(encoder, params, ctx)


def _names(towers: int = 1, edges: bool = False) -> list[str]:
    return sorted(
        n for n, c in REGISTRY.items() if c.needs.towers == towers and c.needs.edges == edges
    )


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
    "requirements",
    "check_encoder",
    "check_fit",
    "register_capability",
    "capability_words",
    "validate_params",
    "Batch",
    "Context",
    "Method",
    "Needs",
    "Params",
]
