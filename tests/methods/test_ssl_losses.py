"""Barlow Twins, VICReg, BYOL/SimSiam regression, MoCo InfoNCE, MoCHi mixing, queue and NN lookup:
each against a slow reference loop in float64, their special cases, and gradcheck."""

import math

import pytest
import torch

from selfsup.losses import (
    FeatureQueue,
    barlow_twins,
    byol_loss,
    info_nce,
    mochi_negatives,
    nearest_neighbour,
    negative_cosine,
    vicreg,
)

D64 = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D64)


def _norm(v):
    return v / math.sqrt(sum(float(a) ** 2 for a in v))


# -- slow references ---------------------------------------------------------------------------
def ref_barlow(z1, z2, lam, eps):
    b, d = z1.shape

    def standardise(z):
        out = torch.empty_like(z)
        for j in range(d):
            col = [float(z[i, j]) for i in range(b)]
            m = sum(col) / b
            v = sum((c - m) ** 2 for c in col) / b
            for i in range(b):
                out[i, j] = (col[i] - m) / math.sqrt(v + eps)
        return out

    a, c = standardise(z1), standardise(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            cij = sum(float(a[n, i] * c[n, j]) for n in range(b)) / b
            loss += (1 - cij) ** 2 if i == j else lam * cij**2
    return loss


def ref_vicreg(z1, z2, inv, var, cov, gamma=1.0, eps=1e-4):
    b, d = z1.shape
    mse = sum(float(z1[n, j] - z2[n, j]) ** 2 for n in range(b) for j in range(d)) / (b * d)
    v_total, c_total = 0.0, 0.0
    for z in (z1, z2):
        means = [sum(float(z[n, j]) for n in range(b)) / b for j in range(d)]
        c = [
            [
                sum((float(z[n, i]) - means[i]) * (float(z[n, j]) - means[j]) for n in range(b))
                / (b - 1)
                for j in range(d)
            ]
            for i in range(d)
        ]
        v_total += sum(max(0.0, gamma - math.sqrt(c[j][j] + eps)) for j in range(d)) / d / 2
        # the covariance terms of the two views are summed (facebookresearch/vicreg, main_vicreg.py)
        c_total += sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return inv * mse + var * v_total + cov * c_total


def ref_info_nce(q, k, queue, t, extra=None):
    total = 0.0
    for i in range(len(q)):
        qi = _norm(q[i])
        pos = math.exp(float(qi @ _norm(k[i])) / t)
        den = pos + sum(math.exp(float(qi @ _norm(n)) / t) for n in queue)
        if extra is not None:
            den += sum(math.exp(float(qi @ _norm(n)) / t) for n in extra[i])
        total += -math.log(pos / den)
    return total / len(q)


# -- tests -------------------------------------------------------------------------------------
def test_barlow_matches_reference_loop():
    z1, z2 = _rand(7, 5, seed=1), _rand(7, 5, seed=2)
    for lam in (5e-3, 0.5):
        assert float(barlow_twins(z1, z2, lam, eps=1e-5)) == pytest.approx(
            ref_barlow(z1, z2, lam, 1e-5), rel=1e-9, abs=1e-6
        )


def test_barlow_is_zero_for_identical_decorrelated_views():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=D64) * 3 + 2
    assert float(barlow_twins(z, z, 5e-3, eps=0.0)) == pytest.approx(0.0, abs=1e-12)


def test_vicreg_matches_reference_loop():
    z1, z2 = _rand(6, 4, seed=3), _rand(6, 4, seed=4) * 0.5
    for w in ((25.0, 25.0, 1.0), (1.0, 0.0, 3.0)):
        assert float(vicreg(z1, z2, *w)) == pytest.approx(
            ref_vicreg(z1, z2, *w), rel=1e-9, abs=1e-6
        )


def test_vicreg_is_zero_for_identical_spread_decorrelated_views():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=D64) * 2
    assert float(vicreg(z, z)) == pytest.approx(0.0, abs=1e-12)


def test_byol_and_simsiam_regression_losses():
    p, z = _rand(5, 3, seed=5), _rand(5, 3, seed=6)
    ref = sum(2 - 2 * float(_norm(p[i]) @ _norm(z[i])) for i in range(5)) / 5
    assert float(byol_loss(p, z)) == pytest.approx(ref, abs=1e-9)
    assert float(negative_cosine(p, z)) == pytest.approx(-(2 - ref) / 2, abs=1e-9)
    assert float(byol_loss(p, 3 * p)) == pytest.approx(0.0, abs=1e-9)
    assert float(byol_loss(p, -p)) == pytest.approx(4.0, abs=1e-9)


def test_info_nce_matches_reference_loop_with_queue_and_extra_negatives():
    q, k, queue, extra = (
        _rand(4, 3, seed=7),
        _rand(4, 3, seed=8),
        _rand(6, 3, seed=9),
        _rand(4, 2, 3, seed=10),
    )
    assert float(info_nce(q, k, queue, 0.2)) == pytest.approx(
        ref_info_nce(q, k, queue, 0.2), abs=1e-6
    )
    assert float(info_nce(q, k, queue, 0.5, extra)) == pytest.approx(
        ref_info_nce(q, k, queue, 0.5, extra), abs=1e-6
    )


def test_info_nce_collinear_inputs_give_log_k_plus_one():
    v = torch.ones(3, 4, dtype=D64)
    assert float(info_nce(v, v, torch.ones(9, 4, dtype=D64), 0.3)) == pytest.approx(
        math.log(10), abs=1e-9
    )


def test_gradcheck_of_losses():
    z1 = _rand(4, 3, seed=11).requires_grad_()
    z2 = _rand(4, 3, seed=12).requires_grad_()
    queue = _rand(5, 3, seed=13)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins(a, b, 0.1), (z1, z2))
    assert torch.autograd.gradcheck(lambda a, b: vicreg(a, b), (z1, z2))
    assert torch.autograd.gradcheck(byol_loss, (z1, z2))
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, queue, 0.5), (z1, z2))


def test_mochi_mixes_are_normalised_detached_convex_combinations_of_the_hardest():
    q = _rand(3, 4, seed=14).requires_grad_()
    queue = torch.nn.functional.normalize(_rand(10, 4, seed=15), dim=1)
    g = torch.Generator().manual_seed(0)
    mixes, parts = mochi_negatives(
        q, queue, n_hard=4, n_mix=5, n_mix_query=3, generator=g, return_parts=True
    )
    assert mixes.shape == (3, 8, 4) and not mixes.requires_grad
    assert torch.allclose(mixes.norm(dim=2), torch.ones(3, 8, dtype=D64))
    qn = torch.nn.functional.normalize(q.detach(), dim=1)
    hardest = (qn @ queue.t()).topk(4, dim=1).indices
    a, b = parts["alpha"], parts["beta"]
    assert bool((a >= 0).all() and (a <= 1).all() and (b >= 0).all() and (b <= 0.5).all())
    for i in range(3):
        for m in range(5):
            assert int(parts["i"][i, m]) in hardest[i] and int(parts["j"][i, m]) in hardest[i]
            v = a[i, m] * queue[parts["i"][i, m]] + (1 - a[i, m]) * queue[parts["j"][i, m]]
            assert torch.allclose(mixes[i, m], v / v.norm())
        for m in range(3):
            assert int(parts["jq"][i, m]) in hardest[i]
            v = b[i, m] * qn[i] + (1 - b[i, m]) * queue[parts["jq"][i, m]]
            assert torch.allclose(mixes[i, 5 + m], v / v.norm())


def test_feature_queue_is_fifo_with_pointer_in_state_dict():
    fq = FeatureQueue(5, 2)
    assert set(fq.state_dict()) == {"queue", "ptr"}
    fq.push(torch.arange(6.0).view(3, 2))
    fq.push(torch.arange(6.0, 12.0).view(3, 2))
    assert int(fq.ptr) == 1
    assert fq.queue[:, 0].tolist() == [10.0, 2.0, 4.0, 6.0, 8.0]
    fq.push(torch.zeros(7, 2))
    assert int(fq.ptr) == 0 and float(fq.queue.abs().sum()) == 0


def test_nearest_neighbour_matches_loop():
    z, support = _rand(4, 3, seed=16), _rand(9, 3, seed=17)
    nn_ = nearest_neighbour(z, support)
    for i in range(4):
        best = max(range(9), key=lambda j: float(_norm(z[i]) @ _norm(support[j])))
        assert torch.equal(nn_[i], support[best])
