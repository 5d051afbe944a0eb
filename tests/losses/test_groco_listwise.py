"""GroCo (learning by sorting) and the list-wise Wasserstein losses, against references written here
from the authors' code (never copied): ninatu/learning_by_sorting
``learning_by_sorting/losses/groco.py`` and BatsResearch/sycl ``train.py`` (``WS2Loss``)."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigError
from selfsup.losses import (
    frechet_distance,
    groco,
    listwise_wasserstein,
    listwise_wasserstein_1d,
    relaxed_sort,
    wasserstein_1d,
)

D = torch.float64


def test_relaxed_permutation_approaches_hard_one():
    x = torch.tensor([[0.3, -0.2, 0.9, 0.1, 0.5]])
    hard = F.one_hot(x.argsort(1)[0], 5).t().to(x.dtype)  # hard[j, r] = 1 if element j has rank r
    gaps = []
    for steepness in (1.0, 10.0, 100.0, 1000.0):
        _, p = relaxed_sort(x, steepness)
        gaps.append(float((p[0] - hard).abs().max()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.02


def ref_groco(z, k, n_global, stop_grad=True, steepness=1.0):
    """The authors' GroCo.forward / compute_loss, one anchor view at a time, on one process."""
    diffsort = pytest.importorskip("diffsort")
    b, v, _ = z.shape
    total = 0.0
    for a in range(v):
        anchor = z[:, a]
        positives = [z[:, j] for j in range(n_global) if j != a]
        pos = torch.stack(
            [F.cosine_similarity(anchor, p.detach() if stop_grad else p, dim=1) for p in positives],
            1,
        )
        others = anchor.detach() if stop_grad else anchor
        neg = F.cosine_similarity(anchor[:, None, :], others[None, :, :], dim=2)
        neg = neg.masked_fill(torch.eye(b, dtype=torch.bool), -float("inf"))
        pos = torch.sort(pos, dim=1)[0]
        neg = torch.flip(torch.topk(neg, k=k, dim=1)[0], dims=[1])
        sims = torch.cat((neg, pos), 1)
        sorter = diffsort.DiffSortNet(
            "odd_even", sims.shape[1], steepness=steepness, art_lambda=0.25, distribution="cauchy"
        )
        _, perm = sorter(sims)
        target = torch.eye(sims.shape[1], dtype=sims.dtype)[None].repeat(b, 1, 1)
        pred_neg = perm[:, :, :k].sum(2, keepdim=True).clip(0, 1)
        pred_pos = perm[:, :, k:].sum(2, keepdim=True).clip(0, 1)
        t_neg = target[:, :, :k].sum(2, keepdim=True)
        t_pos = target[:, :, k:].sum(2, keepdim=True)
        bce = torch.nn.BCELoss()
        total = total + (bce(pred_pos, t_pos) + bce(pred_neg, t_neg)) / 2
    return total / v


@pytest.mark.parametrize("b,v,d,k,n_global", [(6, 2, 5, 3, 2), (5, 3, 4, 4, 3), (7, 4, 6, 2, 2)])
def test_groco_matches_the_authors_loss_and_gradient(b, v, d, k, n_global):
    g = torch.Generator().manual_seed(b * 10 + v)
    z0 = torch.randn(b, v, d, generator=g, dtype=D)
    for stop_grad in (True, False):
        z1 = z0.clone().requires_grad_(True)
        z2 = z0.clone().requires_grad_(True)
        ours = groco(z1, k=k, n_global=n_global, stop_grad=stop_grad)
        ref = ref_groco(F.normalize(z2, dim=2), k, n_global, stop_grad)
        assert float(ours.detach()) == pytest.approx(float(ref.detach()), abs=1e-6)
        (g1,), (g2,) = torch.autograd.grad(ours, z1), torch.autograd.grad(ref, z2)
        torch.testing.assert_close(g1, g2, atol=1e-6, rtol=1e-5)


def _group(ordered: bool):
    # 4 samples x 2 views in 3-D; positives (the other view) either closer or farther than negatives
    base = torch.eye(3)[[0, 1, 2, 0]] + torch.tensor(
        [[0.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0.3, 0.3]]
    )
    other = base + (0.05 if ordered else 2.0) * torch.tensor(
        [[0.0, 1, -1], [1, 0, -1], [1, -1, 0], [0, 1, 0]]
    )
    return torch.stack([base, other], 1)


def test_groco_lower_for_correctly_ordered_group_and_trains():
    good, bad = groco(_group(True), k=3, steepness=5.0), groco(_group(False), k=3, steepness=5.0)
    assert float(good) < float(bad)
    z = torch.randn(6, 3, 4, requires_grad=True)
    loss = groco(z, k=4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and float(z.grad.abs().sum()) > 0
    with pytest.raises(ConfigError, match="groco expects"):
        groco(torch.randn(4, 8), k=2)
    with pytest.raises(ConfigError, match="n_global"):
        groco(torch.randn(4, 3, 8), k=2, n_global=1)


def ref_ws2(logits, label, temperature):
    """BatsResearch/sycl train.py WS2Loss.forward + calc_dist, with torch.linalg.eigvals as
    there."""
    if label.size(1) != logits.size(1):
        label = torch.block_diag(*torch.chunk(label, label.shape[0]))
    x = F.softmax(logits / temperature, dim=1).transpose(0, 1).double()
    y = F.softmax(label.double(), dim=1).transpose(0, 1)
    b = x.shape[1]
    fact = 1.0 if b < 2 else 1.0 / (b - 1)
    ex, ey = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    cov_x, cov_y = ex @ ex.t() * fact, ey @ ey.t() * fact
    cx, cy = ex * math.sqrt(fact), ey * math.sqrt(fact)
    m = (cx.t() @ cy) @ (cy.t() @ cx)
    sq = (torch.linalg.eigvals(m) + 1e-15).sqrt().abs().sum()
    diff = x.mean(1) - y.mean(1)
    return torch.trace(cov_x + cov_y) - 2.0 * sq + (diff * diff).sum()


@pytest.mark.parametrize("q,n,t", [(3, 4, 1.0), (4, 2, 0.5), (5, 3, 0.2)])
def test_listwise_wasserstein_matches_ws2loss(q, n, t):
    g = torch.Generator().manual_seed(q * n)
    logits = torch.randn(q, q * n, generator=g, dtype=D)
    grades = torch.randint(0, 4, (q, n), generator=g).to(D)
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ours, ref = listwise_wasserstein(a, grades, t), ref_ws2(b, grades, t)
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), abs=1e-9)
    (ga,), (gb,) = torch.autograd.grad(ours, a), torch.autograd.grad(ref, b)
    torch.testing.assert_close(ga, gb, atol=1e-7, rtol=1e-5)
    # a full (Q, C) label matrix is taken as it is
    full = torch.block_diag(*grades.unbind(0))
    assert float(listwise_wasserstein(logits, full, t)) == pytest.approx(
        float(ref.detach()), abs=1e-9
    )


def test_frechet_distance_special_cases():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 5, generator=g, dtype=D)
    assert float(frechet_distance(x, x)) == pytest.approx(0.0, abs=1e-6)
    # a pure shift of the rows changes only the mean term
    assert float(frechet_distance(x, x + 0.1)) == pytest.approx(5 * 0.01, abs=1e-6)
    with pytest.raises(ConfigError, match="Q L"):
        listwise_wasserstein(torch.randn(2, 7), torch.ones(2, 3))


def test_wasserstein_1d_matches_pot():
    ot = pytest.importorskip("ot")
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([[3.0, 2.0, 2.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    for p in (1.0, 2.0):
        for _ in range(3):
            a = torch.rand(1, 6, generator=g, dtype=torch.float64)
            b = torch.rand(1, 6, generator=g, dtype=torch.float64)
            a, b = a / a.sum(), b / b.sum()
            cost = (x[0, :, None] - x[0, None, :]).abs().numpy() ** p
            want = float(ot.emd2(a[0].numpy(), b[0].numpy(), cost)) ** (1 / p)
            assert float(wasserstein_1d(x, a, b, p)[0]) == pytest.approx(want, abs=1e-9)


def test_listwise_1d_prefers_scores_that_follow_grades():
    grades = torch.tensor([[3, 2, 1, 0], [0, 1, 3, 2]])
    good = torch.tensor([[4.0, 3.0, 2.0, -5.0], [-5.0, 2.0, 4.0, 3.0]])
    assert float(listwise_wasserstein_1d(good, grades)) < float(
        listwise_wasserstein_1d(good.flip(1), grades)
    )
    s = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: listwise_wasserstein_1d(s, grades, p=1.0), (s,))
    with pytest.raises(ConfigError, match=">= 0"):
        listwise_wasserstein_1d(s, -grades - 1)
