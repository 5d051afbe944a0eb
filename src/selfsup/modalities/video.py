"""Video: uint8 (N, T, H, W, C) clips, CVRL's clip views, (2+1)-D ResNet / tubelet ViT encoders.

The encoder takes float clips (N, C, T, H, W) in [0, 1] (``views.video.clip_frames`` frames at the
view size); evaluation feeds it ``clip_frames`` frames spread evenly over each whole video
(:func:`selfsup.views.video.eval_clip`), so embeddings are clip-level. The raw-input baseline is the
pixels of each video's middle frame (what an image method could see of it), standardised per
channel.

When the user leaves them unset, video runs take their own defaults
(:meth:`VideoModality.config_defaults`): the ``two_pathway`` encoder, a batch of at most 32 clips
(half the training split when smaller), epochs for about 300 steps (at most 100), fp32 (bf16
autocast was several times slower per step on CPU), AdamW at lr 1e-3, kNN with k = 20, and the
linear probe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data.video import VideoData
from ..errors import DataError
from ..views.video import VideoViewsConfig
from .base import EncoderMeta, Modality, register, step_budget

if TYPE_CHECKING:
    from ..methods.base import Capability, Needs

NAME = "video"
#: optimiser steps a default video run aims at (epochs derive from it and the training split)
TARGET_STEPS = 300


class VideoMeta(EncoderMeta, total=False):
    """A video encoder's ``meta``: channels, frame side, the clip's frame count."""

    in_channels: Required[int]
    image_size: Required[int]
    frames: int
    clip_frames: Required[int]
    mean: Required[list[float]]
    std: Required[list[float]]


class VideoModality(Modality):
    name = NAME
    meta_type = VideoMeta
    input_ndim = 5
    input_layout = "(N, C, T, H, W) float clips in [0, 1]"
    input_range = (0.0, 1.0)
    views_fields = frozenset({NAME})

    def backbone_names(self) -> list[str]:
        from ..models.video import VIDEO_BACKBONES

        return list(VIDEO_BACKBONES)

    def config_defaults(self, cfg, train: VideoData) -> dict:
        return {
            "train": {
                **step_budget(len(train), 32, TARGET_STEPS, max_epochs=100),
                # bf16 autocast made a training step ~5x slower on CPU (backward of the factorised
                # convolutions), measured; fp32 is the default for clips
                "precision": "fp32",
            },
            "optim": {"lr": 1e-3},
            "eval": {"protocols": ["knn", "linear"], "knn_k": 20},
        }

    def check_input(self, data: VideoData) -> None:
        if data.frames < 1:
            raise DataError(f"{data.name}: clips have no frame")

    def input_meta(self, cfg, train: VideoData, needs: Needs):
        vc: VideoViewsConfig = getattr(cfg.views, NAME)
        size = vc.size or train.size
        clip = min(vc.clip_frames, train.frames)
        step = max(1, len(train) // 2000)
        sample = train.x[::step].astype(np.float32) / 255.0
        mean = sample.mean(axis=(0, 1, 2, 3))
        std = sample.std(axis=(0, 1, 2, 3))
        return "cvrl", {
            "in_channels": train.channels,
            "image_size": size,
            "frames": train.frames,
            "clip_frames": clip,
            "view_spec": vc.model_dump(mode="json"),
            "mean": [float(m) for m in mean],
            "std": [float(max(s, 1e-3)) for s in std],
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.video import VideoViews

        spec = VideoViewsConfig(**{**meta["view_spec"], "clip_frames": meta["clip_frames"]})
        return VideoViews(spec, meta["image_size"], cfg.views.n_views)

    def default_backbone(self, meta: dict) -> str:
        # an appearance pathway (an image ConvNet on every fourth frame) beside a motion one (the
        # (2+1)-D ResNet halving space by max-pooling, every frame): a clip-level objective can
        # tell clips apart by motion alone, and a single (2+1)-D network then drops what the
        # objects are (BENCHMARKS.md, issue 22); ``r2plus1d_pool`` alone by name
        return "two_pathway"

    def backbone_for(self, capability: Capability, meta: dict) -> str | None:
        return "video_vit" if capability == "tokens" else None

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.video import build_video_backbone

        name = self.default_backbone(meta) if name == "auto" else name
        return build_video_backbone(name, meta["in_channels"], meta["image_size"], model_cfg.width)

    def to_tensor(self, data: VideoData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        from ..views.video import eval_clip

        return eval_clip(x, meta["clip_frames"], meta["image_size"])

    def raw_features(self, data: VideoData, meta: dict) -> Tensor:
        """The middle frame's pixels in [0, 1], standardised per channel, flattened."""
        from ..eval.features import raw_features

        middle = data.x[:, data.frames // 2]
        return raw_features(middle, torch.tensor(meta["mean"]), torch.tensor(meta["std"]))


register(VideoModality())
register_views(NAME, VideoViewsConfig)
