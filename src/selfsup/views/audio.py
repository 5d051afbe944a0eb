"""Batched sound views made on the training device: NaN-padded waveforms (B, T) in, ``n_views``
log-mel views (B, 1, M, S // hop) out, each of the same shape.

Random under torch's global generator, which the trainer keys by (seed, step) and checkpoints, so
views are reproducible under the seed. The ops, in this order, each on when its field is set:

- **segment** (COLA, Saeed et al. 2021): a random ``segment`` seconds of each clip (past a shorter
  clip's end, the log-mel frames read as the training mean); ``same_segment`` draws one position for
  all the views of a clip (BYOL-A, Niizumi et al. 2021, makes both views from one segment) instead
  of one per view;
- **time shift**: the segment moved later by up to ``shift`` of its length (zeros come in);
- **reverberation**: with probability ``reverb_p``, the segment convolved (FFT) with a synthetic
  room impulse response (:func:`room_impulse`: a direct path, then Gaussian noise whose energy
  decays exponentially, Polack's statistical model of a diffuse tail) of reverberation time
  log-uniform in ``rt60`` seconds and direct-to-reverberant ratio uniform in ``drr`` dB, cut at
  the clip's end and scaled back to the dry segment's RMS (a room does not make a voice louder);
- **gain**: times a random gain of +-``gain_db`` dB;
- **noise**: with probability ``noise_p``, white noise at a random SNR in ``snr`` dB;
- the log-mel front end (:class:`selfsup.models.audio.LogMel`);
- **equalisation** (a microphone's or channel's response): with probability ``eq_p``, a smooth
  random gain curve added to the log-mel's valid frames: ``eq_bands`` gains uniform in
  +-``eq_db`` dB at points evenly spaced on the mel axis (first and last band included), linearly
  interpolated between them (:func:`random_eq`);
- **pitch shift**: every frequency times ``2 ** (k / 12)``, ``k`` uniform in +-``pitch`` semitones,
  done on the log-mel: each mel band reads the band of its centre frequency divided by that factor
  (linear interpolation on the mel scale; below ``fmin`` or above ``fmax``, the training mean). It
  moves the whole spectrum, envelope (formants) included, as resampling a recording does, but
  keeps its duration; on the waveform that takes a phase vocoder, here it is one gather;
- **tempo change**: the frames played faster or slower by a factor log-uniform in
  ``[1 / (1 + tempo), 1 + tempo]`` (> 1: faster), anchored at the segment's first frame, pitch
  unchanged (frame ``j`` reads frame ``j * factor``, linearly interpolated; past the end, the
  training mean);
- **mixing** (BYOL-A's log-mixup-exp): ``log((1 - l) exp(x) + l exp(x'))`` with ``x'`` another
  clip of the batch and ``l ~ U(0, mixup)``; with ``mixup_units="normalised"`` in units of the
  training log-mel's deviation ``s``, ``s log((1 - l) exp(x / s) + l exp(x' / s))`` (BYOL-A mixes
  pre-normalised log-mels, where the other clip weighs far less than in the powers' mixing; the
  batch's clips stand for its FIFO of 2,048 past clips);
- **random resize crop** of the log-mel (BYOL-A): a crop of ``rrc_freq`` x ``rrc_time`` times the
  spectrogram's size (each factor uniform in its range; above 1 the crop reaches past the edges,
  which read as the training mean) resized back bilinearly, a random position; with
  ``rrc_canvas`` BYOL-A's virtual crop area: the crop sizes are clipped to a canvas that many
  times the log-mel's size (the log-mel at its centre) and the crop lies anywhere inside it
  (:func:`crop_boxes`);
- **masking** (SpecAugment, Park et al. 2019): ``time_masks`` bands of up to ``time_mask`` of the
  frames and ``freq_masks`` of up to ``freq_mask`` of the mel bands set to the training mean.

Presets (``views.preset``; ``auto`` picks the method's, ``masked`` for methods that mask patches,
else ``general``); ``views.audio.FIELD=...`` overrides a field of the chosen one:

- ``general``: segments (one per view), gain 6 dB, mixing 0.4, resize crop 0.6-1.5, one time and
  one frequency mask of up to 10%: for sound in general;
- ``speech``: segments, time shift 0.1, reverberation (p 0.5, RT60 0.1-1 s, DRR -5 to 15 dB),
  gain 6 dB, noise (p 0.5, 10-30 dB), equalisation (p 0.5, +-6 dB at 6 points), pitch shift of up
  to 2 semitones and tempo change of up to 15% (voices differ in pitch and speaking rate; they
  replace the resize crop 0.8-1.2 x 0.8-1.25 this preset had before, which BENCHMARKS.md compares),
  mixing 0.2, two time masks of 5% and two frequency masks of 10%;
- ``cola``: segments only (COLA uses no other augmentation);
- ``byola``: one segment per clip, mixing 0.4 in normalised units, resize crop 0.6-1.5 on a
  canvas of 1 x 1.5 (no zoom-out in frequency) (BYOL-A's views, as its authors' code makes them);
- ``masked``: one segment per clip, nothing else (MAE's masking is its augmentation);
- ``none``: the eval view (the clip's first seconds) in every view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn

from ..models.audio import LogMel, hz_to_mel, mel_to_hz


class AudioViewsConfig(BaseModel):
    """``views.audio``: overrides of the chosen preset's fields (unset: the preset's value)."""

    model_config = ConfigDict(extra="forbid")
    segment: float | None = Field(default=None, gt=0)
    """Seconds of each training view (0.96 by default, COLA's and BYOL-A's about 1 s); the
    evaluation view is the clip's first seconds (see the modality)."""
    same_segment: bool | None = None
    shift: float | None = Field(default=None, ge=0, le=1)
    gain_db: float | None = Field(default=None, ge=0)
    noise_p: float | None = Field(default=None, ge=0, le=1)
    snr: tuple[float, float] | None = None
    pitch: float | None = Field(default=None, ge=0, le=12)
    """Largest pitch shift, in semitones either way (0: off)."""
    tempo: float | None = Field(default=None, ge=0, le=1)
    """Largest tempo change: a factor log-uniform in [1 / (1 + tempo), 1 + tempo] (0: off)."""
    mixup: float | None = Field(default=None, ge=0, le=1)
    mixup_units: Literal["power", "normalised"] | None = None
    """``power``: mix the log-mels' powers (``log((1 - l) e^x + l e^x')``); ``normalised``: mix
    them in units of the training log-mel's deviation ``s`` (``s log((1 - l) e^(x / s) + l
    e^(x' / s))``), as BYOL-A mixes its pre-normalised log-mels."""
    rrc_canvas: tuple[float, float] | Literal[False] | None = None
    """BYOL-A's virtual crop area (mel, time) in ratio to the log-mel: crops are at most this
    large and lie inside it, the log-mel at its centre (``false``: no canvas, crops of any size
    in the ranges, centred anywhere the crop stays inside the log-mel or covers it)."""
    rrc_freq: tuple[float, float] | None = None
    rrc_time: tuple[float, float] | None = None
    time_masks: int | None = Field(default=None, ge=0)
    time_mask: float | None = Field(default=None, ge=0, le=1)
    freq_masks: int | None = Field(default=None, ge=0)
    freq_mask: float | None = Field(default=None, ge=0, le=1)
    reverb_p: float | None = Field(default=None, ge=0, le=1)
    """Probability of reverberating a view in a synthetic room (0: off)."""
    rt60: tuple[float, float] | None = None
    """Range of the room's reverberation time in seconds (log-uniform), within (0, 2]."""
    drr: tuple[float, float] | None = None
    """Range of the direct-to-reverberant energy ratio in dB (uniform)."""
    eq_p: float | None = Field(default=None, ge=0, le=1)
    """Probability of colouring a view with a random smooth gain curve (0: off)."""
    eq_db: float | None = Field(default=None, ge=0, le=40)
    """Largest gain of the curve's points, in dB either way."""
    eq_bands: int | None = Field(default=None, ge=2, le=64)
    """Points of the gain curve, evenly spaced on the mel axis."""

    @field_validator("rrc_canvas")
    @classmethod
    def _canvas(cls, v: tuple[float, float] | bool | None) -> tuple[float, float] | bool | None:
        if isinstance(v, tuple) and not (1 <= v[0] <= 4 and 1 <= v[1] <= 4):
            raise ValueError("expected [mel, time] ratios within [1, 4]")
        return v

    @field_validator("rt60", "drr")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None, info) -> tuple[float, float] | None:
        if v is not None:
            if v[0] > v[1]:
                raise ValueError("expected [low, high] with low <= high")
            if info.field_name == "rt60" and not (0 < v[0] and v[1] <= 2):
                raise ValueError("expected seconds within (0, 2]")
        return v


@dataclass(frozen=True)
class AudioViewSpec:
    same_segment: bool = False
    shift: float = 0.0
    gain_db: float = 0.0
    noise_p: float = 0.0
    snr: tuple[float, float] = (10.0, 30.0)
    pitch: float = 0.0
    tempo: float = 0.0
    mixup: float = 0.0
    mixup_units: str = "power"
    rrc_canvas: tuple[float, float] | None = None
    rrc_freq: tuple[float, float] = (1.0, 1.0)
    rrc_time: tuple[float, float] = (1.0, 1.0)
    time_masks: int = 0
    time_mask: float = 0.0
    freq_masks: int = 0
    freq_mask: float = 0.0
    reverb_p: float = 0.0
    rt60: tuple[float, float] = (0.1, 1.0)
    drr: tuple[float, float] = (-5.0, 15.0)
    eq_p: float = 0.0
    eq_db: float = 6.0
    eq_bands: int = 6
    eval_view: bool = False


AUDIO_PRESETS = {
    "general": AudioViewSpec(
        gain_db=6.0, mixup=0.4, rrc_freq=(0.6, 1.5), rrc_time=(0.6, 1.5),
        time_masks=1, time_mask=0.1, freq_masks=1, freq_mask=0.1,
    ),
    "speech": AudioViewSpec(
        shift=0.1, gain_db=6.0, noise_p=0.5, snr=(10.0, 30.0), pitch=2.0, tempo=0.15, mixup=0.2,
        time_masks=2, time_mask=0.05, freq_masks=2, freq_mask=0.1, reverb_p=0.5, eq_p=0.5,
    ),
    "cola": AudioViewSpec(),
    "byola": AudioViewSpec(
        same_segment=True, mixup=0.4, mixup_units="normalised",
        rrc_freq=(0.6, 1.5), rrc_time=(0.6, 1.5), rrc_canvas=(1.0, 1.5),
    ),
    "masked": AudioViewSpec(same_segment=True),
    "none": AudioViewSpec(same_segment=True, eval_view=True),
}  # fmt: skip


def spec_with(spec: AudioViewSpec, overrides: dict) -> AudioViewSpec:
    """``spec`` with the fields the user set in ``views.audio`` (``segment`` is not a spec
    field; ``rrc_canvas`` false: none)."""
    changes = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in overrides.items()
        if v is not None and k != "segment"
    }
    if changes.get("rrc_canvas") is False:
        changes["rrc_canvas"] = None
    return replace(spec, **changes)


def valid_lengths(x: Tensor) -> Tensor:
    """Samples before the NaN padding of each clip of (B, T), at least 1."""
    return (~torch.isnan(x)).sum(1).clamp(min=1)


def crop(
    x: Tensor, length: int, start: Tensor, shift: Tensor | None = None, n: Tensor | None = None
) -> Tensor:
    """(B, length) windows of NaN-padded (B, T) clips from ``start`` (B,); samples past a clip's end
    are NaN (padding) and the ``shift`` (B,) samples moved in at the beginning are 0. ``n``: the
    clips' lengths when known (then ``x`` may hold zeros instead of the NaN padding)."""
    n = valid_lengths(x) if n is None else n
    t = torch.arange(length, device=x.device)[None]
    src = start[:, None] + t - (0 if shift is None else shift[:, None])
    before = src < start[:, None]
    past = (src >= n[:, None]) | (src >= x.shape[1])
    src = src.clamp(0, x.shape[1] - 1)
    out = torch.where(before, 0.0, x.gather(1, src).nan_to_num(nan=0.0))
    return out.masked_fill(past & ~before, float("nan"))


def random_starts(n: Tensor, length: int) -> Tensor:
    """Uniform window starts for clips of lengths ``n`` (B,) (0 for a clip shorter than it)."""
    room = (n - length).clamp(min=0)
    return (torch.rand(len(n), device=n.device) * (room + 1).float()).floor().long().clamp(max=room)


def crop_boxes(
    b: int,
    fr: tuple[float, float],
    tr: tuple[float, float],
    canvas: tuple[float, float] | None = None,
    device=None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random crop boxes for :func:`resize_crop`, in units of the log-mel's height and width:
    sizes ``sf``, ``st`` (B,) and centres ``cf``, ``ct`` (B,) as offsets from the log-mel's
    centre (the affine grid's units: 2 per side, so a box spans ``c - s`` to ``c + s``).

    ``canvas`` unset: sizes uniform in ``fr`` x ``tr``, centred anywhere the crop keeps inside the
    log-mel (or, when larger, covers it). ``canvas`` (mel, time ratios): BYOL-A's virtual crop
    area, the log-mel at the centre of a canvas that large: sizes uniform in the ranges clipped
    to the canvas, the crop anywhere inside the canvas (its start uniform in ``[0, canvas -
    size]``)."""
    sf = fr[0] + (fr[1] - fr[0]) * torch.rand(b, device=device)
    st = tr[0] + (tr[1] - tr[0]) * torch.rand(b, device=device)
    uf, ut = 2 * torch.rand(b, device=device) - 1, 2 * torch.rand(b, device=device) - 1
    if canvas is None:
        return sf, st, (1 - sf).abs() * uf, (1 - st).abs() * ut
    sf, st = sf.clamp(max=canvas[0]), st.clamp(max=canvas[1])
    return sf, st, (canvas[0] - sf) * uf, (canvas[1] - st) * ut


def resize_crop(
    m: Tensor,
    fr: tuple[float, float],
    tr: tuple[float, float],
    fill: float,
    canvas: tuple[float, float] | None = None,
) -> Tensor:
    """A random resize crop of (B, 1, M, F) log-mels (boxes from :func:`crop_boxes`; outside the
    log-mel reads ``fill``), resized back bilinearly, batched with one affine grid."""
    sf, st, cf, ct = crop_boxes(len(m), fr, tr, canvas, m.device)
    theta = torch.zeros(len(m), 2, 3, device=m.device)
    theta[:, 0, 0], theta[:, 0, 2] = st, ct  # x: time (width)
    theta[:, 1, 1], theta[:, 1, 2] = sf, cf  # y: frequency (height)
    grid = F.affine_grid(theta, list(m.shape), align_corners=False)
    out = F.grid_sample(m - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def resample_axis(m: Tensor, src: Tensor, dim: int, fill: float) -> Tensor:
    """(B, 1, M, F) with position ``i`` of axis ``dim`` (2: mel, 3: time) read at the fractional
    position ``src[b, i]`` (B, size) of the same axis, linearly interpolated; positions outside the
    axis (by more than 1e-5, rounding) read ``fill``."""
    size = m.shape[dim]
    inside = (src >= -1e-5) & (src <= size - 1 + 1e-5)
    src = src.clamp(0, size - 1)
    lo = src.floor()
    w = (src - lo).to(m.dtype)
    lo = lo.long()
    shape = [len(m), 1, 1, 1]
    shape[dim] = size

    def at(i: Tensor) -> Tensor:
        return m.gather(dim, i.clamp(0, size - 1).view(shape).expand_as(m))

    a, b = at(lo), at(lo + 1)
    out = a + (b - a) * w.view(shape)
    return torch.where(inside.view(shape), out, torch.full_like(m, fill))


def pitch_shift(m: Tensor, semitones: Tensor, fmin: float, fmax: float, fill: float) -> Tensor:
    """Log-mels (B, 1, M, F) of the front end's HTK mel bands between ``fmin`` and ``fmax`` with
    every frequency times ``2 ** (semitones / 12)`` (B,): band ``k`` reads the mel position of
    its centre frequency divided by that factor (> 0 semitones: the energy moves up)."""
    n_mels = m.shape[2]
    lo, hi = float(hz_to_mel(fmin)), float(hz_to_mel(fmax))
    step = (hi - lo) / (n_mels + 1)
    centre = torch.from_numpy(mel_to_hz(lo + step * np.arange(1, n_mels + 1))).to(m.device)
    ratio = 2.0 ** (semitones.double()[:, None] / 12.0)
    mel = 2595.0 * torch.log10(1.0 + centre[None] / ratio / 700.0)
    return resample_axis(m, ((mel - lo) / step - 1.0).to(m.dtype), 2, fill)


def tempo_change(m: Tensor, factor: Tensor, fill: float) -> Tensor:
    """Log-mels (B, 1, M, F) played ``factor`` (B,) times as fast from their first frame: frame
    ``j`` reads frame ``j * factor`` (> 1: faster, the sound ends earlier; the frames past the
    end read ``fill``)."""
    j = torch.arange(m.shape[3], device=m.device, dtype=m.dtype)
    return resample_axis(m, j[None] * factor[:, None].to(m.dtype), 3, fill)


def room_impulse(rt60: Tensor, drr_db: Tensor, length: int, sr: int) -> Tensor:
    """(B, ``length``) room impulse responses: a unit direct path at sample 0, then Gaussian noise
    whose energy falls 60 dB in ``rt60`` (B,) seconds (amplitude ``exp(-3 ln(10) t / rt60)``), its
    energy ``drr_db`` (B,) dB below the direct path's. Random under torch's generator."""
    b, dev = len(rt60), rt60.device
    t = torch.arange(1, length, device=dev, dtype=torch.float32) / sr
    tail = torch.randn(b, length - 1, device=dev) * torch.exp(
        -3.0 * math.log(10.0) * t[None] / rt60.float()[:, None]
    )
    energy = tail.pow(2).sum(1, keepdim=True).clamp(min=1e-20)
    tail = tail * torch.sqrt(10 ** (-drr_db.float()[:, None] / 10) / energy)
    return torch.cat([torch.ones(b, 1, device=dev), tail], 1)


def reverberate(w: Tensor, h: Tensor) -> Tensor:
    """NaN-padded waveforms (B, L) convolved (FFT) with impulse responses ``h`` (B, K), cut to
    ``L`` samples; samples past a clip's end stay NaN (the tail past its end is dropped) and each
    clip keeps the RMS it had over its valid samples."""
    pad = torch.isnan(w)
    dry = w.nan_to_num(nan=0.0)
    n = 1 << (w.shape[1] + h.shape[1] - 2).bit_length()  # a power of 2, >= L + K - 1
    wet = torch.fft.irfft(torch.fft.rfft(dry, n) * torch.fft.rfft(h.to(dry.dtype), n), n)
    wet = wet[:, : w.shape[1]].masked_fill(pad, 0.0)
    count = (~pad).sum(1, keepdim=True).clamp(min=1)
    rms = lambda a: (a.pow(2).sum(1, keepdim=True) / count).sqrt()  # noqa: E731
    wet = wet * (rms(dry) / rms(wet).clamp(min=1e-12))
    return wet.masked_fill(pad, float("nan"))


def random_eq(m: Tensor, db: float, bands: int) -> tuple[Tensor, Tensor]:
    """Log-mels (B, 1, M, F) (natural log of power) plus a random gain curve over the mel axis:
    ``bands`` gains uniform in +-``db`` dB at evenly spaced mel positions, linearly
    interpolated; NaN (padding) stays NaN. Returns the curves too (B, M), in dB."""
    b, n_mels = len(m), m.shape[2]
    points = (2 * torch.rand(b, 1, bands, device=m.device) - 1) * db
    curve = F.interpolate(points, size=n_mels, mode="linear", align_corners=True)[:, 0]
    return m + (curve * (math.log(10.0) / 10)).to(m.dtype)[:, None, :, None], curve


def log_mixup_exp(x: Tensor, other: Tensor, lam: Tensor, scale: float = 1.0) -> Tensor:
    """BYOL-A's log-mixup-exp of log-mels ``x`` with ``other`` at ratios ``lam`` (broadcast):
    ``scale * log((1 - lam) exp(x / scale) + lam exp(other / scale))``. ``scale`` 1: the powers
    are mixed; the training log-mel's deviation: the mixing of the authors' pre-normalised log-mels
    (``(x - mean) / scale``; the mean cancels), in the log-mels' units."""
    lam = lam.to(x.dtype)
    mixed = torch.logaddexp(
        torch.log1p(-lam) + x / scale, torch.log(lam.clamp(min=1e-12)) + other / scale
    )
    return mixed * scale


def masks(m: Tensor, count: int, frac: float, dim: int, fill: float) -> Tensor:
    """``count`` random bands of up to ``frac`` of axis ``dim`` (2: mel, 3: time) set to
    ``fill``."""
    size = m.shape[dim]
    width_max = int(frac * size)
    if count == 0 or width_max == 0:
        return m
    b = len(m)
    pos = torch.arange(size, device=m.device)[None]
    hit = torch.zeros(b, size, dtype=torch.bool, device=m.device)
    for _ in range(count):
        w = torch.randint(0, width_max + 1, (b, 1), device=m.device)
        s = (torch.rand(b, 1, device=m.device) * (size - w + 1).float()).floor().long()
        hit |= (pos >= s) & (pos < s + w)
    shape = [b, 1, 1, 1]
    shape[dim] = size
    return torch.where(hit.view(shape), torch.full_like(m, fill), m)


class AudioViews(nn.Module):
    """The view maker (see the module docstring). ``front``: the front end's parameters;
    ``segment``: training view length in samples; ``window``: evaluation view in samples;
    ``mean``: the training log-mel mean (what crops and masks fill with)."""

    def __init__(
        self,
        spec: AudioViewSpec,
        front: dict,
        segment: int,
        window: int,
        mean: float,
        n_views: int,
        std: float = 1.0,
    ) -> None:
        super().__init__()
        self.spec, self.segment, self.window, self.n_views = spec, segment, window, n_views
        self.mean = float(mean)
        self.std = float(std)
        self.fmin, self.fmax = float(front["fmin"]), float(front["fmax"])
        self.sr = int(front["sr"])
        self.logmel = LogMel(**front)

    def waveform(self, x: Tensor, n: Tensor, start: Tensor | None) -> Tensor:
        s, b, dev = self.spec, len(x), x.device
        if s.eval_view:
            return crop(x, self.window, torch.zeros(b, dtype=torch.long, device=dev), n=n)
        if start is None:
            start = random_starts(n, self.segment)
        shift = None
        if s.shift > 0:
            shift = (torch.rand(b, device=dev) * s.shift * self.segment).long()
        w = crop(x, self.segment, start, shift, n)
        if s.reverb_p > 0:
            lo, hi = math.log(s.rt60[0]), math.log(s.rt60[1])
            rt60 = torch.exp(lo + (hi - lo) * torch.rand(b, device=dev))
            drr = s.drr[0] + (s.drr[1] - s.drr[0]) * torch.rand(b, device=dev)
            h = room_impulse(rt60, drr, max(2, int(s.rt60[1] * self.sr)), self.sr)
            on = torch.rand(b, device=dev) < s.reverb_p
            if bool(on.any()):  # only the clips drawn (the draws are the same either way)
                w = w.clone()
                w[on] = reverberate(w[on], h[on])
        if s.gain_db > 0:
            db = (2 * torch.rand(b, 1, device=dev) - 1) * s.gain_db
            w = w * 10 ** (db / 20)
        if s.noise_p > 0:
            snr = s.snr[0] + (s.snr[1] - s.snr[0]) * torch.rand(b, 1, device=dev)
            rms = w.pow(2).nanmean(1, keepdim=True).sqrt().nan_to_num(nan=0.0)
            on = (torch.rand(b, 1, device=dev) < s.noise_p).float()
            w = w + on * rms * 10 ** (-snr / 20) * torch.randn_like(w)
        return w

    def spectral(self, m: Tensor) -> Tensor:
        s, b, dev = self.spec, len(m), m.device
        if s.pitch > 0:
            k = (2 * torch.rand(b, device=dev) - 1) * s.pitch
            m = pitch_shift(m, k, self.fmin, self.fmax, self.mean)
        if s.tempo > 0:
            r = math.log1p(s.tempo) * (2 * torch.rand(b, device=dev) - 1)
            m = tempo_change(m, r.exp(), self.mean)
        if s.mixup > 0:
            lam = (torch.rand(len(m), 1, 1, 1, device=m.device) * s.mixup).to(m.dtype)
            other = m[torch.randperm(len(m), device=m.device)]
            m = log_mixup_exp(m, other, lam, self.std if s.mixup_units == "normalised" else 1.0)
        if s.rrc_freq != (1.0, 1.0) or s.rrc_time != (1.0, 1.0):
            m = resize_crop(m, s.rrc_freq, s.rrc_time, self.mean, s.rrc_canvas)
        m = masks(m, s.time_masks, s.time_mask, 3, self.mean)
        return masks(m, s.freq_masks, s.freq_mask, 2, self.mean)

    def one(self, x: Tensor, n: Tensor, start: Tensor | None) -> Tensor:
        s = self.spec
        if s.eval_view:
            return self.logmel(self.waveform(x, n, start), fill=self.mean)
        m = self.logmel(self.waveform(x, n, start))  # padding: NaN
        if s.eq_p > 0:
            on = torch.rand(len(m), 1, 1, 1, device=m.device) < s.eq_p
            m = torch.where(on, random_eq(m, s.eq_db, s.eq_bands)[0], m)
        return self.spectral(m.nan_to_num(nan=self.mean))  # padding: the training mean

    def forward(self, x: Tensor) -> list[Tensor]:
        n = valid_lengths(x)
        x = torch.nan_to_num(x.float(), nan=0.0)
        start = random_starts(n, self.segment) if self.spec.same_segment else None
        return [self.one(x, n, start) for _ in range(self.n_views)]
