"""MoCo v2/v3, MoCHi, BYOL, SimSiam, DirectPred/DirectCopy, NNCLR, Barlow Twins, VICReg, G-SimCLR:
training lowers the loss; method state (queues, targets, correlations, assignments) lives in the
state dict; DirectPred's predictor; MoCHi's mixes stay out of the queue; G-SimCLR's batches."""

import numpy as np
import pytest
import torch

from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.errors import ConfigError
from selfsup.methods.directpred import directcopy_weight
from selfsup.methods.gsimclr import cluster_batch_order
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.views import PRESETS, ImageViews, MultiCropViews, seeded

METHODS = [
    "simclr",
    "moco",
    "mochi",
    "mocov3",
    "byol",
    "simsiam",
    "directpred",
    "directcopy",
    "nnclr",
    "barlow",
    "vicreg",
    "gsimclr",
]
SMALL = {"mochi": {"n_hard": 64, "n_mix": 32, "n_mix_query": 8}}


def build(name, loss=None, n=16):
    torch.manual_seed(0)
    enc = Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])
    ctx = methods.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=n, extra={"batch_size": 16}
    )
    return methods.build(name, enc, loss if loss is not None else SMALL.get(name, {}), ctx)


def fixed_views(n=16, multicrop=False):
    x = torch.from_numpy((np.random.default_rng(0).random((n, 1, 8, 8)) * 255).astype("uint8"))
    with seeded(0):
        maker = (
            MultiCropViews(PRESETS["digits"], 1, 2, 2, local_size=8)
            if multicrop
            else ImageViews(PRESETS["digits"], 1, 2)
        )
        return x, maker(x)


def run_steps(m, views, x, steps=8, lr=1e-3):
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    losses = []
    for s in range(steps):
        loss, logs = m(views, methods.Batch(x, torch.arange(len(x))))
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.after_step(s, steps)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", METHODS)
def test_a_few_steps_lower_the_loss_without_nan(name):
    m = build(name)
    assert methods.REGISTRY[name].paper
    x, views = fixed_views()
    losses = run_steps(m, views, x)
    assert all(np.isfinite(losses)), losses
    assert np.mean(losses[-3:]) < losses[0], losses


@pytest.mark.parametrize("name", ["simclr", "byol", "simsiam", "barlow", "vicreg"])
def test_multicrop_views_of_two_sizes(name):
    x, views = fixed_views(multicrop=True)
    assert [v.shape[-1] for v in views] == [16, 16, 8, 8]
    losses = run_steps(build(name), views, x, steps=2)
    assert all(np.isfinite(losses))


def test_momentum_state_is_in_the_state_dict():
    keys = {
        n: set(build(n).state_dict())
        for n in ["moco", "mochi", "mocov3", "byol", "nnclr", "directpred", "gsimclr"]
    }
    assert {"queue.queue", "queue.ptr"} <= keys["moco"] and "steps_done" in keys["mochi"]
    assert any(k.startswith("key_encoder.") for k in keys["mocov3"])
    assert any(k.startswith("target_projector.") for k in keys["byol"])
    assert {"support.queue", "support.ptr"} <= keys["nnclr"]
    assert {"corr", "updates", "predictor.weight"} <= keys["directpred"]
    assert "assign" in keys["gsimclr"]


def test_byol_target_follows_the_cosine_momentum_schedule():
    m = build("byol", {"momentum": 0.9})
    x, views = fixed_views()
    before = [p.clone() for p in m.target_projector.parameters()]
    run_steps(m, views, x, steps=1)
    tau = 1 - 0.1 * (np.cos(0) + 1) / 2  # step 0 of 1
    for b, t, o in zip(
        before, m.target_projector.parameters(), m.projector.parameters(), strict=True
    ):
        assert torch.allclose(t, tau * b + (1 - tau) * o, atol=1e-6)
    assert not any(p.requires_grad for p in m.target_encoder.parameters())


@pytest.mark.parametrize("freq", [1, 3])
def test_directpred_predictor_is_u_diag_p_ut_of_the_running_correlation(freq):
    rho, eps = 0.3, 0.01
    m = build("directpred", {"rho": rho, "eps": eps, "freq": freq})
    assert not m.predictor.weight.requires_grad
    x, views = fixed_views()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    corr = torch.zeros(16, 16, dtype=torch.float64)
    for s in range(5):
        loss, _ = m(views, methods.Batch(x, torch.arange(16)))
        f = torch.cat(m._online_z).double()
        opt.zero_grad()
        loss.backward()
        opt.step()
        w_before = m.predictor.weight.clone()
        m.after_step(s, 5)
        corr = rho * corr + (1 - rho) * f.t() @ f / len(f)
        assert torch.allclose(m.corr.double(), corr, atol=1e-5)
        if s % freq == 0:
            sv, u = torch.linalg.eigh(m.corr.double())
            p = (sv.clamp_min(0) / sv.max()).sqrt() + eps
            assert torch.allclose(m.predictor.weight.double(), u @ torch.diag(p) @ u.t(), atol=1e-5)
        else:
            assert torch.equal(m.predictor.weight, w_before)


def test_directcopy_predictor_is_normalised_correlation_plus_eps():
    m = build("directcopy", {"eps": 0.05})
    x, views = fixed_views()
    run_steps(m, views, x, steps=2)
    c = m.corr.double()
    assert torch.allclose(
        m.predictor.weight.double(), directcopy_weight(c, 0.05).double(), atol=1e-6
    )
    assert torch.allclose(
        m.predictor.weight.double(),
        c / torch.linalg.matrix_norm(c, 2) + 0.05 * torch.eye(16, dtype=torch.float64),
        atol=1e-5,
    )


def test_mochi_mixes_are_detached_and_never_enqueued(monkeypatch):
    import selfsup.methods.moco as moco

    captured = []

    def spy(*args, **kw):
        out = moco.mochi_negatives.__wrapped__(*args, **kw)
        captured.append(out)
        return out

    spy.__wrapped__ = moco.mochi_negatives
    monkeypatch.setattr(moco, "mochi_negatives", spy)
    m = build(
        "mochi", {"queue_size": 64, "n_hard": 16, "n_mix": 8, "n_mix_query": 4, "warmup_steps": 1}
    )
    x, views = fixed_views()
    run_steps(m, views, x, steps=1)
    assert not captured  # warm-up: no mixing at the first step
    ptr = int(m.queue.ptr)
    loss, logs = m(views, methods.Batch(x, torch.arange(16)))
    assert logs["mixing"] == 1.0 and len(captured) == 1
    mixes = captured[0]
    assert mixes.shape == (16, 12, 16) and not mixes.requires_grad
    assert torch.allclose(mixes.norm(dim=2), torch.ones(16, 12))
    keys, before = m._keys.clone(), m.queue.queue.clone()
    loss.backward()
    m.after_step(1, 2)
    expected = before.clone()
    expected[ptr : ptr + 16] = keys
    assert torch.equal(m.queue.queue, expected)  # the keys, and nothing else, were enqueued
    assert float(torch.cdist(mixes.reshape(-1, 16), keys).min()) > 1e-4  # no mix among them


def test_moco_split_bn_shuffle_restores_the_key_order():
    m = build("moco", {"bn_splits": 4})
    m.key_encoder.eval()
    m.key_head.eval()  # with running statistics the shuffle must not change any key
    x, views = fixed_views()
    k = m.key(views[1])
    direct = torch.nn.functional.normalize(m.key_head(m.key_encoder(views[1])), dim=1)
    assert torch.allclose(k, direct, atol=1e-5)


def test_gsimclr_batches_hold_one_sample_per_cluster_while_enough_clusters_remain():
    rng = np.random.default_rng(0)
    assign = torch.from_numpy(rng.choice(12, size=150, p=np.r_[[0.3], np.full(11, 0.7 / 11)]))
    bs = 8
    order = cluster_batch_order(assign, bs, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(150))
    left = torch.bincount(assign, minlength=12)
    checked = 0
    for start in range(0, 150 - bs + 1, bs):
        batch = order[start : start + bs]
        if int((left > 0).sum()) >= bs:
            assert len(set(assign[batch].tolist())) == bs
            checked += 1
        left -= torch.bincount(assign[batch], minlength=12)
    assert checked >= 8


def test_gsimclr_prepare_clusters_with_k_equal_to_the_batch_size():
    x = torch.from_numpy((np.random.default_rng(0).random((40, 1, 8, 8)) * 255).astype("uint8"))
    m = build("gsimclr", {"ae_epochs": 1}, n=40)
    assert m.batch_order(40, 16, torch.Generator()) is None  # before prepare: a plain permutation
    m.prepare(x, None)
    assert m.assign.shape == (40,) and int(m.assign.max()) == 15 and int(m.assign.min()) == 0
    order = m.batch_order(40, 16, torch.Generator().manual_seed(0))
    assert len(set(m.assign[order[:16]].tolist())) == 16


@pytest.mark.parametrize("name", ["moco", "mochi", "mocov3", "nnclr", "halp", "isogclr"])
def test_two_view_methods_refuse_multicrop_and_extra_views_in_one_line(name):
    """``Needs(n_views=2)``: one check, in ``methods.build``, with one message."""
    enc = Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])
    for n_views, local in ((2, 2), (3, 0)):
        ctx = methods.Context(
            model=ModelConfig(proj_hidden=32, proj_dim=16),
            n_samples=16,
            n_views=n_views,
            extra={"batch_size": 16, "local_crops": local},
        )
        with pytest.raises(ConfigError, match=f"'{name}' uses exactly 2 views and no multi-crop"):
            methods.build(name, enc, SMALL.get(name, {}), ctx)


def test_mocov3_uses_the_resnet_recipe_for_convnets_and_the_vit_recipe_for_vits():
    """facebookresearch/moco-v3 moco/builder.py: MoCo_ResNet (2-layer projector, predictor without
    a final BatchNorm, T = 1.0 by default) and MoCo_ViT (3-layer projector, final BN, T = 0.2)."""
    m = build("mocov3")
    linears = [x for x in m.head if isinstance(x, torch.nn.Linear)]
    assert m.recipe == "resnet" and len(linears) == 2 and m.temperature == 1.0
    assert isinstance(m.head[-1], torch.nn.BatchNorm1d) and not m.head[-1].affine
    assert isinstance(m.predictor[-1], torch.nn.Linear)
    enc = Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])
    ctx = methods.Context(
        model=ModelConfig(backbone="vit_small", proj_hidden=32, proj_dim=16), n_samples=16
    )
    v = methods.build("mocov3", enc, {}, ctx)
    assert v.recipe == "vit" and v.temperature == 0.2
    assert len([x for x in v.head if isinstance(x, torch.nn.Linear)]) == 3
    assert isinstance(v.predictor[-1], torch.nn.BatchNorm1d)
    assert build("mocov3", {"temperature": 0.3}).temperature == 0.3


def test_directpred_target_momentum_is_constant():
    """facebookresearch/luckmatters ssl/real-dataset: trainer.m = 0.996, no schedule."""
    m = build("directpred")
    assert m.params.momentum == 0.996
    assert m.momentum_at(0, 100) == m.momentum_at(99, 100) == 0.996
    x, views = fixed_views()
    before = [p.clone() for p in m.target_projector.parameters()]
    run_steps(m, views, x, steps=1)
    for b, t, o in zip(
        before, m.target_projector.parameters(), m.projector.parameters(), strict=True
    ):
        assert torch.allclose(t, 0.996 * b + 0.004 * o, atol=1e-6)


def test_gsimclr_defaults_and_fixed_order():
    m = build("gsimclr", {"ae_epochs": 1}, n=40)
    assert m.params.temperature == 0.1
    x = torch.from_numpy((np.random.default_rng(0).random((40, 1, 8, 8)) * 255).astype("uint8"))
    m.prepare(x, None)
    a = m.batch_order(40, 16, torch.Generator().manual_seed(0))
    b = m.batch_order(40, 16, torch.Generator().manual_seed(5))  # another epoch: the same order
    assert torch.equal(a, b)


def test_the_modality_chooses_gsimclrs_autoencoder():
    """Images give a ConvNet (on images resized to ``ae_size``), other data a flat MLP; the method
    itself never asks what its input is."""
    from selfsup.modalities import get as modality
    from selfsup.models.autoencoder import flat_reconstruction

    img = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    rec = modality("image").reconstruction(img, 32, 256, 16)
    assert any(isinstance(x, torch.nn.Conv2d) for x in rec.encoder)
    assert rec.inputs.shape == (2, 1, 16, 16)
    assert rec.decoder(rec.encoder(rec.inputs)).shape == (2, 1, 16, 16)
    series = torch.full((2, 3, 50), float("nan"))
    rec = modality("timeseries").reconstruction(series, 8, 16, 16)
    assert not any(isinstance(x, torch.nn.Conv2d) for x in rec.encoder)
    assert rec.inputs.isfinite().all() and rec.decoder(rec.encoder(rec.inputs)).shape == (2, 3, 50)
    m = build("gsimclr", {"ae_epochs": 1, "clusters": 4}, n=40)
    x = torch.from_numpy((np.random.default_rng(0).random((40, 1, 8, 8)) * 255).astype("uint8"))
    calls = []

    def spy(x, dim, hidden, max_size):
        calls.append((dim, hidden, max_size))
        return flat_reconstruction(x, dim, hidden)

    m.ctx.reconstruction = spy
    m.prepare(x, None)
    assert calls == [(m.params.ae_dim, m.params.ae_hidden, m.params.ae_size)]


def test_byol_with_a_trained_linear_predictor():
    m = build("byol", {"predictor": "linear"})
    assert isinstance(m.predictor, torch.nn.Linear) and m.predictor.weight.requires_grad
    x, views = fixed_views()
    losses = run_steps(m, views, x, steps=6)
    assert all(np.isfinite(losses)) and np.mean(losses[-2:]) < losses[0]
