"""Graph losses against slow reference loops written from their papers (float64), special cases."""

import math

import numpy as np
import pytest
import torch

from selfsup.losses.grace import grace_loss
from selfsup.losses.graphmae import sce_loss
from selfsup.losses.scgc import (
    cluster_kl,
    iac_loss,
    influence_targets,
    soft_assign,
    target_distribution,
)


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def test_sce_matches_a_loop_and_gamma_one_is_the_cosine_error():
    g = torch.Generator().manual_seed(0)
    x, z = (
        torch.randn(7, 5, generator=g, dtype=torch.float64),
        torch.randn(7, 5, generator=g, dtype=torch.float64),
    )
    for gamma in (1.0, 2.0, 3.0):
        ref = sum((1 - _cos(x[i], z[i])) ** gamma for i in range(7)) / 7
        assert abs(float(sce_loss(x, z, gamma)) - ref) < 1e-10
    assert float(sce_loss(x, 2.5 * x, 3.0)) == pytest.approx(0.0, abs=1e-12)  # scale-invariant
    assert float(sce_loss(x, -x, 1.0)) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        sce_loss(x, z, 0.5)


def _grace_ref(h1, h2, tau):
    n = len(h1)

    def one(u, v, i):
        pos = math.exp(_cos(u[i], v[i]) / tau)
        den = (
            pos
            + sum(math.exp(_cos(u[i], v[k]) / tau) for k in range(n) if k != i)
            + sum(math.exp(_cos(u[i], u[k]) / tau) for k in range(n) if k != i)
        )
        return -math.log(pos / den)

    return sum(one(h1, h2, i) + one(h2, h1, i) for i in range(n)) / (2 * n)


def test_grace_matches_a_loop_over_anchors():
    g = torch.Generator().manual_seed(1)
    h1, h2 = (
        torch.randn(6, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 4, generator=g, dtype=torch.float64),
    )
    for tau in (0.4, 1.0):
        assert abs(float(grace_loss(h1, h2, tau)) - _grace_ref(h1, h2, tau)) < 1e-9


def test_grace_special_case_collinear_views_give_log_of_two_n_minus_one():
    # every embedding the same direction: each anchor has 1 positive and 2N - 2 equal negatives
    h = torch.ones(5, 3, dtype=torch.float64)
    assert float(grace_loss(h, h, 0.5)) == pytest.approx(math.log(2 * 5 - 1))


def test_grace_gradcheck():
    g = torch.Generator().manual_seed(2)
    h1 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    h2 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: grace_loss(a, b, 0.4), (h1, h2))


def _norm_adj(edges, n):
    a = np.zeros((n, n))
    for s, t in edges:
        a[s, t] = a[t, s] = 1
    a += np.eye(n)
    return a / a.sum(1, keepdims=True)


def test_influence_targets_are_powers_of_the_row_normalised_adjacency():
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4)]
    ei = torch.tensor(
        [[s for s, _ in edges], [t for _, t in edges]]
    )  # one direction only: symmetrised
    a = _norm_adj(edges, 5)
    for r in (1, 2, 3):
        power = np.linalg.matrix_power(a, r)
        cum = sum(np.linalg.matrix_power(a, k) for k in range(1, r + 1))
        assert np.allclose(influence_targets(ei, 5, r).numpy(), power, atol=1e-6)
        assert np.allclose(influence_targets(ei, 5, r, cumulative=True).numpy(), cum, atol=1e-5)
    assert np.allclose(
        influence_targets(ei, 5, 3).sum(1).numpy(), 1.0, atol=1e-6
    )  # rows stay distributions


def test_iac_matches_a_loop():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64)
    w = torch.rand(6, 6, generator=g, dtype=torch.float64)
    tau = 0.25
    ref = 0.0
    for i in range(6):
        s = [0.0 if j == i else _cos(z[i], z[j]) for j in range(6)]
        num = sum(float(w[i, j]) * math.exp(tau * s[j]) for j in range(6))
        den = sum(math.exp(tau * s[j]) for j in range(6))
        ref += -math.log(num / den + 1e-8)
    assert abs(float(iac_loss(z, w, tau)) - ref / 6) < 1e-9


def test_iac_with_identity_targets_and_tau_zero_is_log_n():
    # tau = 0: every similarity weighs the same; W = I keeps only the node itself: -log(1/N)
    z = torch.randn(5, 3, dtype=torch.float64)
    assert float(iac_loss(z, torch.eye(5, dtype=torch.float64), 0.0)) == pytest.approx(
        math.log(5), abs=1e-6
    )


def test_soft_assignment_target_and_kl_match_loops():
    g = torch.Generator().manual_seed(4)
    z, mu = (
        torch.randn(5, 2, generator=g, dtype=torch.float64),
        torch.randn(3, 2, generator=g, dtype=torch.float64),
    )
    q = soft_assign(z, mu, v=1.0)
    for i in range(5):
        t = [1 / (1 + float(((z[i] - mu[j]) ** 2).sum())) for j in range(3)]
        assert np.allclose(q[i].numpy(), np.array(t) / sum(t))
    p = target_distribution(q)
    f = q.sum(0)
    for i in range(5):
        t = [float(q[i, j]) ** 2 / float(f[j]) for j in range(3)]
        assert np.allclose(p[i].numpy(), np.array(t) / sum(t))
    ref = (
        sum(
            float(p[i, j]) * math.log(float(p[i, j]) / float(q[i, j]))
            for i in range(5)
            for j in range(3)
        )
        / 5
    )
    assert abs(float(cluster_kl(q, p)) - ref) < 1e-10
    assert float(cluster_kl(q, q)) == pytest.approx(0.0, abs=1e-12)


def _grace_authors(h1, h2, tau):
    """A float64 numpy transcription of the authors' loss (CRIPAC-DIG/GRACE ``model.py`` at commit
    700be33: ``Model.semi_loss`` and ``Model.loss`` with ``mean=True``), in their form:
    exponentiated cosine similarities, the anchor's own similarity taken out of the intra-view row
    sum."""
    u = h1 / np.linalg.norm(h1, axis=1, keepdims=True)
    v = h2 / np.linalg.norm(h2, axis=1, keepdims=True)

    def semi(a, b):
        refl, between = np.exp(a @ a.T / tau), np.exp(a @ b.T / tau)
        return -np.log(np.diag(between) / (refl.sum(1) + between.sum(1) - np.diag(refl)))

    return float(((semi(u, v) + semi(v, u)) * 0.5).mean())


def test_grace_equals_a_transcription_of_the_authors_loss():
    g = torch.Generator().manual_seed(5)
    h1, h2 = (torch.randn(9, 6, generator=g, dtype=torch.float64) for _ in range(2))
    for tau in (0.4, 0.9):
        ref = _grace_authors(h1.numpy(), h2.numpy(), tau)
        assert float(grace_loss(h1, h2, tau)) == pytest.approx(ref, abs=1e-10)


def test_sce_equals_a_transcription_of_the_authors_loss():
    """THUDM/GraphMAE ``graphmae/models/loss_func.py`` (``sce_loss``): rows L2-normalised, then
    the mean of (1 - their dot product) ** alpha."""
    g = torch.Generator().manual_seed(6)
    x, z = (torch.randn(8, 5, generator=g, dtype=torch.float64) for _ in range(2))
    xn = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    zn = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    for alpha in (1.0, 3.0):
        ref = float(((1 - (xn * zn).sum(-1)) ** alpha).mean())
        assert float(sce_loss(x, z, alpha)) == pytest.approx(ref, abs=1e-10)
