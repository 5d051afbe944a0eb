"""The log-mel front end against a float64 reference written from its definition (and librosa)."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from selfsup.models.audio import LogMel, front_end, mel_filters


def reference_logmel(x, sr, n_fft, hop, n_mels, fmin, fmax, eps):
    """A slow float64 loop: padded frames, periodic Hann, direct DFT, HTK triangles, log."""
    half = n_fft // 2
    xp = np.concatenate([np.zeros(half), x, np.zeros(half + hop)])
    frames = len(x) // hop
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = [hz(mel(fmin) + (mel(fmax) - mel(fmin)) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    out = np.zeros((n_mels, frames))
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * math.pi * n / n_fft)
    for t in range(frames):
        seg = xp[t * hop : t * hop + n_fft] * window
        power = []
        for k in range(n_fft // 2 + 1):
            re = sum(seg[j] * math.cos(2 * math.pi * k * j / n_fft) for j in range(n_fft))
            im = sum(seg[j] * math.sin(2 * math.pi * k * j / n_fft) for j in range(n_fft))
            power.append(re * re + im * im)
        for i in range(n_mels):
            lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
            acc = 0.0
            for k, p in enumerate(power):
                f = k * sr / n_fft
                w = max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
                acc += w * p
            out[i, t] = math.log(acc + eps)
    return out


def test_logmel_equals_the_definition_in_float64():
    rng = np.random.default_rng(0)
    fe = front_end(8000, n_mels=8, win_ms=8.0, hop_ms=4.0, fmin=50.0, fmax=3500.0)
    x = rng.standard_normal(200) * 0.3
    ref = reference_logmel(
        x, fe["sr"], fe["n_fft"], fe["hop"], 8, fe["fmin"], fe["fmax"], fe["eps"]
    )
    got = LogMel(**fe).double()(torch.from_numpy(x)[None])[0, 0].numpy()
    assert got.shape == ref.shape == (8, 200 // fe["hop"])
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=1e-6)


def test_logmel_is_batched_and_marks_the_padding():
    fe = front_end(16000)
    lm = LogMel(**fe)
    x = torch.randn(3, 4000)
    m = lm(x)
    assert m.shape == (3, 1, 64, 4000 // fe["hop"]) and torch.isfinite(m).all()
    padded = torch.cat([x, torch.full((3, 800), float("nan"))], 1)
    out = lm(padded)
    assert out.shape[-1] == 4800 // fe["hop"] and torch.isnan(out[..., m.shape[-1] :]).all()
    torch.testing.assert_close(out[..., : m.shape[-1]], m)
    assert (lm(padded, fill=-3.0)[..., m.shape[-1] :] == -3.0).all()


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="librosa not installed")
def test_logmel_equals_librosa():  # pragma: no cover - needs librosa
    import librosa

    fe = front_end(16000)
    fb = mel_filters(16000, fe["n_fft"], 64, fe["fmin"], fe["fmax"])
    ref = librosa.filters.mel(sr=16000, n_fft=fe["n_fft"], n_mels=64, fmin=fe["fmin"],
                              fmax=fe["fmax"], htk=True, norm=None)  # fmt: skip
    np.testing.assert_allclose(fb, ref, atol=1e-6)
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    s = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=fe["n_fft"], hop_length=fe["hop"],
                                       win_length=fe["n_fft"], window="hann", center=True,
                                       pad_mode="constant", power=2.0, n_mels=64, fmin=fe["fmin"],
                                       fmax=fe["fmax"], htk=True, norm=None)  # fmt: skip
    got = LogMel(**fe)(torch.from_numpy(x)[None])[0, 0].numpy()
    frames = got.shape[1]
    np.testing.assert_allclose(got, np.log(s[:, :frames] + fe["eps"]), atol=1e-3)
