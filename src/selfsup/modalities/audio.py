"""Sound: mono waveforms in (:mod:`selfsup.data.audio`), log-mel views (:mod:`selfsup.views.audio`),
spectrogram encoders (:mod:`selfsup.models.audio`).

The encoder takes log-mel spectrograms (N, 1, M, F) made by the front end whose parameters its
metadata holds (``front_end``); :meth:`AudioModality.prepare` makes them from waveforms, so
``selfsup embed`` and evaluation read sound files and arrays alike.

**Clip-level embeddings and variable lengths.** Evaluation embeds the clip's first ``window``
samples (``meta["window"]``: the training split's longest clip, rounded up to 16 frames, at most 10
s). Log-mel frames past a clip's end are NaN (padding): BYOL-A's encoder pools (mean + max over
time) only over the frames inside the clip, reading padding as the input mean in its convolutions;
the spectrogram ViT reads padding as the input mean and pools over the fixed window. Padding a clip
with NaN (the containers' convention) therefore never changes its embedding. In training views,
frames past a short clip's end read as the training mean. A clip longer than the window is
embedded by its beginning (raise the cap with ``--max-seconds``; the window follows the longest
training clip).

Defaults where the user left them unset (:meth:`AudioModality.config_defaults`): the ``audio_cnn``
encoder (BYOL-A's), the method's view preset (``general`` otherwise, ``masked`` for methods that
mask patches), 0.96 s training segments, a batch of at most 64, epochs for about 600 steps, AdamW at
lr 1e-3, kNN with k = 10 beside the linear probe.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..data import audio as _sources  # noqa: F401  (registers the sources and options)
from ..data import spoken_digits as _builtin  # noqa: F401  (registers spoken_digits)
from ..data.audio import AudioData
from ..errors import ConfigError, DataError
from .base import EncoderMeta, Modality, register, step_budget

if TYPE_CHECKING:
    from ..methods.base import Capability, Needs

NAME = "audio"
#: steps a default run aims at (epochs follow from it and the training split's size)
TARGET_STEPS = 600
#: the training views' length in seconds unless ``views.audio.segment`` says otherwise
SEGMENT_SECONDS = 0.96
#: the evaluation window's cap in seconds
MAX_WINDOW_SECONDS = 10.0
#: frame counts are multiples of this (so that 8 and 16 bin patches tile them)
FRAME_MULTIPLE = 16
#: clips used to estimate the log-mel mean and deviation
STAT_CLIPS = 2048


def _frames(seconds_or_samples: float, hop: int, sr: int | None = None) -> int:
    samples = seconds_or_samples * sr if sr else seconds_or_samples
    return max(FRAME_MULTIPLE, math.ceil(samples / hop / FRAME_MULTIPLE) * FRAME_MULTIPLE)


class AudioMeta(EncoderMeta, total=False):
    """A sound encoder's ``meta``: the log-mel front end's parameters and the clip windows."""

    front_end: Required[dict[str, Any]]
    segment: int
    window: int
    mean: Required[list[float]]
    std: Required[list[float]]


class AudioModality(Modality):
    name = NAME
    meta_type = AudioMeta
    input_ndim = 4
    input_layout = "(N, 1, M, F) log-mel spectrograms (make them with the encoder's front_end)"
    views_fields = frozenset({NAME})

    def backbone_names(self) -> list[str]:
        from ..models.audio import AUDIO_BACKBONES

        return list(AUDIO_BACKBONES)

    def config_defaults(self, cfg, train: AudioData) -> dict:
        return {
            "train": {
                **step_budget(len(train), 64, TARGET_STEPS),
            },
            "optim": {"lr": 1e-3},
            "eval": {"protocols": ["knn", "linear"], "knn_k": 10},
        }

    def check_input(self, data: AudioData) -> None:
        if np.isinf(data.x).any():
            raise DataError(f"{data.name}: waveforms hold infinite samples; drop those clips")

    def check_eval_data(self, data, meta: dict) -> None:
        super().check_eval_data(data, meta)
        if data.sr != meta["front_end"]["sr"]:
            raise DataError(
                f"evaluation data '{data.name}' is at {data.sr} Hz but the encoder takes "
                f"{meta['front_end']['sr']} Hz; load it with --sample-rate "
                f"{meta['front_end']['sr']}"
            )

    def input_meta(self, cfg, train: AudioData, needs: Needs):
        from ..models.audio import LogMel, front_end
        from ..views.audio import AUDIO_PRESETS, spec_with

        vc = getattr(cfg.views, NAME)
        preset = cfg.views.preset
        if preset == "auto":
            preset = (
                needs.view_preset
                if needs.view_preset in AUDIO_PRESETS
                else "masked"
                if needs.encoder == "tokens"
                else "general"
            )
        if preset not in AUDIO_PRESETS:
            raise ConfigError(
                f"unknown sound view preset '{preset}'; choose one of: auto, "
                f"{', '.join(AUDIO_PRESETS)}"
            )
        spec = spec_with(AUDIO_PRESETS[preset], vc.model_dump())
        fe = front_end(train.sr)
        hop = fe["hop"]
        longest = min(int(train.lengths.max()), int(MAX_WINDOW_SECONDS * train.sr))
        window = _frames(longest, hop) * hop
        segment = min(_frames(vc.segment or SEGMENT_SECONDS, hop, train.sr) * hop, window)
        # the log-mel statistics of the evaluation views (their frames inside the clips) of (up
        # to) STAT_CLIPS training clips
        rng = np.random.default_rng(0)
        pick = np.sort(rng.permutation(len(train))[:STAT_CLIPS])
        logmel = LogMel(**fe)
        with torch.no_grad():
            m = torch.cat(
                [
                    logmel(first(torch.from_numpy(train.x[pick[i : i + 256]]), window))
                    for i in range(0, len(pick), 256)
                ]
            )
        m = m[~torch.isnan(m)]
        mean, std = float(m.mean()), float(m.std())
        return preset, {
            "in_channels": 1,
            "front_end": fe,
            "segment": segment,
            "window": window,
            "preset": preset,
            "view_spec": asdict(spec),
            "mean": [mean],
            "std": [max(std, 1e-6)],
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.audio import AudioViews, AudioViewSpec

        spec = AudioViewSpec(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in meta["view_spec"].items()}
        )
        return AudioViews(
            spec,
            meta["front_end"],
            meta["segment"],
            meta["window"],
            meta["mean"][0],
            cfg.views.n_views,
            std=meta["std"][0],
        )

    def default_backbone(self, meta: dict) -> str:
        return "audio_cnn"

    def backbone_for(self, capability: Capability, meta: dict) -> str | None:
        if capability == "tokens":
            fe = meta["front_end"]
            tokens = (fe["n_mels"] // 8) * (meta["segment"] // fe["hop"] // 8)
            return "audio_vit" if tokens <= 256 else "audio_vit_p16"
        return None

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.audio import AUDIO_BACKBONES

        name = self.default_backbone(meta) if name == "auto" else name
        if name not in AUDIO_BACKBONES:
            raise ConfigError(
                f"backbone '{name}' does not take sound; choose one of: auto, "
                f"{', '.join(AUDIO_BACKBONES)}"
            )
        return AUDIO_BACKBONES[name](meta, model_cfg.width)

    def to_tensor(self, data: AudioData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        """The evaluation view: the log-mel of each clip's first ``meta["window"]`` samples."""
        return _logmel(meta, x.device)(first(x, meta["window"]))

    def raw_features(self, data: AudioData, meta: dict) -> Tensor:
        """Mean and standard deviation over time of each mel band of the clip's own frames (its
        first window), in units of the training log-mel's deviation: (N, 2 M)."""
        out = []
        for i in range(0, len(data), 256):
            x = torch.from_numpy(data.x[i : i + 256])
            with torch.no_grad():
                m = _logmel(meta, x.device)(first(x, meta["window"]))[:, 0]  # (B, M, F), NaN pad
            mu = m.nanmean(2)
            sd = (m - mu[..., None]).pow(2).nanmean(2).sqrt()
            out.append(torch.cat([(mu - meta["mean"][0]) / meta["std"][0], sd / meta["std"][0]], 1))
        return torch.cat(out)


def first(x: Tensor, n: int) -> Tensor:
    """The first ``n`` samples of each NaN-padded clip (B, T), NaN-padded past its end."""
    x = x.float()
    if x.shape[1] >= n:
        return x[:, :n]
    return torch.nn.functional.pad(x, (0, n - x.shape[1]), value=float("nan"))


_FRONT: dict[tuple, nn.Module] = {}


def _logmel(meta: dict, device) -> nn.Module:
    from ..models.audio import LogMel

    fe = meta["front_end"]
    key = (tuple(sorted(fe.items())), str(device))
    if key not in _FRONT:
        _FRONT[key] = LogMel(**fe).to(device)
    return _FRONT[key]


register(AudioModality())


def _register_views() -> None:
    from ..config import register_views
    from ..views.audio import AudioViewsConfig

    register_views(NAME, AudioViewsConfig)


_register_views()
