"""Each view keeps shape, is reproducible under the seed, and the ops do what they say."""

import math

import numpy as np
import pytest
import torch

from selfsup.models.audio import LogMel, front_end, hz_to_mel, mel_to_hz
from selfsup.views.audio import (
    AUDIO_PRESETS,
    AudioViews,
    AudioViewSpec,
    crop,
    masks,
    pitch_shift,
    resample_axis,
    tempo_change,
)

FE = front_end(16000)
SEG, WIN = 32 * FE["hop"], 48 * FE["hop"]


def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 9000, generator=g) * 0.1
    x[0, 3000:] = float("nan")  # a clip shorter than the segment
    x[1, 7000:] = float("nan")
    return x


OPS = {
    "segments": AudioViewSpec(),
    "shift": AudioViewSpec(shift=0.2),
    "gain": AudioViewSpec(gain_db=6.0),
    "noise": AudioViewSpec(noise_p=1.0),
    "mixup": AudioViewSpec(mixup=0.4),
    "pitch": AudioViewSpec(pitch=3.0),
    "tempo": AudioViewSpec(tempo=0.3),
    "rrc": AudioViewSpec(rrc_freq=(0.6, 1.5), rrc_time=(0.6, 1.5)),
    "masks": AudioViewSpec(time_masks=2, time_mask=0.2, freq_masks=2, freq_mask=0.2),
}


@pytest.mark.parametrize("name", [*OPS, *[f"preset:{p}" for p in AUDIO_PRESETS]])
def test_each_view_keeps_shape_and_is_seeded(name):
    spec = AUDIO_PRESETS[name[7:]] if name.startswith("preset:") else OPS[name]
    views = AudioViews(spec, FE, SEG, WIN, -5.0, 3)
    x = batch()
    torch.manual_seed(1)
    a = views(x)
    torch.manual_seed(1)
    b = views(x)
    frames = (WIN if spec.eval_view else SEG) // FE["hop"]
    assert len(a) == 3
    for u, v in zip(a, b, strict=True):
        assert u.shape == (6, 1, 64, frames) and u.dtype == torch.float32
        assert torch.isfinite(u).all() and torch.equal(u, v)
    if name != "preset:none" and name != "preset:masked":
        assert not torch.equal(a[0], a[1])  # views differ


def test_crop_pads_past_the_end_and_shift_moves_later():
    x = torch.arange(1, 11, dtype=torch.float32)[None].repeat(2, 1)
    x[1, 4:] = float("nan")
    out = crop(x, 6, torch.tensor([2, 0])).nan_to_num(nan=-1)
    assert out[0].tolist() == [3, 4, 5, 6, 7, 8] and out[1].tolist() == [1, 2, 3, 4, -1, -1]
    out = crop(x, 6, torch.tensor([0, 0]), torch.tensor([2, 1])).nan_to_num(nan=-1)
    assert out[0].tolist() == [0, 0, 1, 2, 3, 4] and out[1].tolist() == [0, 1, 2, 3, 4, -1]


def test_masks_fill_bands_with_the_mean():
    m = torch.zeros(4, 1, 8, 20)
    torch.manual_seed(0)
    out = masks(m, 1, 0.5, 3, 7.0)
    hit = (out == 7.0).all(2)[:, 0]  # (B, F): whole frames
    assert out.shape == m.shape and ((out == 0) | (out == 7)).all()
    assert (hit.sum(1) <= 10).all()


def test_resample_axis_matches_a_loop_of_np_interp():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(3, 1, 7, 11, generator=g, dtype=torch.float64)
    for dim, size in ((2, 7), (3, 11)):
        src = torch.rand(3, size, generator=g, dtype=torch.float64) * (size + 3) - 2
        out = resample_axis(m, src, dim, -9.0)
        for b in range(3):
            for other in range(11 if dim == 2 else 7):
                line = m[b, 0, :, other] if dim == 2 else m[b, 0, other]
                want = np.interp(src[b].numpy(), np.arange(size), line.numpy(), -9.0, -9.0)
                got = out[b, 0, :, other] if dim == 2 else out[b, 0, other]
                np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def _tone(freq, seconds=0.5, sr=16000, start=0.0):
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    x = 0.5 * torch.sin(2 * math.pi * freq * t)
    return (x * (t >= start)).float()


def _peak_band(m):
    return int(m[0, 0].mean(1).argmax())


def _band_of(freq):
    lo, hi = hz_to_mel(FE["fmin"]), hz_to_mel(FE["fmax"])
    centres = mel_to_hz(np.linspace(lo, hi, FE["n_mels"] + 2)[1:-1])
    return int(np.abs(centres - freq).argmin())


@pytest.mark.parametrize("semitones", [-5.0, -2.0, 3.0, 7.0])
def test_a_pitch_shift_moves_the_energy_where_the_shifted_tone_lies(semitones):
    logmel = LogMel(**FE)
    m = logmel(_tone(1000.0)[None])
    floor = float(
        m.min()
    )  # the fill: silence, so the bands shifted in compare with the real tone's
    up = pitch_shift(m, torch.tensor([semitones]), FE["fmin"], FE["fmax"], floor)
    target = 1000.0 * 2 ** (semitones / 12)
    real = logmel(_tone(target)[None])
    assert up.shape == m.shape
    assert (
        abs(_peak_band(up) - _band_of(target)) <= 1 and abs(_peak_band(real) - _peak_band(up)) <= 1
    )
    moved = _peak_band(up) - _peak_band(m)
    assert (moved > 0) == (semitones > 0) and moved != 0
    # the shifted profile is closer to the real shifted tone's than the unshifted one is
    prof = lambda a: a[0, 0].mean(1)  # noqa: E731
    assert (prof(up) - prof(real)).abs().mean() < (prof(m) - prof(real)).abs().mean()
    same = pitch_shift(m, torch.tensor([0.0]), FE["fmin"], FE["fmax"], floor)
    torch.testing.assert_close(same, m, atol=1e-4, rtol=0)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25, 2.0])
def test_a_tempo_change_moves_an_onset_earlier_when_faster(factor):
    logmel = LogMel(**FE)
    m = logmel(_tone(800.0, seconds=1.0, start=0.4)[None])  # silence, then a tone from 0.4 s
    onset = lambda a: int((a[0, 0].mean(0) > a[0, 0].mean(0).min() + 3).nonzero()[0])  # noqa: E731
    out = tempo_change(m, torch.tensor([factor]), -5.0)
    assert out.shape == m.shape
    assert abs(onset(out) - onset(m) / factor) <= 1.5  # frame j reads frame j * factor
    assert _peak_band(out[..., onset(out) :]) == _peak_band(m[..., onset(m) :])  # pitch kept
    torch.testing.assert_close(tempo_change(m, torch.tensor([1.0]), -5.0), m)
    if factor > 1:  # faster: the frames past the end read the fill
        last = int(m.shape[3] / factor) + 2
        assert (out[..., last:] == -5.0).all()


def test_the_speech_preset_shifts_pitch_and_tempo():
    speech = AUDIO_PRESETS["speech"]
    assert speech.pitch > 0 and speech.tempo > 0  # instead of the resize crop
    assert speech.rrc_freq == (1.0, 1.0) and speech.rrc_time == (1.0, 1.0)
    assert AUDIO_PRESETS["general"].pitch == 0 and AUDIO_PRESETS["cola"].tempo == 0
