"""The InfoNCE family against slow reference loops (float64, 1e-6), its special cases and
gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigError
from selfsup.losses import clip_loss, dcl, dclw, debiased, hcl, nt_xent, supcon, supcon_mix

D = torch.float64


def _pair(b=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=D), torch.randn(b, d, generator=g, dtype=D)


def _all(z1, z2):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    return z, b, (lambda i: (i + b) % (2 * b))


def ref_nt_xent(z1, z2, t):
    z, b, pos = _all(z1, z2)
    out = []
    for i in range(2 * b):
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * b) if k != i)
        out.append(-math.log(math.exp(float(z[i] @ z[pos(i)]) / t) / den))
    return sum(out) / len(out)


def ref_dcl(z1, z2, t, sigma=None):
    z, b, pos = _all(z1, z2)
    sp = [float(z[i] @ z[i + b]) for i in range(b)]
    mean = sum(math.exp(s / sigma) for s in sp) / b if sigma else None
    out = []
    for i in range(2 * b):
        s_pos = float(z[i] @ z[pos(i)])
        w = 1.0 if sigma is None else 2 - math.exp(s_pos / sigma) / mean
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * b) if k not in (i, pos(i)))
        out.append(-w * s_pos / t + math.log(den))
    return sum(out) / len(out)


def ref_hcl(z1, z2, t, tau_plus, beta):
    # the authors' estimator (joshr17/HCL, image/main.py, criterion with estimator='hard'):
    # importance weights exp(beta s / t), Ng = (-tau_plus N pos + reweighted negatives) / (1 -
    # tau_plus), clamped below at N exp(-1 / t)
    z, b, pos = _all(z1, z2)
    n = 2 * b - 2
    out = []
    for i in range(2 * b):
        p = math.exp(float(z[i] @ z[pos(i)]) / t)
        s = [float(z[i] @ z[k]) for k in range(2 * b) if k not in (i, pos(i))]
        mean_imp = sum(math.exp(beta * sj / t) for sj in s) / n
        rw = sum(math.exp(beta * sj / t) / mean_imp * math.exp(sj / t) for sj in s)
        ng = max((-tau_plus * n * p + rw) / (1 - tau_plus), n * math.exp(-1 / t))
        out.append(-math.log(p / (p + ng)))
    return sum(out) / len(out)


def ref_supcon(z, labels, t, base=0.07):
    # HobbitLong/SupContrast losses.py: scaled by t / base, mean over every anchor (no positive: 0)
    b, v, _ = z.shape
    z = F.normalize(z, dim=2)
    lab = [int(x) if int(x) >= 0 else -1000 - i for i, x in enumerate(labels)]
    emb = [(z[i, j], lab[i]) for j in range(v) for i in range(b)]
    out = []
    for a, (za, la) in enumerate(emb):
        den = sum(math.exp(float(za @ zc) / t) for c, (zc, _) in enumerate(emb) if c != a)
        terms = [
            math.log(math.exp(float(za @ zp) / t) / den)
            for p, (zp, lp) in enumerate(emb)
            if p != a and lp == la
        ]
        out.append(-sum(terms) / len(terms) if terms else 0.0)
    return (t / base) * sum(out) / len(out)


def ref_clip(a, b, scale):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    n = a.shape[0]
    la = lb = 0.0
    for i in range(n):
        la += -math.log(
            math.exp(scale * float(a[i] @ b[i]))
            / sum(math.exp(scale * float(a[i] @ b[j])) for j in range(n))
        )
        lb += -math.log(
            math.exp(scale * float(b[i] @ a[i]))
            / sum(math.exp(scale * float(b[i] @ a[j])) for j in range(n))
        )
    return (la + lb) / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_against_reference_loops(t):
    z1, z2 = _pair()
    assert float(nt_xent(z1, z2, t)) == pytest.approx(ref_nt_xent(z1, z2, t), abs=1e-6)
    assert float(dcl(z1, z2, t)) == pytest.approx(ref_dcl(z1, z2, t), abs=1e-6)
    assert float(dclw(z1, z2, t, 0.5)) == pytest.approx(ref_dcl(z1, z2, t, 0.5), abs=1e-6)
    for tp, beta in [(0.1, 1.0), (0.0, 0.5), (0.2, 0.0)]:
        assert float(hcl(z1, z2, t, tp, beta)) == pytest.approx(
            ref_hcl(z1, z2, t, tp, beta), abs=1e-6
        )
    z = torch.stack([z1, z2, z1 + 0.3 * z2], 1)
    labels = torch.tensor([0, 1, 0, -1, 2, 1])
    assert float(supcon(z, labels, t)) == pytest.approx(ref_supcon(z, labels, t), abs=1e-6)
    s = torch.tensor(math.log(1 / 0.07), dtype=D)
    assert float(clip_loss(z1, z2, s)) == pytest.approx(ref_clip(z1, z2, 1 / 0.07), abs=1e-6)


def test_special_cases():
    z1, z2 = _pair(7, 4, seed=1)
    t = 0.3
    # HCL with beta = 0 and tau_plus = 0: NT-Xent (positive in the denominator)
    assert float(hcl(z1, z2, t, 0.0, 0.0)) == pytest.approx(float(nt_xent(z1, z2, t)), abs=1e-9)
    assert float(debiased(z1, z2, t, 0.1)) == pytest.approx(ref_hcl(z1, z2, t, 0.1, 0.0), abs=1e-6)
    # DCLW with sigma -> infinity: DCL
    assert float(dclw(z1, z2, t, 1e9)) == pytest.approx(float(dcl(z1, z2, t)), abs=1e-7)
    # SupCon, all unlabelled, two views: NT-Xent; the mix interpolates
    unl = torch.full((7,), -1)
    z = torch.stack([z1, z2], 1)
    assert float(supcon(z, unl, t, t)) == pytest.approx(float(nt_xent(z1, z2, t)), abs=1e-9)
    y = torch.tensor([0, 0, 1, 1, 2, -1, 2])
    mix = 0.3 * supcon(z, y, t, t) + 0.7 * nt_xent(z1, z2, t)
    assert float(supcon_mix(z, y, t, 0.3, base_temperature=t)) == pytest.approx(
        float(mix), abs=1e-9
    )
    # the authors' factor t / base_temperature
    assert float(supcon(z, y, t)) == pytest.approx(float(supcon(z, y, t, t)) * t / 0.07, rel=1e-12)


@pytest.mark.parametrize("b", [3, 8])
def test_collinear_closed_forms(b):
    z = torch.ones(b, 4, dtype=D)
    assert float(nt_xent(z, z, 0.2)) == pytest.approx(math.log(2 * b - 1), abs=1e-9)
    assert float(dcl(z, z, 0.2)) == pytest.approx(math.log(2 * b - 2), abs=1e-9)
    assert float(dclw(z, z, 0.2, 0.5)) == pytest.approx(math.log(2 * b - 2), abs=1e-9)
    assert float(hcl(z, z, 0.2, 0.1, 1.0)) == pytest.approx(math.log(2 * b - 1), abs=1e-9)
    assert float(
        supcon(torch.stack([z, z, z], 1), torch.zeros(b, dtype=torch.long), 0.2, 0.2)
    ) == pytest.approx(math.log(3 * b - 1), abs=1e-9)
    assert float(clip_loss(z, z, 3.0)) == pytest.approx(math.log(b), abs=1e-9)


def test_gradcheck():
    z1, z2 = _pair(4, 3, seed=2)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    s = torch.tensor(1.2, dtype=D, requires_grad=True)
    y = torch.tensor([0, 1, 0, -1])
    fns = [
        lambda a, b: nt_xent(a, b, 0.5),
        lambda a, b: dcl(a, b, 0.5),
        lambda a, b: hcl(a, b, 0.5, 0.1, 1.0),
        lambda a, b: supcon(torch.stack([a, b], 1), y, 0.5),
    ]
    for tiled in (False, True):
        for f in fns:
            assert torch.autograd.gradcheck(
                lambda a, b, f=f, tiled=tiled: _tiled(f, tiled)(a, b), (z1, z2)
            )
        assert torch.autograd.gradcheck(
            lambda a, b, ls, tiled=tiled: clip_loss(a, b, ls, tiled=tiled), (z1, z2, s)
        )


def test_dclw_gradient_treats_weights_as_constants():
    # DCLW detaches its weights, so gradcheck is run on DCLW with the weights frozen at the point
    z1, z2 = _pair(5, 3, seed=3)
    t, sigma = 0.5, 0.5
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    sp = (a * b).sum(1)
    w0 = (2 - torch.exp(sp / sigma) / torch.exp(sp / sigma).mean()).repeat(2)

    def frozen(x1, x2):
        z = F.normalize(torch.cat([x1, x2]), dim=1)
        n = x1.shape[0]
        logits = z @ z.t() / t
        idx = torch.arange(2 * n)
        pos = (idx + n) % (2 * n)
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        logits[idx, pos] = float("-inf")
        cos = (z * z[pos]).sum(1)
        return (torch.logsumexp(logits, 1) - w0 * cos / t).mean()

    x1, x2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(frozen, (x1, x2))
    assert float(frozen(x1, x2).detach()) == pytest.approx(
        float(dclw(x1, x2, t, sigma).detach()), abs=1e-12
    )
    g_ref = torch.autograd.grad(frozen(x1, x2), (x1, x2))
    for tiled in (False, True):
        g = torch.autograd.grad(dclw(x1, x2, t, sigma, tiled=tiled), (x1, x2))
        for u, v in zip(g, g_ref):
            torch.testing.assert_close(u, v, atol=1e-10, rtol=0)


def _tiled(f, tiled):
    import selfsup.losses.tiled as tiled_losses

    def g(a, b):
        old = tiled_losses.AUTO_ELEMENTS
        tiled_losses.AUTO_ELEMENTS = 0 if tiled else 1 << 62
        try:
            return f(a, b)
        finally:
            tiled_losses.AUTO_ELEMENTS = old

    return g


def test_bad_input_raises_config_error():
    z = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="temperature"):
        dcl(z, z, 0.0)
    with pytest.raises(ConfigError, match="equal shape"):
        hcl(z, torch.randn(5, 3))
    with pytest.raises(ConfigError, match="tau_plus"):
        hcl(z, z, 0.5, 1.0)
    with pytest.raises(ConfigError, match="one label per sample"):
        supcon(torch.randn(4, 2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="no anchor has a positive"):
        supcon(torch.randn(4, 3), torch.arange(4))
    with pytest.raises(ValueError):  # nt_xent keeps raising a ValueError (ConfigError is one)
        nt_xent(z, z, -1.0)


def test_clip_scale_keeps_its_gradient_above_the_bound_and_is_clamped_after_the_step():
    """OpenCLIP (mlfoundations/open_clip, train.py) clamps the parameter after optimizer.step()
    instead of the scale in the forward pass, so the gradient is never cut at the bound."""
    from selfsup.losses import ClipLoss

    z1, z2 = _pair(6, 4, seed=3)
    loss = ClipLoss().double()
    with torch.no_grad():
        loss.logit_scale.fill_(math.log(150.0))
    value = loss(z1, z2)
    value.backward()
    assert float(loss.logit_scale.grad.abs()) > 0
    assert float(value.detach()) == pytest.approx(ref_clip(z1, z2, 150.0), abs=1e-6)
    loss.clamp_()
    assert float(loss.logit_scale.detach()) == pytest.approx(math.log(100.0))
    with torch.no_grad():
        loss.logit_scale.fill_(-1.0)
    loss.clamp_()
    assert float(loss.logit_scale.detach()) == 0.0
