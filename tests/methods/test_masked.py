"""The masked branch: patch bookkeeping, the MAE loss against a slow loop, the ViT's masked forward,
SparK's sparse CNN pass, HaLP's synthetic positives; MAE, SparK, CMAE and HaLP train, lower their
loss and resume bit-identically."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import selfsup
from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.errors import ConfigError
from selfsup.losses.halp import halp_loss, halp_positives, max_hardness, slerp, spherical_kmeans
from selfsup.losses.masked import masked_pixel_loss, masked_token_agreement, normalize_patches
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.models.sparse import sparse_forward
from selfsup.models.vit import patchify, random_masking, sincos_2d, unpatchify
from selfsup.train import checkpoint as ckpt

# -- patch bookkeeping --------------------------------------------------------------------------


@pytest.mark.parametrize("c,h,p", [(3, 32, 4), (1, 16, 2), (3, 8, 8)])
def test_patchify_round_trips_and_orders_patches_row_major(c, h, p):
    x = torch.randn(2, c, h, h)
    t = patchify(x, p)
    assert t.shape == (2, (h // p) ** 2, p * p * c)
    assert torch.equal(unpatchify(t, p, c), x)
    g = h // p
    for idx in sorted(
        {0, min(g + 1, g * g - 1), g * g - 1}
    ):  # patch (row, col) = x[..., row*p:, col*p:]
        r, q = divmod(idx, g)
        ref = x[:, :, r * p : (r + 1) * p, q * p : (q + 1) * p].permute(0, 2, 3, 1).reshape(2, -1)
        assert torch.equal(t[:, idx], ref)


def test_patch_size_that_does_not_divide_is_a_config_error():
    with pytest.raises(ConfigError, match="does not divide"):
        patchify(torch.zeros(1, 3, 32, 32), 5)


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.1, 0.9])
def test_random_masking_keeps_the_stated_share_and_unmasking_round_trips(ratio):
    torch.manual_seed(0)
    n, length = 5, 64
    ids_keep, mask, ids_restore = random_masking(n, length, ratio)
    keep = int(length * (1 - ratio))
    assert ids_keep.shape == (n, keep)
    assert torch.equal(mask.sum(1), torch.full((n,), float(length - keep)))
    for i in range(n):  # the kept indices are exactly the unmasked positions
        assert set(ids_keep[i].tolist()) == set(torch.nonzero(mask[i] == 0).flatten().tolist())
    tokens = torch.arange(length).float().expand(n, -1)[..., None]  # token l carries value l
    visible = tokens.gather(1, ids_keep[..., None])
    # the MAE layout: [visible (in ids_keep order), masked (any order)] un-shuffled by ids_restore
    shuffled_order = ids_restore.argsort(1)
    assert torch.equal(shuffled_order[:, :keep], ids_keep)
    seq = torch.cat([visible, tokens.gather(1, shuffled_order[:, keep:, None])], 1)
    assert torch.equal(seq.gather(1, ids_restore[..., None]), tokens)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_mask_ratio_outside_the_open_interval_is_refused(ratio):
    with pytest.raises(ConfigError, match="mask ratio"):
        random_masking(2, 16, ratio)
    with pytest.raises(ConfigError, match="params.mask_ratio"):
        methods.validate_params("mae", {"mask_ratio": ratio})


def test_sincos_table_matches_the_formula():
    d, gh, gw = 16, 3, 5
    t = sincos_2d(d, gh, gw)
    for r in range(gh):
        for c in range(gw):
            for k in range(d // 4):
                w = 1 / 10000 ** (k / (d // 4))
                row = t[r * gw + c]
                assert math.isclose(row[k], math.sin(c * w), abs_tol=1e-6)
                assert math.isclose(row[d // 4 + k], math.cos(c * w), abs_tol=1e-6)
                assert math.isclose(row[d // 2 + k], math.sin(r * w), abs_tol=1e-6)
                assert math.isclose(row[3 * d // 4 + k], math.cos(r * w), abs_tol=1e-6)


# -- losses -------------------------------------------------------------------------------------


def _slow_masked_loss(pred, target, mask, norm_pix):
    total, count = 0.0, 0.0
    for i in range(pred.shape[0]):
        for j in range(pred.shape[1]):
            if mask[i, j] == 0:
                continue
            t = target[i, j]
            if norm_pix:
                m = sum(t.tolist()) / len(t)
                v = sum((a - m) ** 2 for a in t.tolist()) / (len(t) - 1)  # unbiased, as MAE
                t = (t - m) / math.sqrt(v + 1e-6)
            total += float(((pred[i, j] - t) ** 2).mean())
            count += 1
    return total / count


@pytest.mark.parametrize("norm_pix", [True, False])
def test_masked_pixel_loss_equals_a_slow_loop(norm_pix):
    g = torch.Generator().manual_seed(0)
    pred, target = (
        torch.randn(3, 7, 12, generator=g, dtype=torch.float64),
        torch.rand(3, 7, 12, generator=g, dtype=torch.float64),
    )
    mask = (torch.rand(3, 7, generator=g) < 0.6).double()
    mask[0, 0] = 1
    got = masked_pixel_loss(pred, target, mask, norm_pix)
    assert abs(float(got) - _slow_masked_loss(pred, target, mask, norm_pix)) < 1e-9


def test_masked_pixel_loss_special_cases_and_gradient():
    t = torch.rand(2, 4, 12, dtype=torch.float64)
    mask = torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 1]], dtype=torch.float64)
    assert (
        float(masked_pixel_loss(normalize_patches(t), t, mask, True)) < 1e-20
    )  # perfect prediction
    assert float(masked_pixel_loss(t, t, mask, False)) == 0
    pred = t.clone()
    pred[0, 1] += 5  # errors on visible patches do not count
    assert float(masked_pixel_loss(pred, t, mask, False)) == 0
    p = torch.randn(2, 4, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: masked_pixel_loss(a, t, mask, True), (p,))


def test_token_agreement_counts_only_positions_masked_in_both():
    z1, z2 = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    both = torch.zeros(2, 5)
    both[0, 2] = both[1, 4] = 1
    cos = [F.cosine_similarity(z1[0, 2], z2[0, 2], 0), F.cosine_similarity(z1[1, 4], z2[1, 4], 0)]
    assert torch.isclose(masked_token_agreement(z1, z2, both), 1 - (cos[0] + cos[1]) / 2, atol=1e-6)


# -- the ViT and the sparse CNN -----------------------------------------------------------------


def _vit_encoder(c=1, size=16, name="vit_tiny_p2", width=0.25):
    torch.manual_seed(0)
    return Encoder(build_backbone(name, c, size, width=width), [0.5] * c, [0.25] * c)


def test_vit_encoder_never_sees_masked_patches():
    vit = _vit_encoder().backbone.eval()
    x = torch.rand(3, 1, 16, 16)
    ids_keep, mask, _ = random_masking(3, 64, 0.75)
    z = vit.forward_visible(x, ids_keep)
    assert z.shape == (3, 1 + 16, vit.dim)
    changed = unpatchify(
        patchify(x, 2) + 10 * mask[..., None], 2, 1
    )  # alter only the masked patches
    assert torch.allclose(vit.forward_visible(changed, ids_keep), z, atol=1e-6)
    assert vit(x).shape == (3, vit.out_dim)


def test_vit_patch_that_does_not_divide_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match="does not divide"):
        _vit_encoder(name="vit_tiny")(torch.rand(1, 1, 18, 18))


@pytest.mark.parametrize("backbone", ["convnet_small", "resnet18"])
def test_sparse_forward_keeps_masked_cells_empty_and_restores_the_network(backbone):
    torch.manual_seed(0)
    net = build_backbone(backbone, 3, 32, width=0.25)
    net.train()
    active = (torch.rand(4, 1, 4, 4) < 0.5).float()
    active[:, :, 0, 0] = 1
    x = torch.rand(4, 3, 32, 32)
    xm = x * F.interpolate(active, size=(32, 32))
    noise = torch.rand(4, 3, 32, 32) * (1 - F.interpolate(active, size=(32, 32)))
    with torch.no_grad(), sparse_forward(net, active) as feats:
        net(xm)
    maps = dict(feats)
    for size, f in maps.items():
        m = F.interpolate(active, size=size)
        assert float((f * (1 - m)).abs().max()) == 0, size  # masked positions empty at every scale
    net.eval()
    with torch.no_grad(), sparse_forward(net, active) as feats2:
        net(xm)
    a = {k: v.clone() for k, v in feats2.items()}
    with torch.no_grad(), sparse_forward(net, active) as feats3:
        net(xm + noise * 0)  # the same input gives the same maps (the masked input is zero there)
    assert all(torch.equal(a[k], feats3[k]) for k in a)
    assert not any("forward" in vars(m) for m in net.modules())  # instance overrides removed
    assert not net._forward_hooks and all(not m._forward_hooks for m in net.modules())


def test_sparse_batchnorm_uses_visible_positions_only():
    bn = torch.nn.BatchNorm2d(2, momentum=1.0)  # running stats = the last batch's
    net = torch.nn.Sequential(bn)
    x = torch.randn(3, 2, 4, 4)
    active = torch.zeros(3, 1, 2, 2)
    active[0, 0, 0, 0] = active[1, 0, 1, 1] = active[2, 0, 0, 1] = 1
    m = F.interpolate(active, size=(4, 4)).bool().squeeze(1)
    vis = x.permute(0, 2, 3, 1)[m]
    with torch.no_grad(), sparse_forward(net, active):
        out = net(x)
    assert torch.allclose(bn.running_mean, vis.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, vis.var(0), atol=1e-5)
    expect = (vis - vis.mean(0)) / (vis.var(0, unbiased=False) + bn.eps).sqrt()
    assert torch.allclose(out.permute(0, 2, 3, 1)[m], expect, atol=1e-5)


# -- HaLP ---------------------------------------------------------------------------------------


def _protos(d=8, m=6, b=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=1),
        F.normalize(torch.randn(m, d, generator=g, dtype=torch.float64), dim=1),
    )


@pytest.mark.parametrize("hardness", [0.0, 0.3, 0.8, 1.0])
def test_halp_positives_lie_at_the_stated_hardness(hardness):
    k, protos = _protos()
    out = halp_positives(
        k,
        protos,
        50,
        hardness,
        n_closest=3,
        skip_closest=1,
        generator=torch.Generator().manual_seed(1),
    )
    t, t_max = out["t"], out["t_max"]
    assert bool((t <= t_max + 1e-12).all()) and bool((t >= (1 - hardness) * t_max - 1e-12).all())
    if hardness == 0:
        assert torch.allclose(t, t_max)
    assert torch.allclose(out["positives"].norm(dim=-1), torch.ones(10, 50, dtype=torch.float64))
    sim = k @ protos.t()
    order = sim.argsort(1, descending=True)
    assert all(int(tg) in order[i, 1:4].tolist() for i in range(10) for tg in out["target"][i])
    p0 = protos[order[:, 0]]
    # t_max: the point is exactly as similar to the target prototype as to the anchor's own
    kk = k.unsqueeze(1).expand(-1, 50, -1)
    p = protos[out["target"]]
    g_max = slerp(kk, p, t_max)
    assert torch.allclose((g_max * p).sum(-1), (g_max * p0.unsqueeze(1)).sum(-1), atol=1e-6)
    # below t_max it stays nearer the anchor's prototype than the target
    g = out["positives"]
    assert bool(((g * p0.unsqueeze(1)).sum(-1) >= (g * p).sum(-1) - 1e-6).all())
    good = (g @ protos.t()).argmax(-1) == order[:, :1]
    assert torch.equal(good, out["good"])


def test_halp_closed_form_t_max_equals_a_bisection():
    k, protos = _protos(b=4)
    p0, p = protos[0].expand(4, -1), protos[1].expand(4, -1)
    tm = max_hardness(k, p, p0)
    ts = torch.linspace(-0.99, 0.99, 4001, dtype=torch.float64)
    for i in range(4):  # the root of g(t).(p0 - p) on the arc nearest the closed form
        vals = (
            (slerp(k[i].expand(len(ts), -1), p[i].expand(len(ts), -1), ts) * (p0[i] - p[i]))
            .sum(-1)
            .tolist()
        )
        roots = [float(ts[j]) for j in range(len(ts) - 1) if vals[j] * vals[j + 1] <= 0]
        if roots:
            nearest = min(roots, key=lambda r: abs(r - float(tm[i])))
            assert abs(nearest - float(tm[i])) < 1e-3


def test_halp_loss_equals_a_slow_loop_and_kmeans_gives_unit_centres():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 6, generator=g, dtype=torch.float64), dim=1)
    pos = F.normalize(torch.randn(4, 3, 6, generator=g, dtype=torch.float64), dim=-1)
    good = torch.rand(4, 3, generator=g) < 0.5
    good[0, 0] = True
    slow = [float(q[i] @ pos[i, j]) / 0.2 for i in range(4) for j in range(3) if good[i, j]]
    assert abs(float(halp_loss(q, pos, good, 0.2)) + sum(slow) / len(slow)) < 1e-9
    x = torch.cat(
        [
            F.normalize(torch.randn(20, 5, generator=g) + 4 * torch.eye(5)[c], dim=1)
            for c in range(3)
        ]
    )
    c = spherical_kmeans(x, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(c.norm(dim=1), torch.ones(3), atol=1e-6)
    assert len(set((x @ c.t()).argmax(1).tolist())) == 3


# -- methods ------------------------------------------------------------------------------------

SMALL = {
    "mae": {"decoder_dim": 16, "decoder_depth": 1},
    "cmae": {"decoder_dim": 16, "decoder_depth": 1},
    "spark": {"decoder_width": 16, "patch_size": 4},
    "halp": {
        "queue_size": 32,
        "update_every": 2,
        "n_prototypes": 4,
        "proto_keys": 32,
        "n_positives": 4,
    },
}
BACKBONE = {
    "mae": "vit_tiny_p2",
    "cmae": "vit_tiny_p2",
    "spark": "convnet_small",
    "halp": "convnet_small",
}


def _method(name):
    torch.manual_seed(0)
    enc = Encoder(
        build_backbone(BACKBONE[name], 1, 16, width=0.25 if "vit" in BACKBONE[name] else 1.0),
        [0.5],
        [0.25],
    )
    ctx = methods.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=16, extra={"batch_size": 16}
    )
    return methods.build(name, enc, SMALL[name], ctx)


@pytest.mark.parametrize("name", ["mae", "spark", "cmae", "halp"])
def test_masked_methods_lower_their_loss_without_nan(name):
    from selfsup.views import PRESETS, ImageViews, seeded

    m = _method(name)
    assert methods.REGISTRY[name].paper
    x = torch.from_numpy((np.random.default_rng(0).random((16, 1, 8, 8)) * 255).astype("uint8"))
    with seeded(0):
        views = ImageViews(PRESETS["digits"], 1, 2)(x)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for s in range(10):
        torch.manual_seed(s % 2)  # two fixed masks alternate, so the objective is fixed
        loss, logs = m(views, methods.Batch(x, torch.arange(16)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.after_step(s, 10)
        losses.append(float(loss.detach()))
        assert all(np.isfinite(v) for v in logs.values())
    assert all(np.isfinite(losses)), losses
    assert np.mean(losses[-3:]) < losses[0], losses
    copy.deepcopy(
        m
    )  # no graph tensors are kept on the modules (fine-tuning deep-copies the encoder)
    if name == "halp":
        assert bool(m.has_prototypes) and "halp_loss" in logs


def test_mae_refuses_a_cnn_and_spark_refuses_a_vit():
    ctx = methods.Context(model=ModelConfig(proj_hidden=32, proj_dim=16))
    cnn = Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])
    with pytest.raises(ConfigError, match="needs a backbone with patch tokens"):
        methods.build("mae", cnn, {}, ctx)
    with pytest.raises(ConfigError, match="needs a backbone with convolutional feature maps"):
        methods.build("spark", _vit_encoder(), {}, ctx)


@pytest.mark.parametrize(
    ("method", "backbone"), [("mae", "vit_tiny_p2"), ("cmae", "vit_tiny_p2"), ("spark", "convnet")]
)
def test_the_method_picks_its_encoder_when_backbone_is_auto(method, backbone):
    """`selfsup train --method mae` on the default digits: no --backbone needed."""
    from selfsup.parts import assemble, load_data
    from selfsup.resolve import resolve_config

    cfg = resolve_config(method=method, data="digits", batch_size=16)
    parts = assemble(cfg, load_data(cfg)[0].train, torch.device("cpu"))
    assert parts.meta["backbone"] == backbone


class Kill(Exception):
    pass


def _kill_at_2(epoch, method):
    if epoch == 2:
        raise Kill


@pytest.mark.parametrize("name", ["mae", "spark", "cmae", "halp"])
def test_kill_and_resume_is_bit_identical(name, tiny_config, tmp_path):
    def cfg(out):
        return tiny_config(
            method=name,
            loss=SMALL[name],
            out=str(out),
            model={"backbone": BACKBONE[name], "width": 0.25 if "vit" in BACKBONE[name] else 1.0},
            eval={"protocols": ["knn"], "diagnostics": False, "report": False},
        )

    straight = selfsup.train(cfg(tmp_path / "a"))
    with pytest.raises(Kill):
        selfsup.train(cfg(tmp_path / "b"), on_epoch_end=_kill_at_2)
    resumed = selfsup.train(resume=tmp_path / "b")
    ea, eb = (
        load_file(straight.dir / "encoder.safetensors"),
        load_file(resumed.dir / "encoder.safetensors"),
    )
    assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)
    sa, sb = ckpt.load(ckpt.latest(straight.dir)), ckpt.load(ckpt.latest(resumed.dir))
    assert sa["progress"]["step"] == sb["progress"]["step"] == 6
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k


# -- bad input at the command line: one line, exit 2, nothing written ---------------------------

TINY = [
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--set",
    "train.progress=none",
    "--set",
    "eval.baselines=false",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--method", "mae", "--backbone", "convnet_small"], "needs a backbone with patch tokens"),
        (
            ["--method", "mae", "--backbone", "vit_tiny_p2", "--set", "params.mask_ratio=1.5"],
            "params.mask_ratio",
        ),
        (
            ["--method", "cmae", "--backbone", "vit_tiny_p2", "--set", "params.mask_ratio=0"],
            "params.mask_ratio",
        ),
        (
            ["--method", "mae", "--backbone", "vit_tiny", "--set", "views.size=18"],
            "does not divide",
        ),
        (
            ["--method", "spark", "--backbone", "convnet_small", "--set", "params.patch_size=3"],
            "does not divide",
        ),
        (["--method", "spark", "--backbone", "vit_tiny_p2"], "convolutional feature maps"),
    ],
)
def test_bad_masked_input_is_one_error_line_and_writes_nothing(
    args, needle, capsys, tmp_path, tiny_npz
):
    from selfsup.cli import main

    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_npz), "--out", str(out), *args, *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()
