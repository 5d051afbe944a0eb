"""The reverberation and equalisation views: the impulse response decays as its RT60 says, the
gain curve stays in its range, padding is respected, probability 0 is the identity."""

import math

import pytest
import torch
from pydantic import ValidationError

from selfsup.models.audio import front_end
from selfsup.views.audio import (
    AUDIO_PRESETS,
    AudioViews,
    AudioViewsConfig,
    AudioViewSpec,
    random_eq,
    reverberate,
    room_impulse,
    spec_with,
)

FE = front_end(16000)
SR = FE["sr"]
SEG = 32 * FE["hop"]


def schroeder_rt60(h: torch.Tensor) -> float:
    """RT60 from the energy decay curve (Schroeder's backward integral) of a response's tail,
    fitted between -5 and -25 dB (T20, times 3)."""
    tail = h[1:].double().pow(2)
    edc = tail.flip(0).cumsum(0).flip(0)
    db = 10 * torch.log10(edc / edc[0])
    t = torch.arange(len(db), dtype=torch.float64) / SR
    sel = (db <= -5) & (db >= -25)
    slope = ((t[sel] - t[sel].mean()) * (db[sel] - db[sel].mean())).sum() / (
        (t[sel] - t[sel].mean()).pow(2).sum()
    )
    return float(-60 / slope)


@pytest.mark.parametrize("rt60", [0.15, 0.4, 0.9])
def test_the_impulse_response_decays_60_db_in_its_rt60(rt60):
    torch.manual_seed(0)
    h = room_impulse(torch.full((16,), rt60), torch.zeros(16), int(2 * rt60 * SR), SR)
    est = [schroeder_rt60(r) for r in h]
    assert abs(sum(est) / len(est) - rt60) < 0.05 * rt60
    assert all(abs(e - rt60) < 0.15 * rt60 for e in est)


def test_the_direct_to_reverberant_ratio_is_the_one_asked():
    torch.manual_seed(0)
    drr = torch.tensor([-5.0, 0.0, 7.5, 15.0])
    h = room_impulse(torch.full((4,), 0.5), drr, 8000, SR)
    assert (h[:, 0] == 1).all()
    got = 10 * torch.log10(h[:, :1].pow(2).sum(1) / h[:, 1:].pow(2).sum(1))
    torch.testing.assert_close(got, drr, atol=1e-3, rtol=0)


def test_reverberating_an_impulse_gives_the_response_and_keeps_padding_and_rms():
    torch.manual_seed(0)
    h = room_impulse(torch.tensor([0.3, 0.3]), torch.tensor([5.0, 5.0]), 2000, SR)
    w = torch.zeros(2, 6000, dtype=torch.float64)
    w[:, 100] = 1.0
    w[1, 3000:] = float("nan")  # a shorter clip: its tail is cut at its end
    out = reverberate(w, h)
    assert out.shape == w.shape and torch.isnan(out[1, 3000:]).all()
    assert not torch.isnan(out[0]).any() and not torch.isnan(out[1, :3000]).any()
    rms = lambda a: a.nan_to_num(nan=0.0).pow(2).sum() / (~torch.isnan(a)).sum()  # noqa: E731
    for b in range(2):
        torch.testing.assert_close(rms(out[b]), rms(w[b]))
    scale = out[0, 100] / h[0, 0]
    torch.testing.assert_close(out[0, 100:2100], scale * h[0].double(), atol=1e-9, rtol=1e-6)
    assert (out[:, :100].abs() < 1e-9).all()  # causal
    delta = torch.zeros(1, 1)
    delta[0, 0] = 1.0
    torch.testing.assert_close(reverberate(w, delta.repeat(2, 1)), w, equal_nan=True)


def test_the_eq_gain_curve_stays_within_its_range_and_keeps_padding():
    torch.manual_seed(0)
    m = torch.zeros(256, 1, 64, 5)
    m[0, ..., 3:] = float("nan")
    out, curve = random_eq(m, 6.0, 6)
    assert out.shape == m.shape and torch.isnan(out[0, ..., 3:]).all()
    assert curve.abs().max() <= 6.0 and curve.abs().max() > 5.5  # the range is used
    db = out[1:, 0] * 10 / math.log(10)  # natural log of power -> dB
    torch.testing.assert_close(db, curve[1:, :, None].expand_as(db), atol=1e-4, rtol=0)
    steps = curve.diff(dim=1).abs()  # linear between 6 points: at most 12 dB over 63/5 bands
    assert steps.max() <= 12.0 / (63 / 5) + 1e-4


ROOMS = AudioViewSpec(reverb_p=1.0, eq_p=1.0, gain_db=6.0)


def test_a_padded_clip_gives_the_same_views_as_the_unpadded_one():
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(1, 3000, generator=g) * 0.1  # shorter than the segment
    padded = torch.cat([clip, torch.full((1, 6000), float("nan"))], 1)
    views = AudioViews(ROOMS, FE, SEG, SEG, -5.0, 2)
    torch.manual_seed(3)
    a = views(clip)
    torch.manual_seed(3)
    b = views(padded)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=0)
    # past the clip's end the frames read the training mean, whatever the room or microphone
    last = 3000 // FE["hop"] + 1
    assert (a[0][..., last:] == -5.0).all()


@pytest.mark.parametrize("spec", [ROOMS, AudioViewSpec(reverb_p=1.0), AudioViewSpec(eq_p=1.0)])
def test_room_views_keep_shape_are_seeded_and_change_the_view(spec):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 9000, generator=g) * 0.1
    x[0, 4000:] = float("nan")
    views = AudioViews(spec, FE, SEG, SEG, -5.0, 2)
    torch.manual_seed(1)
    a = views(x)
    torch.manual_seed(1)
    b = views(x)
    plain = AudioViews(replace_probs(spec, 0.0), FE, SEG, SEG, -5.0, 2)
    for u, v in zip(a, b, strict=True):
        assert u.shape == (4, 1, 64, SEG // FE["hop"]) and torch.isfinite(u).all()
        assert torch.equal(u, v)
    torch.manual_seed(1)
    c = plain(x)
    assert not torch.allclose(a[0], c[0], atol=1e-3)


def replace_probs(spec: AudioViewSpec, p: float) -> AudioViewSpec:
    from dataclasses import replace

    return replace(spec, reverb_p=p, eq_p=p)


def test_probability_zero_is_the_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 9000, generator=g) * 0.1
    base = AUDIO_PRESETS["speech"]
    off = replace_probs(base, 0.0)
    other = spec_with(off, {"rt60": [0.5, 1.5], "drr": [0.0, 1.0], "eq_db": 20.0, "eq_bands": 3})
    outs = []
    for spec in (off, other):
        torch.manual_seed(5)
        outs.append(AudioViews(spec, FE, SEG, SEG, -5.0, 2)(x))
    for u, v in zip(*outs, strict=True):
        assert torch.equal(u, v)


def test_the_fields_override_and_are_checked():
    cfg = AudioViewsConfig(reverb_p=0.3, rt60=(0.2, 0.6), eq_p=0.7, eq_db=3.0)
    spec = spec_with(AUDIO_PRESETS["general"], cfg.model_dump())
    assert (spec.reverb_p, spec.rt60, spec.eq_p, spec.eq_db) == (0.3, (0.2, 0.6), 0.7, 3.0)
    for bad in ({"rt60": (0.8, 0.2)}, {"rt60": (0.0, 0.5)}, {"drr": (10.0, 0.0)},
                {"reverb_p": 1.5}, {"eq_bands": 1}):  # fmt: skip
        with pytest.raises(ValidationError):
            AudioViewsConfig(**bad)


def test_the_speech_preset_reverberates_and_equalises_and_general_does_not():
    speech, general = AUDIO_PRESETS["speech"], AUDIO_PRESETS["general"]
    assert (speech.reverb_p, speech.eq_p) == (0.5, 0.5)
    assert general.reverb_p == 0 and general.eq_p == 0  # not measured on sound other than speech
    assert all(AUDIO_PRESETS[p].reverb_p == 0 for p in ("cola", "byola", "masked", "none"))
