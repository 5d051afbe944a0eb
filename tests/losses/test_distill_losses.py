"""The clustering and self-distillation losses (issue 20): each against a slow float64 loop, against
lightly's implementation on the same inputs, its paper's special cases, and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

# lightly's losses, imported with the torchvision stand-in of test_refs (skipped without lightly)
from test_refs import lightly_loss  # noqa: F401 (a fixture, used by name)

from selfsup.losses import (
    Centre,
    bow_loss,
    bow_targets,
    dino_loss,
    ibot_patch_loss,
    koleo,
    sinkhorn,
    swav_loss,
    teacher_temperature,
    word_distances,
)
from selfsup.losses.msn import msn_loss, msn_targets, msn_terms
from selfsup.models.prototypes import spherical_kmeans

D64 = torch.float64


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- reference loops (float64, one number at a time) -----------------------------------------------


def ref_sinkhorn(s, eps, iters):
    b, k = len(s), len(s[0])
    q = [[math.exp(s[i][j] / eps) for j in range(k)] for i in range(b)]
    tot = sum(sum(r) for r in q)
    q = [[v / tot for v in r] for r in q]
    for _ in range(iters):
        for j in range(k):  # prototypes: mass 1/K each
            c = sum(q[i][j] for i in range(b))
            for i in range(b):
                q[i][j] /= c * k
        for i in range(b):  # samples: mass 1/B each
            r = sum(q[i])
            q[i] = [v / (r * b) for v in q[i]]
    return torch.tensor([[v * b for v in r] for r in q], dtype=D64)


def ref_ce(q, logits, t):
    """mean over rows of -sum_k q_k log softmax(logits / t)_k, by loops."""
    total = 0.0
    for qr, lr in zip(q.tolist(), logits.tolist(), strict=True):
        m = max(x / t for x in lr)
        lse = m + math.log(sum(math.exp(x / t - m) for x in lr))
        total += -sum(qk * (lk / t - lse) for qk, lk in zip(qr, lr, strict=True))
    return total / len(q)


def softmax_rows(x, t):
    out = []
    for r in x.tolist():
        m = max(v / t for v in r)
        e = [math.exp(v / t - m) for v in r]
        out.append([v / sum(e) for v in e])
    return torch.tensor(out, dtype=D64)


# -- Sinkhorn --------------------------------------------------------------------------------------


def test_sinkhorn_equals_the_loop_and_has_the_marginals():
    s = torch.randn(7, 5, generator=_g(), dtype=D64) * 0.3
    q = sinkhorn(s, 0.05, 3).double()
    assert torch.allclose(q, ref_sinkhorn(s.tolist(), 0.05, 3), atol=1e-6, rtol=1e-6)
    assert torch.allclose(q.sum(1), torch.ones(7, dtype=D64), atol=1e-6)  # every sample: 1
    q = sinkhorn(s, 0.05, 200).double()  # converged: every prototype gets B/K
    assert torch.allclose(q.sum(0), torch.full((5,), 7 / 5, dtype=D64), atol=1e-6)


def test_sinkhorn_equals_lightly_and_is_shift_invariant(lightly_loss):  # noqa: F811
    import sys

    lightly_sinkhorn = sys.modules["lightly.loss.swav_loss"].sinkhorn

    s = torch.randn(16, 10, generator=_g(1)) * 0.2
    ours = sinkhorn(s, 0.05, 3)
    assert torch.allclose(ours, lightly_sinkhorn(s, 3, 0.05), atol=1e-5)
    assert torch.allclose(sinkhorn(s + 3.0, 0.05, 3), ours, atol=1e-6)  # max subtraction is exact


def test_sinkhorn_of_equal_scores_is_uniform():
    q = sinkhorn(torch.zeros(6, 3), 0.05, 3)
    assert torch.allclose(q, torch.full((6, 3), 1 / 3))


# -- SwAV ------------------------------------------------------------------------------------------


def _swav_inputs(seed=0, v=4, b=6, k=5, queue=0):
    g = _g(seed)
    scores = [torch.randn(b, k, generator=g, dtype=D64) * 0.4 for _ in range(v)]
    qs = [torch.randn(queue, k, generator=g, dtype=D64) * 0.4 for _ in range(2)] if queue else None
    return scores, qs


@pytest.mark.parametrize("queue", [0, 9])
def test_swav_equals_the_loop(queue):
    scores, qs = _swav_inputs(queue=queue)
    got = swav_loss(scores, 2, 0.1, 0.05, 3, qs)
    want = 0.0
    for i in range(2):
        s = scores[i] if qs is None else torch.cat([qs[i], scores[i]])
        q = ref_sinkhorn(s.tolist(), 0.05, 3)[-len(scores[i]) :]
        want += sum(ref_ce(q, scores[v], 0.1) for v in range(4) if v != i) / 3
    assert float(got) == pytest.approx(want / 2, rel=1e-6)


@pytest.mark.parametrize("queue", [0, 9])
def test_swav_hands_out_the_codes_it_used(queue):
    """``codes_out`` receives each assigned view's targets (the queue's rows dropped), equal to the
    loop's Sinkhorn: cluster_distill's collapse monitor reads them instead of running it again."""
    scores, qs = _swav_inputs(queue=queue)
    codes: list[torch.Tensor] = []
    swav_loss(scores, 2, 0.1, 0.05, 3, qs, codes_out=codes)
    assert len(codes) == 2
    for i in range(2):
        s = scores[i] if qs is None else torch.cat([qs[i], scores[i]])
        want = ref_sinkhorn(s.tolist(), 0.05, 3)[-len(scores[i]) :]
        assert torch.allclose(codes[i], torch.tensor(want, dtype=D64), atol=1e-9)


@pytest.mark.parametrize("queue", [0, 9])
def test_swav_equals_lightly(queue, lightly_loss):  # noqa: F811
    SwaVLoss = lightly_loss.loss.SwaVLoss

    scores, qs = _swav_inputs(seed=3, queue=queue)
    scores = [s.float() for s in scores]
    qs = [q.float() for q in qs] if qs else None
    ref = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
    want = ref(scores[:2], scores[2:], qs)
    assert float(swav_loss(scores, 2, 0.1, 0.05, 3, qs)) == pytest.approx(float(want), rel=1e-5)


def test_swav_gradcheck_and_identical_views():
    scores, _ = _swav_inputs(v=3, b=4, k=3)
    # the codes carry no gradient (Sinkhorn under no_grad): check the one view never assigned
    x = scores[2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: swav_loss([*scores[:2], a], 2, 0.5, 0.5, 3), (x,))
    # all views equal and all scores equal: codes uniform, predictions uniform -> log K
    same = [torch.zeros(4, 3, dtype=D64) for _ in range(3)]
    assert float(swav_loss(same, 2)) == pytest.approx(math.log(3))


# -- DINO ------------------------------------------------------------------------------------------


def _dino_inputs(seed=0, v=4, g=2, b=5, k=6):
    gen = _g(seed)
    student = [torch.randn(b, k, generator=gen, dtype=D64) for _ in range(v)]
    teacher = [torch.randn(b, k, generator=gen, dtype=D64) for _ in range(g)]
    centre = torch.randn(1, k, generator=gen, dtype=D64) * 0.1
    return student, teacher, centre


def test_dino_equals_the_loop():
    student, teacher, centre = _dino_inputs()
    got = dino_loss(student, teacher, centre, 0.1, 0.04)
    terms = []
    for i, t in enumerate(teacher):
        p = softmax_rows(t - centre, 0.04)
        terms += [ref_ce(p, s, 0.1) for v, s in enumerate(student) if v != i]
    assert float(got) == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_dino_equals_lightly_with_its_centre(lightly_loss):  # noqa: F811
    DINOLoss = lightly_loss.loss.DINOLoss

    student, teacher, centre = _dino_inputs(seed=2)
    student, teacher, centre = (
        [s.float() for s in student],
        [t.float() for t in teacher],
        centre.float(),
    )
    ref = DINOLoss(output_dim=6, teacher_temp=0.04, student_temp=0.1, center_momentum=0.9)
    ref.center.copy_(centre.view(1, 1, -1))
    want = ref(teacher, student, teacher_temp=0.04)
    assert float(dino_loss(student, teacher, centre, 0.1, 0.04)) == pytest.approx(
        float(want), rel=1e-5
    )
    ours = Centre(6, 0.9)
    ours.centre.copy_(centre)
    ours.update(torch.cat(teacher))
    assert torch.allclose(ours.centre, ref.center.view(1, -1), atol=1e-6)


def test_dino_special_cases_and_gradcheck():
    # a uniform teacher against uniform students: log K; a student equal to the sharp teacher
    flat = [torch.zeros(3, 4, dtype=D64) for _ in range(3)]
    assert float(dino_loss(flat, flat[:2], torch.zeros(1, 4, dtype=D64))) == pytest.approx(
        math.log(4)
    )
    student, teacher, centre = _dino_inputs(v=3, b=3, k=4)
    xs = [s.clone().requires_grad_(True) for s in student]
    assert torch.autograd.gradcheck(lambda *a: dino_loss(list(a), teacher, centre, 0.5, 0.2), xs)
    # the teacher gets no gradient
    t = [x.clone().requires_grad_(True) for x in teacher]
    dino_loss(xs, t, centre).backward()
    assert all(x.grad is None for x in t)


def test_centre_and_temperature_schedule():
    c = Centre(3, momentum=0.9)
    c.update(torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    assert torch.allclose(c.centre, torch.tensor([[0.2, 0.2, 0.2]]))
    assert teacher_temperature(0, 10, 0.04, 0.07) == pytest.approx(0.04)
    assert teacher_temperature(5, 10, 0.04, 0.07) == pytest.approx(0.055)
    assert (
        teacher_temperature(10, 10, 0.04, 0.07) == teacher_temperature(99, 10, 0.04, 0.07) == 0.07
    )
    assert teacher_temperature(0, 0, 0.04, 0.07) == 0.07


# -- iBOT ------------------------------------------------------------------------------------------


def test_ibot_patch_equals_the_loop_and_lightly(lightly_loss):  # noqa: F811
    IBOTPatchLoss = lightly_loss.loss.IBOTPatchLoss

    gen = _g(4)
    b, h, w, k = 3, 2, 3, 5
    s = torch.randn(b, h * w, k, generator=gen, dtype=D64)
    t = torch.randn(b, h * w, k, generator=gen, dtype=D64)
    mask = torch.rand(b, h * w, generator=gen) < 0.5
    mask[0] = False  # an image with nothing masked contributes 0 (the clamp at 1)
    centre = torch.randn(1, k, generator=gen, dtype=D64) * 0.1
    got = ibot_patch_loss(s, t, mask, centre, 0.1, 0.07)
    want = 0.0
    for i in range(b):
        m = mask[i]
        if m.any():
            p = softmax_rows(t[i][m] - centre, 0.07)
            want += ref_ce(p, s[i][m], 0.1)  # the mean over this image's masked patches
    assert float(got) == pytest.approx(want / b, rel=1e-6)
    ref = IBOTPatchLoss(output_dim=k, teacher_temp=0.07, student_temp=0.1)
    ref.center.center.copy_(centre.float().view(ref.center.center.shape))
    mk = mask.view(b, h, w)
    want_l = ref(t.float()[mask], s.float()[mask], mk)
    assert float(got) == pytest.approx(float(want_l), rel=1e-5)
    x = s.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ibot_patch_loss(a, t, mask, centre, 0.5, 0.2), (x,))


# -- KoLeo -----------------------------------------------------------------------------------------


def test_koleo_equals_the_loop_lightly_and_its_special_case(lightly_loss):  # noqa: F811
    KoLeoLoss = lightly_loss.loss.KoLeoLoss

    z = torch.randn(7, 4, generator=_g(5), dtype=D64)
    zn = F.normalize(z, dim=1).tolist()
    want = 0.0
    for i, a in enumerate(zn):
        j = max(
            (j for j in range(len(zn)) if j != i),
            key=lambda j: sum(x * y for x, y in zip(a, zn[j], strict=True)),
        )
        d = math.sqrt(sum((x - y + 1e-8) ** 2 for x, y in zip(a, zn[j], strict=True)))
        want += -math.log(d + 1e-8)
    assert float(koleo(z)) == pytest.approx(want / len(zn), rel=1e-6)
    assert float(koleo(z.float())) == pytest.approx(float(KoLeoLoss()(z.float())), rel=1e-5)
    # three points at 120 degrees on a circle: each neighbour is at distance sqrt(3)
    tri = torch.tensor([[math.cos(a), math.sin(a)] for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)])
    assert float(koleo(tri.double())) == pytest.approx(-math.log(math.sqrt(3)), rel=1e-6)
    x = z[:4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(koleo, (x,))


# -- OBoW ------------------------------------------------------------------------------------------


def test_bow_targets_equal_the_loop_and_harden():
    gen = _g(6)
    f = torch.randn(2, 3, 4, generator=gen, dtype=D64)
    w = torch.randn(5, 4, generator=gen, dtype=D64)
    d = word_distances(f, w).double()
    want = []
    for b in range(2):
        codes = []
        for j in range(3):
            dl = [sum((f[b, j, c] - w[k, c]) ** 2 for c in range(4)).item() for k in range(5)]
            e = [math.exp(-(10 / 0.7) * x) for x in dl]
            codes.append([x / sum(e) for x in e])
        y = [max(codes[j][k] for j in range(3)) for k in range(5)]
        want.append([v / sum(y) for v in y])
    got = bow_targets(d, 10.0, 0.7).double()
    assert torch.allclose(got, torch.tensor(want, dtype=D64), atol=1e-6)
    hard = bow_targets(d, 1e4, 1.0)  # a huge inverse temperature: the nearest words, counted once
    nearest = d.argmin(-1)
    for b in range(2):
        words = set(nearest[b].tolist())
        assert torch.allclose(
            hard[b][list(words)], torch.full((len(words),), 1 / len(words), dtype=hard.dtype)
        )


def test_bow_loss_is_the_kl_divergence():
    gen = _g(7)
    logits = torch.randn(3, 5, generator=gen, dtype=D64, requires_grad=True)
    t = torch.softmax(torch.randn(3, 5, generator=gen, dtype=D64), 1)
    t[0, 2] = 0
    t = t / t.sum(1, keepdim=True)
    want = F.kl_div(F.log_softmax(logits, 1), t, reduction="batchmean")
    assert float(bow_loss(logits, t)) == pytest.approx(float(want), rel=1e-9)
    assert float(bow_loss(torch.log(t + 1e-300), t)) == pytest.approx(0.0, abs=1e-9)
    assert torch.autograd.gradcheck(lambda a: bow_loss(a, t), (logits,))


# -- k-means ---------------------------------------------------------------------------------------


def test_spherical_kmeans_finds_separated_clusters():
    gen = _g(8)
    centres = F.normalize(torch.randn(3, 8, generator=gen), dim=1) * 5
    x = F.normalize(
        torch.cat([c + 0.1 * torch.randn(20, 8, generator=gen) for c in centres]), dim=1
    )
    for seed in range(3):  # a random start may put two centroids in one cluster: some do not
        c, a = spherical_kmeans(x, 3, 10, _g(seed))
        groups = [set(a[i * 20 : (i + 1) * 20].tolist()) for i in range(3)]
        if all(len(g) == 1 for g in groups) and len(set().union(*groups)) == 3:
            break
    else:
        raise AssertionError("no start recovered the three clusters")
    assert torch.allclose(c.norm(dim=1), torch.ones(3))
    for k in range(3):  # converged: each centroid is the normalised mean of its members
        assert torch.allclose(c[k], F.normalize(x[a == k].mean(0), dim=0), atol=1e-6)
    with pytest.raises(ValueError):
        spherical_kmeans(x[:2], 3)


# -- MSN -------------------------------------------------------------------------------------------


def ref_msn(anchors, targets, protos, tau, sharpen_t, iters, lam):
    """MSN's loss by loops in float64, from the formula (normalise, prototype softmax, sharpen,
    Sinkhorn on the probabilities as in facebookresearch/msn src/losses.py, cross-entropy averaged
    over every anchor, me-max = sum pbar log pbar + log K)."""

    def unit(r):
        n = math.sqrt(sum(v * v for v in r))
        return [v / n for v in r]

    a = [unit(r) for r in anchors.tolist()]
    t = [unit(r) for r in targets.tolist()]
    q = [unit(r) for r in protos.tolist()]
    b, k = len(t), len(q)

    def probs(z, temp):
        s = [sum(x * y for x, y in zip(z, c, strict=True)) / temp for c in q]
        m = max(s)
        e = [math.exp(v - m) for v in s]
        return [v / sum(e) for v in e]

    pt = []
    for z in t:
        p = [v ** (1 / sharpen_t) for v in probs(z, tau)]
        pt.append([v / sum(p) for v in p])
    if iters:
        tot = sum(sum(r) for r in pt)
        pt = [[v / tot for v in r] for r in pt]
        for _ in range(iters):
            for j in range(k):
                c = sum(pt[i][j] for i in range(b))
                for i in range(b):
                    pt[i][j] /= c * k
            for i in range(b):
                r = sum(pt[i])
                pt[i] = [v / (r * b) for v in pt[i]]
        pt = [[v * b for v in r] for r in pt]
    pa = [probs(z, tau) for z in a]
    ce = -sum(
        sum(pt[i % b][j] * math.log(pa[i][j]) for j in range(k)) for i in range(len(a))
    ) / len(a)
    mean = [sum(p[j] for p in pa) / len(pa) for j in range(k)]
    return ce + lam * (sum(m * math.log(m) for m in mean) + math.log(k))


@pytest.mark.parametrize("iters, lam, views", [(3, 1.0, 2), (0, 0.5, 1), (5, 0.0, 3)])
def test_msn_equals_the_loop(iters, lam, views):
    gen = _g(7)
    b, d, k = 4, 5, 6
    a = torch.randn(views * b, d, generator=gen, dtype=D64)
    t = torch.randn(b, d, generator=gen, dtype=D64)
    q = torch.randn(k, d, generator=gen, dtype=D64)
    got = msn_loss(a, t, q, 0.1, 0.25, iters, lam)
    assert float(got) == pytest.approx(ref_msn(a, t, q, 0.1, 0.25, iters, lam), rel=1e-6)


def test_msn_equals_lightly(lightly_loss):  # noqa: F811
    MSNLoss = lightly_loss.loss.MSNLoss
    gen = _g(8)
    b, d, k = 8, 16, 10
    a = torch.randn(3 * b, d, generator=gen)
    t = torch.randn(b, d, generator=gen)
    q = torch.randn(k, d, generator=gen)
    for iters, lam in [(3, 1.0), (0, 0.3)]:
        ref = MSNLoss(temperature=0.1, sinkhorn_iterations=iters, regularization_weight=lam)
        want = ref(a, t, q, target_sharpen_temperature=0.25)
        got = msn_loss(a, t, q, 0.1, 0.25, iters, lam)
        assert float(got) == pytest.approx(float(want), rel=1e-5)


def test_msn_special_cases_and_gradcheck():
    gen = _g(9)
    k, d = 4, 4
    q = torch.eye(k, d, dtype=D64)
    # every target and anchor on its own prototype, each used once: me-max is 0, and at a small
    # temperature the cross-entropy (and so the loss) goes to 0
    z = torch.eye(k, d, dtype=D64)
    ce, reg = msn_terms(z, z, q, 0.01, 0.25, 3)
    assert float(reg) == pytest.approx(0.0, abs=1e-12) and float(ce) < 1e-6
    # every anchor on the same prototype: me-max reaches log K
    _, reg = msn_terms(z[:1].repeat(k, 1), z, q, 1e-3, 0.25, 3)
    assert float(reg) == pytest.approx(math.log(k), rel=1e-6)
    # Sinkhorn's marginals: each target sums to 1 (exactly, the last step), each prototype gets
    # B / K of the mass in the limit, and 3 iterations already move the masses towards it
    t = torch.randn(8, d, generator=gen, dtype=D64)
    c = torch.randn(k, d, generator=gen, dtype=D64)
    even = torch.full((k,), 8 / k, dtype=D64)
    gap = [(msn_targets(t, c, 0.1, 0.25, n).sum(dim=0) - even).abs().max() for n in (0, 3)]
    assert torch.allclose(msn_targets(t, c, 0.1, 0.25, 3).sum(dim=1), torch.ones(8, dtype=D64))
    assert gap[0] > gap[1]
    soft = msn_targets(t, c, 1.0, 1.0, 200)  # soft targets: Sinkhorn converges in 200 steps
    assert torch.allclose(soft.sum(dim=0), even) and torch.allclose(
        soft.sum(dim=1), torch.ones(8, dtype=D64)
    )
    # the gradient of the anchors (the targets, built from the prototypes too, carry none: the
    # authors compute them under no_grad, so a finite difference in the prototypes would differ)
    a = torch.randn(8, d, generator=gen, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: msn_loss(x, t[:4], c, 0.5, 0.5, 3), (a,))
