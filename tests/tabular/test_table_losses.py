"""CLAN, SCARF and VIME losses against slow loops written from their papers (float64), and the
papers' special cases."""

import math

import pytest
import torch

from selfsup.losses import clan_loss, scarf_loss, vime_loss
from selfsup.losses.clan import centroid_score


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def clan_reference(z, za, m, alpha, squared, eps=1e-6):
    """Wilkie et al. 2025 (jackwilkie/CLAN loss/clan_loss.py), one pair at a time."""
    pos, n_pos, neg, n_neg = 0.0, 0, 0.0, 0
    for i in range(len(z)):
        for j in range(len(z)):
            d = (1 - _cos(z[i], z[j])) / 2
            t = d * d if squared else d
            pos += t
            n_pos += t > eps
        for j in range(len(za)):
            d = (1 - _cos(z[i], za[j])) / 2
            t = max(0.0, m - d)
            t = t * t if squared else t
            neg += t
            n_neg += t > eps
    return alpha * pos / (n_pos + eps) + (1 - alpha) * neg / (n_neg + eps)


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("alpha,m", [(0.5, 0.5), (0.5, 0.6), (0.2, 0.9), (1.0, 0.6)])
def test_clan_matches_reference_loop(squared, alpha, m):
    g = torch.Generator().manual_seed(0)
    z, za = (
        torch.randn(7, 5, generator=g, dtype=torch.float64),
        torch.randn(9, 5, generator=g, dtype=torch.float64),
    )
    got = clan_loss(z, za, m, alpha, squared)
    assert got.dtype == torch.float64
    assert abs(float(got) - clan_reference(z, za, m, alpha, squared)) < 1e-9


def test_clan_defaults_are_the_authors_current_ones():
    """jackwilkie/CLAN train_clan.py since b3542f2 ("bug fix"): margin 0.5, unsquared terms; the
    earlier script (818e6d4) used margin 0.6, squared, which is what the defaults were before."""
    g = torch.Generator().manual_seed(3)
    z, za = (
        torch.randn(6, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 4, generator=g, dtype=torch.float64),
    )
    got = float(clan_loss(z, za))
    assert abs(got - clan_reference(z, za, 0.5, 0.5, False)) < 1e-9
    assert abs(got - clan_reference(z, za, 0.6, 0.5, True)) > 1e-3


def test_clan_special_cases():
    z = torch.tensor([[1.0, 0.0]] * 4, dtype=torch.float64)
    # benign rows collinear, augmented rows opposite (distance 1 > margin): nothing to pay
    assert float(clan_loss(z, -z)) == 0.0
    # augmented rows equal to the benign ones: every negative pays m (m^2 squared), the mean of the
    # non-zero terms; the positive term is 0
    assert abs(float(clan_loss(z, z)) - 0.5 * 0.5) < 1e-6  # eps in the denominator
    assert abs(float(clan_loss(z, z, margin=0.6, squared=True)) - 0.5 * 0.36) < 1e-6
    # orthogonal benign rows: d = 1/2 (squared 1/4) for every off-diagonal pair (the diagonal is 0,
    # left out)
    e = torch.eye(3, dtype=torch.float64)
    assert abs(float(clan_loss(e, -e, alpha=1.0)) - 0.5) < 1e-6
    assert abs(float(clan_loss(e, -e, alpha=1.0, squared=True)) - 0.25) < 1e-6


def test_clan_gradcheck_and_score():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    za = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: clan_loss(a, b), (z, za))
    bank = torch.tensor([[1.0, 0.0], [1.0, 0.2]])
    s = centroid_score(bank, torch.tensor([[1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]]))
    assert s[0] < s[1] < s[2]
    with pytest.raises(ValueError):
        clan_loss(torch.randn(3, 2), torch.randn(3, 4))


def scarf_reference(a, p, t):
    """Bahri et al. 2022, Algorithm 1: one anchor at a time against every corrupted view."""
    total = 0.0
    for i in range(len(a)):
        logits = [_cos(a[i], p[k]) / t for k in range(len(p))]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(a)


@pytest.mark.parametrize("t", [1.0, 0.3])
def test_scarf_matches_reference_loop(t):
    g = torch.Generator().manual_seed(2)
    a, p = (
        torch.randn(6, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 4, generator=g, dtype=torch.float64),
    )
    assert abs(float(scarf_loss(a, p, t)) - scarf_reference(a, p, t)) < 1e-9


def test_scarf_special_cases():
    # all embeddings collinear: every logit equal, the loss is log B
    z = torch.ones(8, 3, dtype=torch.float64)
    assert abs(float(scarf_loss(z, z)) - math.log(8)) < 1e-9
    # orthogonal rows paired with themselves at a low temperature: loss near 0
    e = torch.eye(4, dtype=torch.float64)
    assert float(scarf_loss(e, e, 0.01)) < 1e-9
    g = torch.Generator().manual_seed(3)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: scarf_loss(x, y, 0.5), (a, p))


def vime_reference(logits, mask, rec, target, alpha):
    """Yoon et al. 2020 (jsyoon0823/VIME vime_self.py): Keras BCE on sigmoid outputs + alpha *
    MSE."""
    n = logits.numel()
    bce = mse = 0.0
    for lv, mv, rv, tv in zip(
        logits.flatten().tolist(),
        mask.flatten().tolist(),
        rec.flatten().tolist(),
        target.flatten().tolist(),
    ):
        s = 1 / (1 + math.exp(-lv))
        bce += -(mv * math.log(s) + (1 - mv) * math.log(1 - s))
        mse += (rv - tv) ** 2
    return bce / n + alpha * mse / n


@pytest.mark.parametrize("alpha", [2.0, 0.0, 0.5])
def test_vime_matches_reference_loop(alpha):
    g = torch.Generator().manual_seed(4)
    logits, rec, target = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    mask = (torch.rand(5, 4, generator=g) < 0.3).double()
    assert (
        abs(
            float(vime_loss(logits, mask, rec, target, alpha))
            - vime_reference(logits, mask, rec, target, alpha)
        )
        < 1e-9
    )


def test_vime_special_cases():
    z = torch.zeros(3, 2, dtype=torch.float64)
    # zero logits: BCE = log 2 whatever the mask; perfect reconstruction adds nothing
    assert abs(float(vime_loss(z, torch.ones_like(z), z, z)) - math.log(2)) < 1e-12
    assert (
        abs(float(vime_loss(z, torch.zeros_like(z), z + 1, z, alpha=2.0)) - (math.log(2) + 2.0))
        < 1e-12
    )
    with pytest.raises(ValueError):
        vime_loss(z, z[:, :1], z, z)


def test_one_class_scores_against_a_loop():
    from selfsup.eval.anomaly import classical_scores, knn_distance_l2, one_class_eval

    g = torch.Generator().manual_seed(5)
    bank, query = torch.randn(12, 3, generator=g), torch.randn(6, 3, generator=g) * 3
    d = knn_distance_l2(bank, query, k=3)
    for i in range(6):
        ref = sorted(float((query[i] - b).norm()) for b in bank)[:3]
        assert abs(float(d[i]) - sum(ref) / 3) < 1e-5
    far = torch.cat([torch.zeros(3, 3), torch.full((3, 3), 10.0)])  # 3 normal-like rows, 3 far ones
    r = one_class_eval(torch.randn(20, 3, generator=g) * 0.1, far, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert r["anomaly_knn_l2_auroc"] == 1.0 and "anomaly_method_auroc" not in r
    s = classical_scores(torch.randn(30, 3, generator=g) * 0.1, far)
    assert set(s) == {"isolation_forest", "lof", "distance_to_mean"}
    assert all(v[3:].min() > v[:3].max() for v in s.values())
