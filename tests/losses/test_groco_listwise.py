"""GroCo (learning by sorting) and the list-wise Wasserstein loss."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigError
from selfsup.losses import groco, listwise_wasserstein, relaxed_sort, wasserstein_1d


def test_relaxed_permutation_approaches_hard_one():
    x = torch.tensor([[0.3, -0.2, 0.9, 0.1, 0.5]])
    hard = F.one_hot(x.argsort(1)[0], 5).t().to(x.dtype)  # hard[j, r] = 1 if element j has rank r
    gaps = []
    for steepness in (1.0, 10.0, 100.0, 1000.0):
        _, p = relaxed_sort(x, steepness)
        gaps.append(float((p[0] - hard).abs().max()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.02


def _group(ordered: bool):
    # 4 samples x 2 views in 3-D; positives (the other view) either closer or farther than negatives
    base = torch.eye(3)[[0, 1, 2, 0]] + torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0.3, 0.3]])
    other = base + (0.05 if ordered else 2.0) * torch.tensor([[0.0, 1, -1], [1, 0, -1], [1, -1, 0], [0, 1, 0]])
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


def test_listwise_loss_prefers_scores_that_follow_grades():
    grades = torch.tensor([[3, 2, 1, 0], [0, 1, 3, 2]])
    good = torch.tensor([[4.0, 3.0, 2.0, -5.0], [-5.0, 2.0, 4.0, 3.0]])
    assert float(listwise_wasserstein(good, grades)) < float(listwise_wasserstein(good.flip(1), grades))
    s = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: listwise_wasserstein(s, grades, p=1.0), (s,))
    with pytest.raises(ConfigError, match=">= 0"):
        listwise_wasserstein(s, -grades - 1)
