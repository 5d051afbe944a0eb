"""TS2Vec's hierarchical contrastive loss against a slow loop written from the paper, in float64."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import hierarchical_contrastive_loss
from selfsup.losses.ts2vec import instance_contrastive_loss, temporal_contrastive_loss


def slow_term(z1, z2, over: str) -> float:
    """Mean over anchors (both views) of -log exp(s(anchor, positive)) / sum over the other
    candidates; instance: candidates = all series at the same step; temporal: all steps of the
    series."""
    b, t, _ = z1.shape
    total, count = 0.0, 0
    for i in range(b):
        for s in range(t):
            for za, zb in ((z1, z2), (z2, z1)):
                anchor, positive = za[i, s], zb[i, s]
                if over == "instance":
                    others = [za[j, s] for j in range(b) if j != i] + [zb[j, s] for j in range(b)]
                else:
                    others = [za[i, u] for u in range(t) if u != s] + [zb[i, u] for u in range(t)]
                denom = sum(math.exp(float(anchor @ o)) for o in others)
                total += -(float(anchor @ positive) - math.log(denom))
                count += 1
    return total / count


def slow_loss(z1, z2, alpha=0.5, unit=0) -> float:
    total, levels = 0.0, 0
    while z1.shape[1] > 1:
        if z1.shape[0] > 1:
            total += alpha * slow_term(z1, z2, "instance")
        if levels >= unit:
            total += (1 - alpha) * slow_term(z1, z2, "temporal")
        levels += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    if z1.shape[0] > 1:
        total += alpha * slow_term(z1, z2, "instance")
    return total / (levels + 1)


@pytest.mark.parametrize(
    "b, t, alpha, unit",
    [
        (4, 9, 0.5, 0),
        (3, 8, 0.5, 1),
        (2, 5, 0.2, 0),
        (1, 6, 0.5, 0),
        (5, 1, 0.5, 0),
        (3, 7, 1.0, 0),
        (3, 7, 0.0, 0),
    ],
)
def test_equals_the_slow_loop(b, t, alpha, unit):
    g = torch.Generator().manual_seed(b * 100 + t)
    z1 = torch.randn(b, t, 4, generator=g, dtype=torch.float64) * 0.7
    z2 = torch.randn(b, t, 4, generator=g, dtype=torch.float64) * 0.7
    got = hierarchical_contrastive_loss(z1, z2, alpha, unit)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(slow_loss(z1, z2, alpha, unit), abs=1e-6)


def test_equal_representations_give_log_of_the_candidates():
    """All representations equal: every term is log(2B - 1) (instance) or log(2T - 1) (temporal)."""
    b, t = 4, 8
    z = torch.ones(b, t, 3, dtype=torch.float64)
    assert float(instance_contrastive_loss(z, z)) == pytest.approx(math.log(2 * b - 1))
    assert float(temporal_contrastive_loss(z, z)) == pytest.approx(math.log(2 * t - 1))
    levels = [8, 4, 2]  # then T = 1: instance only
    expected = sum(
        0.5 * math.log(2 * b - 1) + 0.5 * math.log(2 * n - 1) for n in levels
    ) + 0.5 * math.log(2 * b - 1)
    assert float(hierarchical_contrastive_loss(z, z)) == pytest.approx(expected / 4)


def test_degenerate_terms_are_zero_and_shapes_are_checked():
    z = torch.randn(1, 5, 3)
    assert float(instance_contrastive_loss(z, z)) == 0.0
    assert float(temporal_contrastive_loss(z[:, :1], z[:, :1])) == 0.0
    with pytest.raises(ValueError):
        hierarchical_contrastive_loss(torch.randn(2, 5, 3), torch.randn(2, 4, 3))


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(3, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: hierarchical_contrastive_loss(a, b), (z1, z2))


# A float64 numpy transcription of the authors' functions (yuezhihan/ts2vec, ``models/losses.py``
# at commit b0088e1: ``hierarchical_contrastive_loss``, ``instance_contrastive_loss``,
# ``temporal_contrastive_loss``), following their construction rather than the paper's formula:
# the (2n x 2n) dot-product matrix with its diagonal cut out (each row keeps its 2n - 1 others), a
# log-softmax per row, the positive of row i < n at column n + i - 1 and of row n + i at column i;
# the level count ``d`` advanced after each pyramid level and once more for the final T = 1 level.
def _authors_pairs(za, zb):  # za, zb: (G, n, D); the contrast within each of the G groups
    n = za.shape[1]
    if n == 1:
        return 0.0
    z = np.concatenate([za, zb], axis=1)  # (G, 2n, D)
    sim = z @ z.transpose(0, 2, 1)
    off = ~np.eye(2 * n, dtype=bool)
    logits = sim[:, off].reshape(sim.shape[0], 2 * n, 2 * n - 1)
    m = logits.max(-1, keepdims=True)
    nll = -(logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True)))
    i = np.arange(n)
    return (nll[:, i, n + i - 1].mean() + nll[:, n + i, i].mean()) / 2


def _authors_hierarchical(z1, z2, alpha=0.5, unit=0):
    def pool(z):  # max_pool1d, kernel 2, stride 2 along time (an odd last step dropped)
        t = z.shape[1] // 2 * 2
        return np.maximum(z[:, 0:t:2], z[:, 1:t:2])

    loss, d = 0.0, 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss += alpha * _authors_pairs(z1.transpose(1, 0, 2), z2.transpose(1, 0, 2))
        if d >= unit and 1 - alpha != 0:
            loss += (1 - alpha) * _authors_pairs(z1, z2)
        d += 1
        z1, z2 = pool(z1), pool(z2)
    if z1.shape[1] == 1:
        if alpha != 0:
            loss += alpha * _authors_pairs(z1.transpose(1, 0, 2), z2.transpose(1, 0, 2))
        d += 1
    return loss / d


@pytest.mark.parametrize(
    "b, t, alpha, unit", [(4, 9, 0.5, 0), (3, 16, 0.5, 2), (1, 6, 0.5, 0), (5, 1, 0.3, 0)]
)
def test_equals_a_transcription_of_the_authors_functions(b, t, alpha, unit):
    g = torch.Generator().manual_seed(7 * b + t)
    z1 = torch.randn(b, t, 5, generator=g, dtype=torch.float64)
    z2 = torch.randn(b, t, 5, generator=g, dtype=torch.float64)
    ref = _authors_hierarchical(z1.numpy(), z2.numpy(), alpha, unit)
    assert float(hierarchical_contrastive_loss(z1, z2, alpha, unit)) == pytest.approx(ref, abs=1e-9)
