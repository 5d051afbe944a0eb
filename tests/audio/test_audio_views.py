"""Each view keeps shape, is reproducible under the seed, and the ops do what they say."""

import pytest
import torch

from selfsup.models.audio import front_end
from selfsup.views.audio import AUDIO_PRESETS, AudioViews, AudioViewSpec, crop, masks

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
