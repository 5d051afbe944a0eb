"""Images: uint8 (N, H, W, C) containers, batched image views, ConvNet/ResNet encoders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Required

import torch
from torch import Tensor, nn

from ..config import register_views
from ..data.base import ImageData
from ..errors import ConfigError
from ..validate import free_memory, gb
from ..views.image import FORMER_FIELDS, ImageViewsConfig
from .base import EncoderMeta, Modality, register

if TYPE_CHECKING:
    from ..methods.base import Capability, Needs


class ImageMeta(EncoderMeta, total=False):
    """An image encoder's ``meta``: its input channels and the side it takes at evaluation
    (``image_size``; the training views' side is ``view_spec["size"]``)."""

    in_channels: Required[int]
    image_size: Required[int]
    mean: Required[list[float]]
    std: Required[list[float]]


class ImageModality(Modality):
    name = "image"
    meta_type = ImageMeta
    input_ndim = 4
    input_layout = "(N, C, H, W) float images in [0, 1]"
    input_range = (0.0, 1.0)
    views_fields = frozenset({"image", "local_crops"})

    def config_defaults(self, cfg, train: ImageData) -> dict:
        """A batch that gives at least about 20 optimisation steps an epoch on a small image set:
        the configured 256 halved down to 32 at the least (1,347 digits: 64; 5,000 images: 128;
        CIFAR-10's 50,000 keep 256). The learning rate follows the batch (linear scaling), so this
        trades a bigger batch for more steps at the same compute; on digits it moved SimCLR's
        kNN from below the raw pixels (seeds 1, 2) to above them on each of 3 seeds
        (BENCHMARKS.md, the default run)."""
        batch = cfg.train.batch_size
        while batch > 32 and len(train) // batch < 20:
            batch //= 2
        return {"train": {"batch_size": batch}} if batch != cfg.train.batch_size else {}

    def check_config(self, cfg) -> None:
        vc = cfg.views.image
        size = vc.eval_size or vc.size or cfg.data.image_size
        if size is not None:  # before the data is decoded: the configured size, 3 channels
            eval_memory(size, 3, cfg.eval.batch_size, cfg.train.device, cfg.model)

    def check_run(self, cfg, train: ImageData, bank) -> None:
        vc = cfg.views.image
        size = vc.eval_size or vc.size or cfg.data.image_size or train.size
        if bank is not None and size:
            eval_memory(size, train.channels, cfg.eval.batch_size, cfg.train.device, cfg.model)

    def input_meta(self, cfg, train: ImageData, needs: Needs):
        from ..eval.features import channel_stats
        from ..views import resolve_spec

        vc = cfg.views.image
        preset, spec = resolve_spec(
            cfg.views.preset,
            train.channels,
            train.size,
            size=vc.size,
            crop_scale=vc.crop_scale,
            flip=vc.flip,
            jitter=vc.jitter,
            jitter_p=vc.jitter_p,
            grayscale_p=vc.grayscale_p,
            blur_p=vc.blur_p,
            affine_p=vc.affine_p,
            rotate=vc.rotate,
            translate=vc.translate,
        )
        mean, std = channel_stats(train.x)
        # image_size: what the encoder takes at evaluation; the training size lives in view_spec
        return preset, {
            "in_channels": train.channels,
            "image_size": vc.eval_size or spec.size,
            "mean": mean,
            "std": std,
            "view_spec": _spec_dict(spec),
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        views = self._hand_made_views(cfg, meta)
        vc = cfg.views.image
        if vc.generator:  # a user's plug-in makes the views instead (the builder tries it first)
            from ..views.generator import GeneratedViews

            views = GeneratedViews(vc.generator, train_size(meta), cfg.views.n_views)
        if vc.bss:  # one style per view batch (or per raw batch: bss_placement=batch)
            from ..views.style import BatchStyle

            views = BatchStyle(views, vc.bss_ratio, vc.bss_placement)
        return views

    def _hand_made_views(self, cfg, meta: dict) -> nn.Module:
        from ..views import ImageViews, MultiCropViews, ViewSpec

        shared, vc, c = cfg.views, cfg.views.image, meta["in_channels"]
        spec = ViewSpec(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in meta["view_spec"].items()}
        )
        if shared.local_crops:
            return MultiCropViews(
                spec,
                c,
                shared.n_views,
                shared.local_crops,
                vc.local_size,
                vc.local_scale,
                vc.backend,
            )
        return ImageViews(spec, c, shared.n_views, vc.backend)

    def backbone_names(self) -> list[str]:
        from ..models import BACKBONES

        return list(BACKBONES)

    def default_backbone(self, meta: dict) -> str:
        return "convnet"

    def backbone_for(self, capability: Capability, meta: dict) -> str | None:
        if capability == "feature_maps":
            return "convnet"
        if capability == "tokens":  # patches small enough that 8 px digits still have 16 of them
            size = train_size(meta)
            return "vit_tiny_p2" if size <= 16 else "vit_tiny" if size <= 64 else "vit_tiny_p8"
        return None

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models import ViT, build_backbone

        if name.startswith("timm:"):  # a timm model (the timm extra, imported lazily; issue 25)
            from ..models.timm_backbone import build_timm_backbone

            return build_timm_backbone(name, meta["in_channels"], train_size(meta))
        net = build_backbone(
            self.default_backbone(meta) if name == "auto" else name,
            meta["in_channels"],
            meta["image_size"],
            model_cfg.cifar_stem,
            model_cfg.width,
        )
        size = train_size(meta)
        if isinstance(net, ViT) and size != meta["image_size"]:
            net.grid(size, size)  # the patch size must divide the training size too
        return net

    def reconstruction(self, x: Tensor, dim: int, hidden: int, max_size: int):
        from ..models.autoencoder import conv_reconstruction

        return conv_reconstruction(x, dim, max_size)

    def to_tensor(self, data: ImageData) -> Tensor:
        return torch.from_numpy(data.x).permute(0, 3, 1, 2).contiguous()

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        from ..views import eval_view

        return eval_view(x, meta["image_size"])

    def raw_features(self, data: ImageData, meta: dict) -> Tensor:
        from ..eval.features import raw_features

        return raw_features(data.x, torch.tensor(meta["mean"]), torch.tensor(meta["std"]))


def train_size(meta: dict) -> int:
    """The size of the training views (``image_size`` is the evaluation size; they differ with
    ``views.image.eval_size``). Encoders saved before eval_size existed have no view_spec: one
    size."""
    spec = meta.get("view_spec") or {}
    return int(spec.get("size") or meta["image_size"])


def _spec_dict(spec) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}


#: channels of the first (largest) feature map of a ResNet (its stem), and of backbones not known
#: here
_FIRST_CHANNELS = 64
#: how many maps of that size are live at once in an evaluation forward pass (no gradients kept)
_LIVE_MAPS = 1


def eval_memory(size: int, channels: int, batch: int, device_name: str = "cpu", model=None) -> None:
    """Refuse an image/view size whose evaluation batch (``eval.batch_size`` images) would not fit:
    a rough bound (the input and the backbone's first feature map per image) against the free
    memory."""
    width, stride = _first_map(size, model)
    need = batch * (channels * size * size + width * _LIVE_MAPS * (size // stride) ** 2) * 4
    free = free_memory(device_name)
    if free is None or need <= free:
        return
    fit = max(1, int(batch * free / need))
    raise ConfigError(
        f"images of {size}x{size} px with eval.batch_size={batch} need about {gb(need)} per "
        f"evaluation batch, more than the {gb(free)} free; lower --set eval.batch_size "
        f"(at most {fit}) or the image/view size (data.image_size, views.image.size)"
    )


def _first_map(size: int, model) -> tuple[int, int]:
    """Channels and stride of an image backbone's first feature map (the largest one)."""
    name = getattr(model, "backbone", "auto") if model is not None else "auto"
    width = float(getattr(model, "width", 1.0)) if model is not None else 1.0
    if name in ("auto", "convnet", "convnet_small", "convnet_deep"):
        return max(1, int(round(32 * width))), 1
    if name.startswith("resnet"):
        stem = getattr(model, "cifar_stem", None)
        stem = size <= 64 if stem is None else stem
        return max(1, int(round(_FIRST_CHANNELS * width))), 1 if stem else 2
    return _FIRST_CHANNELS, 1


register(ImageModality())

register_views("image", ImageViewsConfig, former=FORMER_FIELDS)
