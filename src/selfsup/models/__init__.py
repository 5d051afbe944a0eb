"""Backbones (per modality) and heads. ``build_backbone`` returns a module with ``out_dim``."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .convnet import ConvNet
from .heads import mlp, projection_head
from .resnet import ResNet, resnet18, resnet34, resnet50
from .vit import ViT, vit

BACKBONES = {
    "convnet": lambda c, stem, w: ConvNet(c, width=w),
    "convnet_small": lambda c, stem, w: ConvNet(c, widths=(16, 32, 64, 128), width=w),
    "convnet_deep": lambda c, stem, w: ConvNet(c, width=w, convs_per_stage=2),
    "resnet18": lambda c, stem, w: resnet18(in_channels=c, cifar_stem=stem, width=w),
    "resnet34": lambda c, stem, w: resnet34(in_channels=c, cifar_stem=stem, width=w),
    "resnet50": lambda c, stem, w: resnet50(in_channels=c, cifar_stem=stem, width=w),
    # a CPU-sized ViT (width 128, 6 blocks, 4 heads; models/vit.py); the suffix is the patch size
    "vit_tiny": lambda c, stem, w: vit(c, patch_size=4, width=w),
    "vit_tiny_p2": lambda c, stem, w: vit(c, patch_size=2, width=w),
    "vit_tiny_p8": lambda c, stem, w: vit(c, patch_size=8, width=w),
}

__all__ = [
    "build_backbone",
    "BACKBONES",
    "ConvNet",
    "ResNet",
    "mlp",
    "projection_head",
    "resnet18",
    "resnet34",
    "resnet50",
    "ViT",
]


def build_backbone(
    name: str, in_channels: int, image_size: int, cifar_stem: bool | None = None, width: float = 1.0
) -> nn.Module:
    """Build a backbone by name; ``auto`` is the small ConvNet."""
    if name == "auto":
        name = "convnet"
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; choose one of: auto, {', '.join(BACKBONES)}")
    stem = (image_size <= 64) if cifar_stem is None else cifar_stem
    net = BACKBONES[name](in_channels, stem, width)
    if isinstance(net, ViT) and image_size:
        net.grid(
            image_size, image_size
        )  # a patch size that does not divide the image: ConfigError now
    return net
