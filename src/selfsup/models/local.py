"""Local features of an encoder: the cells of its last feature map, as (N, L, C) tokens.

A capability of the backbone, not of the data: a ConvNet or ResNet gives the H x W cells of its last
stage, a ViT its patch tokens, a 1-D convolutional or transformer series encoder its time steps.
Methods that need local features (OBoW's visual words) call :func:`local_features` and never look at
their input; a backbone without local features (a table MLP) is refused in one line.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .convnet import ConvNet
from .resnet import ResNet
from .vit import ViT


def has_local_features(backbone: nn.Module) -> bool:
    return isinstance(backbone, (ConvNet, ResNet, ViT)) or hasattr(backbone, "forward_steps")


def require_local_features(encoder: nn.Module, method: str) -> None:
    bb = getattr(encoder, "backbone", encoder)
    if not has_local_features(bb):
        raise ConfigError(
            f"method '{method}' needs an encoder with local features (a convolutional feature map, "
            f"ViT patch tokens or series time steps), got {type(bb).__name__}; use another method "
            "or backbone"
        )


def local_features(encoder: nn.Module, x: Tensor) -> Tensor:
    """(N, L, C): the encoder's local features of the model input ``x`` (its normalisation
    applied)."""
    bb = getattr(encoder, "backbone", encoder)
    mean, std = getattr(encoder, "mean", None), getattr(encoder, "std", None)
    if isinstance(mean, Tensor) and isinstance(std, Tensor):
        x = (x - mean) / std
    if isinstance(bb, ConvNet):
        return bb.features(x).flatten(2).transpose(1, 2)
    if isinstance(bb, ResNet):
        return bb.layers(bb.stem(x)).flatten(2).transpose(1, 2)
    if isinstance(bb, ViT):
        return bb.encode_tokens(bb.tokens(x))[:, 1:]
    steps = getattr(bb, "forward_steps", None)
    if callable(steps):
        h, valid = steps(x)
        out: Tensor = (h * valid.to(h.dtype)).transpose(1, 2)  # valid: (N, 1, T)
        return out
    require_local_features(encoder, "this method")
    raise AssertionError  # unreachable
