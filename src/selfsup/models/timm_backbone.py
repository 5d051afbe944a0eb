"""``--backbone timm:NAME``: any image model of timm (the ``timm`` extra), imported lazily.

timm needs a torchvision built for the installed torch; where that cannot be installed (a CPU torch
without a matching torchvision wheel), the ``timm:`` backbones are unavailable and asking for one is
a one-line error. The model is created without pretrained weights (selfsup pretrains it) and without
a classifier (``num_classes=0``), for the data's channels; its pooled features are the encoder's
output (``out_dim = model.num_features``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError

PREFIX = "timm:"


def is_timm(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def require_timm() -> Any:
    """The timm module, or a one-line error saying how to install it."""
    try:
        import timm
    except ImportError as err:
        raise ConfigError(
            f"--backbone timm:NAME needs timm (and a torchvision matching your torch): "
            f'pip install "selfsup[timm]" ({type(err).__name__}: {str(err).splitlines()[0][:80]})'
        ) from None
    return timm


class TimmBackbone(nn.Module):
    """A timm model's pooled features, with ``out_dim``."""

    def __init__(self, model: nn.Module, out_dim: int):
        super().__init__()
        self.model = model
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # type: ignore[no-any-return]


def build_timm_backbone(name: str, in_channels: int, image_size: int | None = None) -> nn.Module:
    """The timm model ``timm:NAME`` for ``in_channels``-channel images; unknown names in one
    line."""
    timm = require_timm()
    model_name = name[len(PREFIX) :]
    if not model_name:
        raise ConfigError("--backbone timm:NAME needs a model name, e.g. timm:resnet18")
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0, "in_chans": in_channels}
    try:
        model = timm.create_model(model_name, img_size=image_size, **kwargs)
    except TypeError:  # models without an img_size argument (ConvNets)
        model = timm.create_model(model_name, **kwargs)
    except RuntimeError as err:
        raise ConfigError(
            f"timm has no model '{model_name}' ({str(err).splitlines()[0][:100]}); see "
            "timm.list_models()"
        ) from None
    return TimmBackbone(model, int(model.num_features))
