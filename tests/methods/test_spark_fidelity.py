"""SparK against the authors' definitions (``keyu-tian/SparK``: ``pretrain/spark.py`` for the
densify step, ``pretrain/encoder.py`` for the sparse BatchNorm, ``pretrain/decoder.py`` for the UNet
blocks): the densify normalisation against a slow float64 reference, the UNet decoder's structure
and output resolution, the old form (``decoder=light``, ``densify_norm=none``) still reachable bit
for bit, and every option training without NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.methods.spark import SparKParams
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.models.sparse import (
    LightDecoder,
    UNetDecoder,
    densify,
    feature_channels,
    mask_at,
    sparse_forward,
)


def _spark(backbone="convnet_small", size=16, channels=1, seed=0, stem=None, **params):
    torch.manual_seed(seed)
    net = build_backbone(backbone, channels, size, cifar_stem=stem)
    enc = Encoder(net, [0.5] * channels, [0.25] * channels)
    ctx = methods.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=16, extra={"batch_size": 16}
    )
    return methods.build("spark", enc, params, ctx)


# -- densify normalisation ----------------------------------------------------------------------


def _slow_densify(f, active, token, weight, bias, eps):
    """The authors' densify before the projection, by loops in float64: a BatchNorm whose batch
    statistics (mean, biased variance) run over the visible positions only, zero elsewhere; then the
    mask token at the masked positions."""
    n, c, h, w = f.shape
    m = F.interpolate(active.double(), size=(h, w), mode="nearest")[:, 0]
    out = torch.empty_like(f)
    stats = []
    for k in range(c):
        vals = [
            float(f[i, k, y, x]) for i in range(n) for y in range(h) for x in range(w) if m[i, y, x]
        ]
        mean = sum(vals) / len(vals)
        var = sum((v - mean) ** 2 for v in vals) / len(vals)
        stats.append((mean, var * len(vals) / (len(vals) - 1)))
        for i in range(n):
            for y in range(h):
                for x in range(w):
                    if m[i, y, x]:
                        z = (float(f[i, k, y, x]) - mean) / (var + eps) ** 0.5
                        out[i, k, y, x] = z * float(weight[k].detach()) + float(bias[k].detach())
                    else:
                        out[i, k, y, x] = float(token[0, k, 0, 0])
    return out, stats


def test_densify_norm_is_a_batchnorm_over_visible_positions_only():
    g = torch.Generator().manual_seed(0)
    active = (torch.rand(3, 1, 4, 4, generator=g) > 0.4).double()
    m = mask_at(active, (8, 8))
    f = (torch.randn(3, 5, 8, 8, generator=g, dtype=torch.float64) * 3 + 2) * m  # sparse map
    token = torch.randn(1, 5, 1, 1, generator=g, dtype=torch.float64)
    bn = nn.BatchNorm2d(5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(5, generator=g, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.randn(5, generator=g, dtype=torch.float64))
    out = densify(f, active, token, bn)
    ref, stats = _slow_densify(f, active, token, bn.weight, bn.bias, bn.eps)
    assert torch.allclose(out, ref, atol=1e-10, rtol=0)
    # running statistics: the visible positions' mean and unbiased variance, momentum 0.1
    assert torch.allclose(bn.running_mean, torch.tensor([0.1 * s[0] for s in stats]).double())
    assert torch.allclose(bn.running_var, torch.tensor([0.9 + 0.1 * s[1] for s in stats]).double())
    # what lies at the masked positions does not enter the statistics
    noise = torch.randn(f.shape, generator=g, dtype=torch.float64) * (1 - m)
    assert torch.allclose(densify(f + noise, active, token, bn), out, atol=1e-12)
    # a plain (dense) BatchNorm counts the zeros and differs: the test tells the two apart
    dense = F.batch_norm(f, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    assert not torch.allclose(dense * m + token * (1 - m), ref, atol=1e-3)


def test_densify_without_norm_is_the_old_fill_in():
    g = torch.Generator().manual_seed(1)
    active = (torch.rand(2, 1, 2, 2, generator=g) > 0.5).float()
    f = torch.randn(2, 4, 4, 4, generator=g) * mask_at(active, (4, 4))
    token = torch.randn(1, 4, 1, 1, generator=g)
    m = mask_at(active, (4, 4))
    assert torch.equal(densify(f, active, token, nn.Identity()), f * m + token * (1 - m))


@pytest.mark.parametrize("decoder", ["light", "unet"])
def test_spark_normalises_each_scale_before_the_mask_tokens_by_default(decoder):
    assert SparKParams().densify_norm == "bn" and SparKParams().decoder == "unet"
    m = _spark(patch_size=4, decoder=decoder)
    norms = list(m.decoder.norms)
    assert len(norms) == len(m.decoder.mask_tokens) >= 2
    assert all(isinstance(b, nn.BatchNorm2d) for b in norms)
    assert [b.num_features for b in norms] == [t.shape[1] for t in m.decoder.mask_tokens]
    x = torch.rand(8, 1, 16, 16)
    m(list([x]), methods.Batch(x, torch.arange(8)))
    assert all(int(b.num_batches_tracked) == 1 for b in norms)  # the norms ran in the step


# -- the UNet decoder ---------------------------------------------------------------------------


def _check_block(block, cin, cout):
    up, (c1, b1, act, c2, b2) = block.up, list(block.conv)
    assert isinstance(up, nn.ConvTranspose2d) and up.bias is not None
    assert (up.in_channels, up.out_channels) == (cin, cin)
    assert (up.kernel_size, up.stride, up.padding) == ((4, 4), (2, 2), (1, 1))
    assert isinstance(c1, nn.Conv2d) and (c1.in_channels, c1.out_channels) == (cin, cin)
    assert isinstance(c2, nn.Conv2d) and (c2.in_channels, c2.out_channels) == (cin, cout)
    for c in (c1, c2):
        assert (c.kernel_size, c.padding, c.bias) == ((3, 3), (1, 1), None)
    assert isinstance(b1, nn.BatchNorm2d) and b1.num_features == cin
    assert isinstance(act, nn.ReLU6)
    assert isinstance(b2, nn.BatchNorm2d) and b2.num_features == cout
    x = torch.randn(2, cin, 3, 5)
    assert block(x).shape == (2, cout, 6, 10)


@pytest.mark.parametrize(
    "backbone,size,channels,blocks",
    [("convnet_small", 16, 1, 3), ("convnet", 32, 3, 3), ("resnet18", 64, 3, 3)],
)
def test_unet_decoder_has_one_block_per_factor_2_of_the_stride_to_full_resolution(
    backbone, size, channels, blocks
):
    m = _spark(backbone, size, channels, decoder="unet", decoder_width=64)
    dec = m.decoder
    assert isinstance(dec, UNetDecoder) and 2 ** len(dec.blocks) == m.stride
    assert len(dec.blocks) == blocks
    widths = [64 // 2**i for i in range(blocks + 1)]  # the authors' halving from the start width
    assert dec.widths == widths
    for i, block in enumerate(dec.blocks):
        _check_block(block, widths[i], widths[i + 1])
    assert isinstance(dec.head, nn.Conv2d) and dec.head.kernel_size == (1, 1)
    assert (dec.head.in_channels, dec.head.out_channels) == (widths[-1], channels)
    # densify projections: 1x1 at the coarsest scale, 3x3 finer, to each block's width
    assert dec.proj[0].kernel_size == (1, 1)
    assert all(p.kernel_size == (3, 3) for p in list(dec.proj)[1:])
    assert [p.out_channels for p in dec.proj] == [widths[i] for i in dec.used]
    # the decoder itself predicts at the image's resolution (no interpolation after it)
    x = torch.rand(4, channels, size, size)
    active = (torch.rand(4, 1, size // m.stride, size // m.stride) > 0.5).float()
    with sparse_forward(m.encoder.backbone, active) as feats:
        m.encoder.backbone(x * mask_at(active, (size, size)))
    keys = sorted(feats, key=lambda k: k[0])
    pred = dec([feats[keys[i]] for i in m.take], active)
    assert pred.shape == (4, channels, size, size)


def test_unet_resnet_with_imagenet_stem_decodes_five_blocks_from_stride_32():
    m = _spark("resnet18", 64, 3, stem=False, decoder="unet", decoder_width=128)
    assert m.stride == 32 and len(m.decoder.blocks) == 5
    assert m.decoder.widths == [128, 64, 32, 16, 8, 4]


def test_unet_densify_projection_is_the_identity_when_the_coarsest_width_matches():
    chans, _ = feature_channels(build_backbone("convnet_small", 1, 16), 1, 64)
    m = _spark(decoder="unet", decoder_width=chans[0], patch_size=4)
    assert isinstance(m.decoder.proj[0], nn.Identity)
    assert isinstance(m.decoder.proj[1], nn.Conv2d)


def test_unet_decoder_needs_one_scale_list_entry_a_block():
    with pytest.raises(ValueError, match="encoder scales"):
        UNetDecoder([8, 4], 1, 3)
    with pytest.raises(ValueError, match="coarsest UNet block has no encoder map"):
        UNetDecoder([None, 8, 4], 1, 3)
    dec = UNetDecoder([8, None, 4], 1, 3, width=16)  # no map at the middle resolution
    assert dec.used == [0, 2] and len(dec.proj) == 2
    out = dec([torch.randn(2, 8, 2, 2), torch.randn(2, 4, 8, 8)], torch.ones(2, 1, 2, 2))
    assert out.shape == (2, 1, 16, 16)


# -- the old form, bit for bit ------------------------------------------------------------------


def _old_light_decoder(chans, out, width):
    """The decoder as it was before the options (selfsup's ``LightDecoder`` before issue 24), its
    parameters drawn in the same order, for comparison."""
    widths = [max(8, width // 2**i) for i in range(len(chans))]
    tokens = [torch.randn(1, c, 1, 1) * 0.02 for c in chans]
    proj = [
        nn.Conv2d(c, w, 1 if i == 0 else 3, padding=0 if i == 0 else 1)
        for i, (c, w) in enumerate(zip(chans, widths, strict=True))
    ]
    up = [
        nn.Sequential(
            nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[i + 1]),
            nn.ReLU(),
        )
        for i in range(len(widths) - 1)
    ]
    head = nn.Conv2d(widths[-1], out, 1)

    def forward(feats, active):
        x = None
        for i, f in enumerate(feats):
            m = mask_at(active, f.shape[-2:]).to(f.dtype)
            dense = proj[i](f * m + tokens[i] * (1 - m))
            x = dense if x is None else up[i - 1](F.interpolate(x, size=f.shape[-2:])) + dense
        return head(x)

    return forward


def test_light_decoder_without_norm_is_the_old_decoder_bit_for_bit():
    chans = [32, 16, 8]
    torch.manual_seed(3)
    old = _old_light_decoder(chans, 1, 64)
    torch.manual_seed(3)
    new = LightDecoder(chans, 1, 64, norm="none")
    assert not any("norms" in k for k in new.state_dict())  # old checkpoints load unchanged
    g = torch.Generator().manual_seed(0)
    active = (torch.rand(4, 1, 4, 4, generator=g) > 0.5).float()
    feats = [torch.randn(4, c, s, s, generator=g) for c, s in zip(chans, (2, 4, 8), strict=True)]
    assert torch.equal(new(feats, active), old(feats, active))


def test_the_old_options_reproduce_the_old_method_step():
    """Same seed, same data: ``decoder=light, densify_norm=none`` gives the loss and gradients the
    method gave before the options (its decoder replaced by the old one drawn in the same order)."""
    m = _spark(patch_size=4, decoder="light", densify_norm="none", seed=5)
    chans = [t.shape[1] for t in m.decoder.mask_tokens]
    torch.manual_seed(5)
    Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])  # the encoder's draws
    old = _old_light_decoder(chans, 1, 64)
    x = torch.rand(8, 1, 16, 16)
    active = (torch.rand(8, 1, 4, 4) > 0.5).float()
    bb = m.encoder.backbone
    outs = []
    for dec in (m.decoder, old):
        with sparse_forward(bb, active) as feats:
            bb(x * mask_at(active, (16, 16)))
        keys = sorted(feats, key=lambda k: k[0])
        outs.append(dec([feats[k] for k in keys], active))
    assert torch.equal(outs[0], outs[1])


# -- every option trains -------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["light", "unet"])
@pytest.mark.parametrize("norm", ["none", "bn"])
def test_spark_trains_with_each_option_without_nan(decoder, norm):
    from selfsup.views import PRESETS, ImageViews, seeded

    m = _spark(patch_size=4, decoder=decoder, densify_norm=norm, decoder_width=16)
    x = torch.from_numpy((np.random.default_rng(0).random((16, 1, 8, 8)) * 255).astype("uint8"))
    with seeded(0):
        views = ImageViews(PRESETS["digits"], 1, 2)(x)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for s in range(12):
        torch.manual_seed(s % 2)  # two fixed masks alternate, so the objective is fixed
        loss, logs = m(views, methods.Batch(x, torch.arange(16)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        assert all(np.isfinite(v) for v in logs.values())
    assert all(np.isfinite(losses)), losses
    assert np.mean(losses[-3:]) < losses[0], losses


# -- resuming a checkpoint written before the authors' decoder became the default -----------------


def test_resume_hint_names_the_options_an_old_checkpoint_was_trained_with():
    old = _spark(decoder="light", densify_norm="none").state_dict()
    hint = _spark().resume_hint(old)
    assert hint is not None and "decoder: light, densify_norm: none" in hint and "\n" not in hint
    assert _spark(decoder="light", densify_norm="none").resume_hint(old) is None
    assert _spark().resume_hint(_spark().state_dict()) is None
    only_norm = _spark(decoder="unet", densify_norm="none").state_dict()
    assert "params: {densify_norm: none}" in (_spark().resume_hint(only_norm) or "")


@pytest.mark.slow
def test_an_old_spark_run_resumes_after_its_options_are_named(tmp_path):
    """A run whose config.yaml names no decoder options (as every run before them) but whose
    checkpoint has the old decoder: the resume error says which options to name; named, it
    resumes."""
    import yaml

    import selfsup
    from selfsup.errors import CheckpointError

    out = tmp_path / "r"
    over = ["eval.report=false", "eval.baselines=false", "eval.diagnostics=false"]
    kw = dict(method="spark", data="digits", epochs=1, out=str(out))
    selfsup.train(**kw, overrides=[*over, "params.decoder=light", "params.densify_norm=none"])
    cfg_path = out / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["params"] = {}  # what a run written before the options has
    cfg_path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError) as err:
        selfsup.train(resume=str(out), epochs=2, allow_changes=True)
    assert "params: {decoder: light, densify_norm: none}" in str(err.value)
    cfg["params"] = {"decoder": "light", "densify_norm": "none"}
    cfg_path.write_text(yaml.safe_dump(cfg))
    run = selfsup.train(resume=str(out), epochs=2, allow_changes=True)
    assert run.summary["epochs"] == 2
