"""Sound: the log-mel front end (plain torch) and the spectrogram encoders.

:class:`LogMel` maps waveforms (B, T) to log-mel spectrograms (B, 1, M, T // hop), batched, on
any device. Its definition (tested against a float64 loop written from it):

- frames: the waveform is zero-padded by ``n_fft // 2`` samples on each side and cut into frames of
  ``n_fft`` samples every ``hop`` samples; the first ``T // hop`` frames are kept (frame t is
  centred on sample ``t * hop``);
- each frame times a periodic Hann window ``w[n] = 0.5 - 0.5 cos(2 pi n / n_fft)``, then its power
  spectrum ``|DFT|^2`` (``n_fft // 2 + 1`` bins at ``k * sr / n_fft`` Hz);
- ``M`` triangular filters equally spaced on the HTK mel scale ``m(f) = 2595 log10(1 + f / 700)``
  between ``fmin`` and ``fmax``: filter i rises from mel point i to i + 1 and falls to i + 2
  (peak 1, no area normalisation; ``librosa.filters.mel(htk=True, norm=None)``);
- ``log(mel + eps)``.

Defaults (BYOL-A's and COLA's input): 16 kHz, 25 ms windows (``n_fft`` 400) every 10 ms (hop 160),
64 mel bands from 60 to 7800 Hz, eps 1e-6. The parameters are saved in the encoder's metadata.

Encoders take the log-mel (B, 1, M, F) and return one clip-level vector:

- ``audio_cnn`` (default): BYOL-A's encoder (Niizumi et al. 2021): three blocks of 3x3 conv (64
  channels), batch norm, ReLU and 2x2 max pooling, the frequency axis folded into the channels,
  two fully connected layers of ``d`` units (ReLU, dropout 0.3), then temporal pooling by mean +
  max over time (``d`` = 512 x ``model.width``; the paper's 2048 on a GPU);
- ``audio_vit`` (patches of 8x8 log-mel bins) and ``audio_vit_p16`` (16x16, Audio-MAE's): the
  ViT of :mod:`selfsup.models.vit` on one channel, with the ``tokens`` capability (``mae`` masks its
  patches); it pools by the mean of its tokens over frequency and time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .vit import ViT

#: the front end's defaults (BYOL-A / COLA): see the module docstring
FRONT_END = {
    "sr": 16000,
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "n_mels": 64,
    "fmin": 60.0,
    "fmax": 7800.0,
    "eps": 1e-6,
}


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale (float64)."""
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down))


def front_end(sr: int, **over) -> dict:
    """The front end's parameters for rate ``sr`` (window and hop in samples, fmax below
    Nyquist)."""
    p = {**FRONT_END, **over, "sr": int(sr)}
    p["n_fft"] = int(round(p["win_ms"] * sr / 1000))
    p["hop"] = int(round(p["hop_ms"] * sr / 1000))
    p["fmax"] = float(min(p["fmax"], sr / 2))
    p["fmin"] = float(min(p["fmin"], p["fmax"] / 2))
    return p


class LogMel(nn.Module):
    """Waveforms (B, T) -> log-mel (B, 1, n_mels, T // hop); NaN (padding) counts as 0."""

    window: Tensor
    filters: Tensor

    def __init__(
        self, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float, fmax: float, eps: float, **_
    ):
        super().__init__()
        self.n_fft, self.hop, self.eps = int(n_fft), int(hop), float(eps)
        n = torch.arange(self.n_fft, dtype=torch.float64)
        self.register_buffer(
            "window",
            (0.5 - 0.5 * torch.cos(2 * math.pi * n / self.n_fft)).float(),
            persistent=False,
        )
        fb = mel_filters(sr, self.n_fft, n_mels, fmin, fmax)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)

    def forward(self, x: Tensor, fill: float | None = None) -> Tensor:
        """``x`` (B, T) NaN-padded waveforms; frames whose centre lies past a clip's end are NaN
        (or ``fill`` when given): the encoders leave them out of their pooling."""
        frames = x.shape[-1] // self.hop
        n = (~torch.isnan(x)).sum(-1)  # samples before the padding
        x = torch.nan_to_num(x.float(), nan=0.0)
        half = self.n_fft // 2
        x = F.pad(x, (half, half + self.hop))
        win = x.unfold(-1, self.n_fft, self.hop)[:, :frames] * self.window
        power = torch.fft.rfft(win, dim=-1).abs().pow(2)  # (B, F, n_fft // 2 + 1)
        mel = power @ self.filters.T  # (B, F, M)
        out = torch.log(mel + self.eps).transpose(1, 2).unsqueeze(1)
        pad = torch.arange(frames, device=x.device)[None] * self.hop >= n[:, None]  # (B, F)
        value = float("nan") if fill is None else fill
        return out.masked_fill(pad[:, None, None], value)


def valid_frames(m: Tensor) -> Tensor:
    """(B, F) bool: the frames of log-mels (B, 1, M, F) that are not padding (NaN)."""
    return ~torch.isnan(m).all(2)[:, 0]


class AudioCNN(nn.Module):
    """BYOL-A's encoder (see the module docstring): (B, 1, M, F) log-mel -> (B, d)."""

    def __init__(self, n_mels: int = 64, width: float = 1.0, channels: int = 64):
        super().__init__()
        c = max(8, int(round(channels * min(width, 1.0))))
        blocks: list[nn.Module] = []
        cin = 1
        for _ in range(3):
            blocks += [
                nn.Conv2d(cin, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            cin = c
        self.features = nn.Sequential(*blocks)
        d = max(32, int(round(512 * width)))
        self.fc = nn.Sequential(
            nn.Linear(c * (n_mels // 8), d), nn.ReLU(), nn.Dropout(0.3), nn.Linear(d, d), nn.ReLU()
        )
        self.out_dim = d

    def frames(self, x: Tensor) -> Tensor:
        """Per-frame features (B, F // 8, d) before the temporal pooling."""
        h = self.features(x)  # (B, C, M', F')
        h = h.permute(0, 3, 1, 2).flatten(2)  # (B, F', C * M')
        return self.fc(h)

    def forward(self, x: Tensor) -> Tensor:
        """Mean + max over the frames that are not padding (NaN frames: 0, the input mean)."""
        valid = valid_frames(x).float()[:, None]  # (B, 1, F)
        h = self.frames(torch.nan_to_num(x, nan=0.0))  # (B, F', d)
        keep = F.max_pool1d(valid, 8, 8, ceil_mode=True)[:, 0, : h.shape[1], None]  # (B, F', 1)
        mean = (h * keep).sum(1) / keep.sum(1).clamp(min=1)
        top = h.masked_fill(keep == 0, float("-inf")).amax(1)
        return mean + torch.where(torch.isfinite(top), top, torch.zeros_like(top))


class AudioViT(ViT):
    """The ViT of :mod:`selfsup.models.vit` on log-mels: padding frames (NaN) read as the input
    mean (0 after the encoder's normalisation). Evaluation inputs have one fixed length, so the
    padding a clip carries never changes its tokens."""

    def tokens(self, x: Tensor) -> Tensor:
        return super().tokens(torch.nan_to_num(x, nan=0.0))


def audio_vit(patch_size: int, width: float) -> ViT:
    """:func:`selfsup.models.vit.vit`'s CPU-sized ViT (width 128 x ``width``, 6 blocks, 4 heads)."""
    dim = max(16, int(round(128 * width / 16)) * 16)
    return AudioViT(1, patch_size=patch_size, dim=dim, depth=6, heads=4)


AUDIO_BACKBONES = {
    "audio_cnn": lambda meta, w: AudioCNN(meta["front_end"]["n_mels"], w),
    "audio_vit": lambda meta, w: audio_vit(8, w),
    "audio_vit_p16": lambda meta, w: audio_vit(16, w),
}
