"""The cross-modal hard-negative loss against a slow float64 loop, its special cases, and
gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import clip_loss
from selfsup.losses.xhcl import xhcl


def slow_xhcl(a, b, t, tau_plus, beta):
    """Written from the formula (HCL's estimator, joshr17/HCL image/main.py), one anchor at a time:
    anchor of one modality, positive and negatives of the other, both directions averaged."""
    a, b = F.normalize(a.double(), dim=1), F.normalize(b.double(), dim=1)
    n_pairs = len(a)
    n = n_pairs - 1

    def direction(q, k):
        total = 0.0
        for i in range(n_pairs):
            pos = math.exp(float(q[i] @ k[i]) / t)
            negs = [float(q[i] @ k[j]) for j in range(n_pairs) if j != i]
            imp = [math.exp(beta * s / t) for s in negs]
            mean_imp = sum(imp) / n
            rw = sum(w / mean_imp * math.exp(s / t) for w, s in zip(imp, negs, strict=True))
            ng = max((-tau_plus * n * pos + rw) / (1 - tau_plus), n * math.exp(-1 / t))
            total += -math.log(pos / (pos + ng))
        return total / n_pairs

    return 0.5 * (direction(a, b) + direction(b, a))


@pytest.mark.parametrize(
    "t, tau_plus, beta", [(0.1, 0.1, 1.0), (0.5, 0.0, 0.5), (0.2, 0.3, 2.0), (1.0, 0.1, 0.0)]
)
def test_xhcl_equals_the_slow_loop(t, tau_plus, beta):
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(7, 5, generator=g, dtype=torch.float64),
        torch.randn(7, 5, generator=g, dtype=torch.float64),
    )
    got = float(xhcl(a, b, t, tau_plus, beta))
    assert got == pytest.approx(slow_xhcl(a, b, t, tau_plus, beta), abs=1e-6)


def test_beta_0_tau_plus_0_is_clip_at_a_fixed_temperature():
    g = torch.Generator().manual_seed(1)
    a, b = (
        torch.randn(9, 4, generator=g, dtype=torch.float64),
        torch.randn(9, 4, generator=g, dtype=torch.float64),
    )
    for t in (0.07, 0.5):
        assert float(xhcl(a, b, t, 0.0, 0.0)) == pytest.approx(
            float(clip_loss(a, b, math.log(1 / t))), abs=1e-9
        )


def test_collinear_embeddings_give_log_b():
    z = torch.ones(6, 3, dtype=torch.float64)
    assert float(xhcl(z, z, 0.2, 0.1, 1.0)) == pytest.approx(math.log(6), abs=1e-9)


def test_tiled_equals_dense():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(11, 6, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(11, 6, generator=g, dtype=torch.float64, requires_grad=True)
    dense = xhcl(a, b, 0.3, 0.1, 1.0, tiled=False)
    ga, gb = torch.autograd.grad(dense, [a, b])
    tiled = xhcl(a, b, 0.3, 0.1, 1.0, tiled=True)
    ta, tb = torch.autograd.grad(tiled, [a, b])
    assert float(tiled.detach()) == pytest.approx(float(dense.detach()), abs=1e-10)
    assert torch.allclose(ta, ga, atol=1e-9) and torch.allclose(tb, gb, atol=1e-9)


def test_gradcheck():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: xhcl(x, y, 0.5, 0.1, 1.0), (a, b))


def test_bad_parameters_are_refused():
    from selfsup.errors import ConfigError

    z = torch.randn(4, 3)
    with pytest.raises(ConfigError):
        xhcl(z, z, tau_plus=1.0)
    with pytest.raises(ConfigError):
        xhcl(z, z[:, :2])


def slow_xhcl_all(a, b, t, tau_plus, beta):
    """The 2B - 2 layout from the formula: each of the 2B embeddings an anchor, its pair the
    positive, every other embedding of either modality a negative."""
    z = F.normalize(torch.cat([a, b]).double(), dim=1)
    m, half = len(z), len(a)
    n = m - 2
    total = 0.0
    for i in range(m):
        p = (i + half) % m
        pos = math.exp(float(z[i] @ z[p]) / t)
        negs = [float(z[i] @ z[j]) for j in range(m) if j not in (i, p)]
        imp = [math.exp(beta * s / t) for s in negs]
        rw = sum(w / (sum(imp) / n) * math.exp(s / t) for w, s in zip(imp, negs, strict=True))
        ng = max((-tau_plus * n * pos + rw) / (1 - tau_plus), n * math.exp(-1 / t))
        total += -math.log(pos / (pos + ng))
    return total / m


def test_all_negatives_use_both_modalities():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    got = float(xhcl(a, b, 0.2, 0.1, 1.0, negatives="all"))
    assert got == pytest.approx(slow_xhcl_all(a, b, 0.2, 0.1, 1.0), rel=1e-5)
    assert got != pytest.approx(float(xhcl(a, b, 0.2, 0.1, 1.0)), rel=1e-3)
    with pytest.raises(Exception, match="negatives"):
        xhcl(a, b, negatives="some")
