"""byola against the BYOL-A authors' definitions (nttcslab/byol-a, read for facts: train.py,
byol_a/augmentations.py, byol_a/byol_pytorch.diff, config.yaml). Each reference below is written
here from that reading; each test fails on the behaviour byola had before issue 21's fixes."""

import math

import numpy as np
import pytest
import torch

from selfsup.methods.byola import post_normalise
from selfsup.models.audio import front_end
from selfsup.views import audio as audio_views
from selfsup.views.audio import AUDIO_PRESETS, AudioViews, crop_boxes, log_mixup_exp

FE = front_end(16000)


# --- log-mixup-exp: byol_a/augmentations.py (MixupBYOLA, log_mixup_exp) and train.py
# (AugmentationModule: RunningNorm, the pre-normalisation, before the mixing)


def authors_mixup(x, z, alpha, mean, std):
    """The authors' mixing of log-mels ``x`` with ``z`` at ratio ``alpha`` (the background's
    share), on pre-normalised log-mels: ``log((1 - alpha) e^x' + alpha e^z' + eps)`` with
    ``x' = (x - mean) / std``; the result in pre-normalised units."""
    xn, zn = (x - mean) / std, (z - mean) / std
    return torch.log((1 - alpha) * xn.exp() + alpha * zn.exp() + torch.finfo(xn.dtype).eps)


def test_log_mixup_exp_in_normalised_units_equals_the_authors_mixing():
    g = torch.Generator().manual_seed(0)
    mean, std = -4.0, 3.7
    x = torch.randn(5, 1, 8, 12, generator=g, dtype=torch.float64) * std + mean
    z = torch.randn(5, 1, 8, 12, generator=g, dtype=torch.float64) * std + mean
    lam = torch.rand(5, 1, 1, 1, generator=g, dtype=torch.float64) * 0.4
    got = (log_mixup_exp(x, z, lam, std) - mean) / std
    torch.testing.assert_close(got, authors_mixup(x, z, lam, mean, std), atol=1e-6, rtol=0)
    # the powers' mixing (scale 1, what byola did before) is another function
    old = (log_mixup_exp(x, z, lam, 1.0) - mean) / std
    assert (old - authors_mixup(x, z, lam, mean, std)).abs().max() > 0.1


def test_the_byola_views_mix_in_the_training_deviations_units(monkeypatch):
    spec = AUDIO_PRESETS["byola"]
    assert spec.mixup == 0.4 and spec.mixup_units == "normalised"
    seen = []
    real = audio_views.log_mixup_exp

    def spy(x, other, lam, scale=1.0):
        seen.append(scale)
        return real(x, other, lam, scale)

    monkeypatch.setattr(audio_views, "log_mixup_exp", spy)
    views = AudioViews(spec, FE, 32 * 160, 48 * 160, -4.0, 2, std=3.7)
    torch.manual_seed(0)
    views(torch.randn(4, 9000) * 0.1)
    assert seen == [3.7, 3.7]


# --- random resize crop: byol_a/augmentations.py (RandomResizeCrop.get_params and forward) with
# train.py's settings: virtual_crop_scale (1.0, 1.5), freq_scale and time_scale (0.6, 1.5)


def authors_boxes(n, size=(64, 96), canvas=(1.0, 1.5), fs=(0.6, 1.5), ts=(0.6, 1.5), seed=0):
    """The authors' crop boxes in the affine grid's units (the log-mel spans -1..1 on each axis):
    half-sizes and centres (mel, time)."""
    rng = np.random.default_rng(seed)
    (fh, tw) = size
    ch, cw = int(fh * canvas[0]), int(tw * canvas[1])
    y0, x0 = (ch - fh) // 2, (cw - tw) // 2  # the log-mel at the canvas's centre
    h = np.clip((rng.uniform(*fs, n) * fh).astype(int), 1, ch)
    w = np.clip((rng.uniform(*ts, n) * tw).astype(int), 1, cw)
    i = np.array([rng.integers(0, ch - a + 1) for a in h])  # random.randint: both ends
    j = np.array([rng.integers(0, cw - a + 1) for a in w])
    sf, st = h / fh, w / tw
    cf = 2 * (i - y0 + h / 2) / fh - 1
    ct = 2 * (j - x0 + w / 2) / tw - 1
    return sf, st, cf, ct


@pytest.mark.parametrize("quantity", ["sf", "st", "cf", "ct", "top", "right"])
def test_the_byola_crop_boxes_follow_the_authors_distribution(quantity):
    spec = AUDIO_PRESETS["byola"]
    assert spec.rrc_canvas == (1.0, 1.5)
    n = 40000
    torch.manual_seed(0)
    boxes = crop_boxes(n, spec.rrc_freq, spec.rrc_time, spec.rrc_canvas)
    ours = [t.double().numpy() for t in boxes]
    ref = authors_boxes(n)

    def pick(b):
        sf, st, cf, ct = b
        return {"sf": sf, "st": st, "cf": cf, "ct": ct, "top": cf + sf, "right": ct + st}[quantity]

    q = np.linspace(0.02, 0.98, 25)
    # the authors' sizes are whole bins (int() floors): up to one bin (1/64) smaller
    tol = 2.5 / 64
    assert np.abs(np.quantile(pick(ours), q) - np.quantile(pick(ref), q)).max() < tol


def test_the_byola_crop_never_zooms_out_in_frequency():
    spec = AUDIO_PRESETS["byola"]
    torch.manual_seed(0)
    sf, _, cf, _ = crop_boxes(20000, spec.rrc_freq, spec.rrc_time, spec.rrc_canvas)
    assert float(sf.max()) <= 1.0 and float((cf.abs() + sf).max()) <= 1.0 + 1e-6
    assert abs(float((sf == 1.0).double().mean()) - 0.5 / 0.9) < 0.02  # h clipped to the canvas


def test_the_crop_boxes_of_the_other_presets_are_unchanged():
    """``general`` keeps its crop (no canvas): the draws and boxes of before."""
    spec = AUDIO_PRESETS["general"]
    assert spec.rrc_canvas is None
    torch.manual_seed(3)
    sf, st, cf, ct = crop_boxes(7, spec.rrc_freq, spec.rrc_time, None)
    torch.manual_seed(3)
    sf0 = 0.6 + 0.9 * torch.rand(7)
    st0 = 0.6 + 0.9 * torch.rand(7)
    cf0 = (1 - sf0).abs() * (2 * torch.rand(7) - 1)
    ct0 = (1 - st0).abs() * (2 * torch.rand(7) - 1)
    for a, b in ((sf, sf0), (st, st0), (cf, cf0), (ct, ct0)):
        torch.testing.assert_close(a, b)


# --- the target network: byol_pytorch.diff (lucidrains' BYOL, moving_average_decay from
# config.yaml's ema_decay 0.99, a constant EMA: target = beta * target + (1 - beta) * online)


def make(npz, params=None, model=None):
    from selfsup.data import load_source
    from selfsup.parts import assemble, with_defaults
    from selfsup.resolve import resolve_config

    cfg = resolve_config(
        {
            "method": "byola",
            "data": {"source": str(npz)},
            "model": {"width": 0.125, **(model or {})},
            "train": {"batch_size": 8},
            "params": params or {},
        }
    )
    train = load_source(str(npz)).train
    return assemble(with_defaults(cfg, train), train, torch.device("cpu"))


def test_the_constant_schedule_is_an_ema_of_fixed_decay(tones_npz):
    m = make(tones_npz, {"momentum_schedule": "constant"}, {"proj_hidden": 32}).method
    assert m.params.momentum == 0.99
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in [*m.encoder.parameters(), *m.projector.parameters()]:
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    before = [p.detach().clone() for p in [*m.target_encoder.parameters(),
                                            *m.target_projector.parameters()]]  # fmt: skip
    online = [p.detach().clone() for p in [*m.encoder.parameters(), *m.projector.parameters()]]
    m.after_step(300, 600)  # mid-run: BYOL's cosine would be at 0.995 here
    after = [*m.target_encoder.parameters(), *m.target_projector.parameters()]
    for t0, o, t1 in zip(before, online, after, strict=True):
        torch.testing.assert_close(t1, 0.99 * t0 + 0.01 * o)
    # the default stays BYOL's cosine rise (measured: the constant EMA did not help here)
    cos = make(tones_npz, None, {"proj_hidden": 32}).method
    assert cos.momentum_at(300, 600) == pytest.approx(0.995)


# --- the heads: config.yaml (proj_dim 4096: the MLPs' hidden layer; proj_size 256: the
# projection), lucidrains' MLP as byol_pytorch.diff uses it (Linear, BatchNorm, ReLU, Linear)


def test_the_heads_are_the_authors_widths_unless_set(tones_npz):
    m = make(tones_npz).method
    lin = [x for x in m.projector if isinstance(x, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in lin] == [
        (m.encoder.out_dim, 4096),
        (4096, 256),
    ]
    lin = [x for x in m.predictor if isinstance(x, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in lin] == [(256, 4096), (4096, 256)]
    assert any(isinstance(x, torch.nn.BatchNorm1d) for x in m.predictor)
    small = make(tones_npz, model={"proj_hidden": 32, "proj_dim": 16}).method  # the user's win
    assert small.projector[-1].out_features == 16 and small.predictor[0].out_features == 32


# --- BYOL's learning as the authors' code has it: the predictor on the online branch only, the
# loss over both orders (loss_fn(online_pred_one, target_proj_two) + the other), the target
# without gradients, the batch of both views post-normalised together (NormalizeBatch)


def test_the_loss_is_the_symmetrised_byol_loss_of_post_normalised_views(tmp_path, tones_npz):
    from test_audio_methods import build

    from selfsup.methods import Batch

    parts = build(tmp_path, tones_npz, "byola")
    m = parts.method.train()
    x = parts.x[:8]
    torch.manual_seed(0)
    views = parts.views(x)
    assert not torch.equal(views[0], views[1])  # two different views of the one segment
    enc = m.encoder
    joint = torch.cat(views).double()
    normed = (joint - joint.mean()) / joint.std()  # NormalizeBatch over the 2B views
    assert torch.allclose(
        torch.cat([(v - enc.mean) / enc.std for v in post_normalise(views, enc.mean, enc.std)]),
        normed.float(),
        atol=1e-4,
    )
    torch.manual_seed(1)  # the dropout draws
    loss, _ = m(views, Batch(x, torch.arange(8)))
    torch.manual_seed(1)
    v1, v2 = post_normalise(views, enc.mean, enc.std)
    z = m.projector(m.encoder(torch.cat([v1, v2])))
    # the views go through the encoder and projector as one batch (their BatchNorm statistics
    # joint; the authors' code runs each view alone) and through the predictor one by one
    p1, p2 = (m.predictor(h) for h in z.chunk(2))
    with torch.no_grad():
        t1, t2 = m.target_projector(m.target_encoder(torch.cat([v1, v2]))).chunk(2)

    def fn(a, b):
        return 2 - 2 * torch.nn.functional.cosine_similarity(a, b, dim=-1)

    ref = (fn(p1, t2) + fn(p2, t1)).mean() / 2  # the authors' sum, halved: our mean of the orders
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    loss.backward()
    assert all(p.grad is None for p in m.target_encoder.parameters())
    assert m.predictor[0].weight.grad is not None
    assert math.isfinite(float(loss))


def test_the_canvas_can_be_turned_off_and_is_validated():
    from pydantic import ValidationError

    from selfsup.views.audio import AudioViewsConfig, spec_with

    off = AudioViewsConfig(rrc_canvas=False).model_dump()
    assert spec_with(AUDIO_PRESETS["byola"], off).rrc_canvas is None
    on = AudioViewsConfig(rrc_canvas=[1.0, 1.5]).model_dump()
    assert spec_with(AUDIO_PRESETS["general"], on).rrc_canvas == (1.0, 1.5)
    with pytest.raises(ValidationError, match="within"):
        AudioViewsConfig(rrc_canvas=[0.5, 1.0])
