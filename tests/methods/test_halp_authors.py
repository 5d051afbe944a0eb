"""HaLP against the authors' definitions: anshulbshah/HaLP (read for facts):

- ``moco/generator.py`` at commit dcfb27fdf5c0f5ad98dfb8dffa0a63d096eac52c
  (``pos_generator``, ``generate_positives_using_mixup``; the version at 57b4a11 differs only in
  how it parses ``--lambda_pos``);
- ``moco/builder_single_modality_halp.py`` at commit 57b4a11b539d0bf349c1f1def222574274d52a77
  (``MoCo.forward``: the MoCo logits, the "good positives" mask and ``loss_pn``;
  ``update_prototypes``: the newest ``queue_els_for_prototypes`` entries of the queue);
- ``pretrain_moco_single_modality.py`` at commit 5c1c8b520154eeb6659535647c868237b77394fc (the
  defaults: 20 prototypes, ``num_closest_to_ignore_positives`` 20, ``skip_closest_positives`` 1,
  ``lambda_pos`` 0.8, ``mu`` 1; the step's loss ``CE(logits) + pn_loss``).

Each reference below is a float64 numpy transcription written here from that reading. The authors'
random draws (the candidate prototype of each positive, ``np.random.choice``, and its hardness
``zero_one ~ U(0, lambda_pos)``) are inputs of the transcription; the tests give it the draws the
project made (the target prototypes it returns and ``1 - t / t_max``) and check, separately, that
those draws follow the authors' distributions.

Not transcribed: the authors' ``lambda_pos == 1000`` switch (``t = t_max - 0.01``, no draw), which
the project has no setting for, and the clustering (geomstats' Riemannian k-means there, the
project's spherical k-means here: a documented deviation, docs/methods/halp.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.losses.halp import halp_loss, halp_positives
from selfsup.methods import halp as halp_module
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder

# --- moco/generator.py: pos_generator


def authors_candidates(sim: np.ndarray, num_to_ignore: int, skip: int) -> tuple[np.ndarray, ...]:
    """Prototype indices sorted by similarity, low to high; the candidates are the slice
    ``[-num_to_ignore - skip : -skip]`` of that order (the most similar ``skip`` left out), and the
    anchor's own prototype ``p0`` is the last (most similar) one."""
    inds = np.argsort(sim, axis=1, kind="stable")
    return inds[:, -num_to_ignore - skip : -skip], inds[:, -1]


# --- moco/generator.py: generate_positives_using_mixup


def authors_mixup(
    prototypes: np.ndarray,
    anchor: np.ndarray,
    target: np.ndarray,
    p0_idx: np.ndarray,
    zero_one: np.ndarray,
) -> dict[str, np.ndarray]:
    """For each anchor (B, D) and each of its draws (B, Ng): the target prototype ``p``, the
    anchor's own ``p0``, ``K = (1 - p.p0) / (k.(p0 - p) + 1e-8)``, ``omega = acos(p.k)``,
    ``max_t = atan(sin omega / (K + cos omega + 1e-8)) / (omega + 1e-8)``,
    ``t = zero_one * 0 + (1 - zero_one) * max_t`` and the point
    ``sin((1 - t) omega) / (sin omega + 1e-8) k + sin(t omega) / (sin omega + 1e-8) p``,
    then (``pos_generator``) normalised."""
    k = np.repeat(anchor[:, None, :], target.shape[1], axis=1)
    p = prototypes[target]
    p0 = prototypes[np.repeat(p0_idx[:, None], target.shape[1], axis=1)]
    big_k = (1 - (p * p0).sum(-1)) / ((k * (p0 - p)).sum(-1) + 1e-8)
    omega = np.arccos((p * k).sum(-1))
    max_t = (1 / (omega + 1e-8)) * np.arctan(np.sin(omega) / (big_k + np.cos(omega) + 1e-8))
    min_t = np.zeros_like(max_t)
    t = zero_one * min_t + (1 - zero_one) * max_t
    a = np.sin((1 - t) * omega) / (np.sin(omega) + 1e-8)
    b = np.sin(t * omega) / (np.sin(omega) + 1e-8)
    g = a[..., None] * k + b[..., None] * p
    return {
        "raw": g,
        "normed": g / np.linalg.norm(g, axis=-1, keepdims=True),
        "t": t,
        "max_t": max_t,
    }


# --- moco/builder_single_modality_halp.py: MoCo.forward


def authors_good(anchor: np.ndarray, prototypes: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """A positive is good when its most similar prototype (top-1) is the anchor's."""
    own = np.argmax(anchor @ prototypes.T, axis=1)
    return np.argmax(gen @ prototypes.T, axis=-1) == own[:, None]


def authors_loss_pn(q: np.ndarray, gen: np.ndarray, good: np.ndarray, t: float, mu: float) -> float:
    """``-sum(log(exp(q . g / T)) * good) / (sum(good) + 1e-8) * mu``."""
    l_pos_gen = np.einsum("nc,nmc->nm", q, gen)
    return float(-(np.log(np.exp(l_pos_gen / t)) * good).sum() / (good.sum() + 1e-8) * mu)


def authors_moco_ce(q: np.ndarray, k: np.ndarray, queue: np.ndarray, t: float) -> float:
    """``CrossEntropy(cat([q.k, q.queue]) / T, 0)``: the queue (K, D) as the project stores it (the
    authors keep it transposed, D x K)."""
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ queue.T], axis=1) / t
    m = logits.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(1))
    return float((lse - logits[:, 0]).mean())


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _halp(**params: object) -> methods.Method:
    torch.manual_seed(0)
    enc = Encoder(build_backbone("convnet_small", 1, 16), [0.5], [0.25])
    ctx = methods.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=16, extra={"batch_size": 16}
    )
    return methods.build("halp", enc, {"queue_size": 64, "n_prototypes": 20, **params}, ctx)


@pytest.mark.parametrize(
    "n_protos,n_closest,skip", [(20, 20, 1), (12, 5, 1), (10, 3, 2), (6, 20, 1)]
)
def test_halp_draws_among_the_authors_candidates_uniformly(n_protos, n_closest, skip):
    """The authors' defaults (20 prototypes, 20 candidates, skip 1: the 19 others), fewer
    candidates than prototypes, and a larger skip."""
    rng = np.random.default_rng(0)
    k, protos = _unit(rng, 6, 16), _unit(rng, n_protos, 16)
    cand, _ = authors_candidates(k @ protos.T, n_closest, skip)
    n = 60 * cand.shape[1]
    out = halp_positives(
        torch.as_tensor(k),
        torch.as_tensor(protos),
        n,
        0.8,
        n_closest,
        skip,
        generator=torch.Generator().manual_seed(1),
    )
    target = out["target"].numpy()
    for i in range(len(k)):
        counts = np.array([(target[i] == c).sum() for c in cand[i]])
        assert counts.sum() == n  # every draw is one of the authors' candidates
        # np.random.choice over the candidates, with replacement: each about n / c times
        assert counts.min() > 0.5 * 60 and counts.max() < 1.5 * 60, counts


@pytest.mark.parametrize("hardness", [0.8, 0.3, 1.0])
def test_halp_positives_equal_the_authors_mixup(hardness):
    rng = np.random.default_rng(2)
    k, protos = _unit(rng, 8, 16), _unit(rng, 20, 16)
    out = halp_positives(
        torch.as_tensor(k),
        torch.as_tensor(protos),
        300,
        hardness,
        20,
        1,
        generator=torch.Generator().manual_seed(3),
    )
    target, t, t_max = out["target"].numpy(), out["t"].numpy(), out["t_max"].numpy()
    _, p0 = authors_candidates(k @ protos.T, 20, 1)
    zero_one = 1 - t / t_max  # the draw the project made, in the authors' terms
    # the authors draw zero_one ~ U(0, lambda_pos): inside the range, spread over it
    assert zero_one.min() >= -1e-9 and zero_one.max() <= hardness + 1e-9
    assert zero_one.mean() == pytest.approx(hardness / 2, abs=0.02 * max(hardness, 0.1) + 0.005)
    assert zero_one.max() > 0.95 * hardness and zero_one.min() < 0.05 * hardness
    ref = authors_mixup(protos, k, target, p0, zero_one)
    np.testing.assert_allclose(t_max, ref["max_t"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(out["positives"].numpy(), ref["normed"], atol=1e-9, rtol=0)
    good = authors_good(k, protos, ref["normed"])
    assert np.array_equal(out["good"].numpy(), good)
    assert 0 < good.mean() < 1  # both kinds occur, so the mask is tested


def test_halp_hardest_positives_are_the_authors_boundary_points():
    """``hardness = 0`` (``zero_one = 0``): every positive at ``t_max``, where the authors' point
    is as similar to its target prototype as to the anchor's own (the paper's closed form)."""
    rng = np.random.default_rng(4)
    k, protos = _unit(rng, 5, 8), _unit(rng, 7, 8)
    out = halp_positives(
        torch.as_tensor(k),
        torch.as_tensor(protos),
        40,
        0.0,
        20,
        1,
        generator=torch.Generator().manual_seed(5),
    )
    target = out["target"].numpy()
    _, p0 = authors_candidates(k @ protos.T, 20, 1)
    ref = authors_mixup(protos, k, target, p0, np.zeros(target.shape))
    np.testing.assert_allclose(out["t"].numpy(), ref["max_t"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(out["positives"].numpy(), ref["normed"], atol=1e-9, rtol=0)
    g = ref["normed"]
    sim_target = (g * protos[target]).sum(-1)
    sim_own = (g * protos[p0][:, None, :]).sum(-1)
    np.testing.assert_allclose(sim_target, sim_own, atol=1e-6)


def test_halp_loss_equals_the_authors_loss_pn():
    rng = np.random.default_rng(6)
    q, gen = _unit(rng, 7, 12), _unit(rng, 7, 9, 12)
    good = rng.random((7, 9)) < 0.4
    for t, mu in ((0.07, 2.0), (0.2, 1.0)):
        got = mu * float(
            halp_loss(torch.as_tensor(q), torch.as_tensor(gen), torch.as_tensor(good), t)
        )
        assert got == pytest.approx(authors_loss_pn(q, gen, good, t, mu), abs=1e-9)
    # no good positive: the authors' term is 0 (0 / 1e-8), not NaN
    none = np.zeros((7, 9), dtype=bool)
    assert float(
        halp_loss(torch.as_tensor(q), torch.as_tensor(gen), torch.as_tensor(none), 0.07)
    ) == pytest.approx(authors_loss_pn(q, gen, none, 0.07, 1.0), abs=0)


def test_a_halp_step_is_the_authors_objective(monkeypatch):
    """One step of the method against ``MoCo.forward`` with ``generate_this_step``: the MoCo
    cross-entropy on the queue as it was before the step, plus ``mu`` times ``loss_pn`` of the
    query against positives generated from the *key* and the current prototypes, at the MoCo
    temperature. Eval mode, so that query and key can be recomputed."""
    mu, temp = 2.0, 0.07
    m = _halp(n_positives=12, mu=mu, temperature=temp, hardness=0.8)
    rng = np.random.default_rng(7)
    with torch.no_grad():
        m.queue.queue.copy_(torch.as_tensor(_unit(rng, 64, 16), dtype=torch.float32))
        m.prototypes.copy_(torch.as_tensor(_unit(rng, 20, 16), dtype=torch.float32))
        m.has_prototypes.fill_(True)
    seen: dict[str, torch.Tensor] = {}
    real = halp_module.halp_positives

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.update(out)
        return out

    monkeypatch.setattr(halp_module, "halp_positives", spy)
    m.eval()
    g = torch.Generator().manual_seed(8)
    views = [torch.rand(16, 1, 8, 8, generator=g) for _ in range(2)]
    queue_before = m.queue.queue.clone().double().numpy()
    protos = m.prototypes.clone().double().numpy()
    loss, logs = m(views, methods.Batch(views[0], torch.arange(16)))
    with torch.no_grad():
        q = m.query(views[0]).double().numpy()
        k = m.key(views[1]).double().numpy()

    target = seen["target"].numpy()
    t, t_max = (seen[n].double().numpy() for n in ("t", "t_max"))
    _, p0 = authors_candidates(k @ protos.T, 20, 1)
    ref = authors_mixup(protos, k, target, p0, 1 - t / t_max)
    good = authors_good(k, protos, ref["normed"])
    assert np.array_equal(seen["good"].numpy(), good) and 0 < good.mean() < 1
    pn = authors_loss_pn(q, ref["normed"], good, temp, mu)
    ce = authors_moco_ce(q, k, queue_before, temp)
    assert mu * logs["halp_loss"] == pytest.approx(pn, rel=1e-4)
    assert float(loss.detach()) == pytest.approx(ce + pn, rel=1e-5)


def test_prototypes_come_from_the_authors_newest_queue_entries(monkeypatch):
    """``update_prototypes`` runs in ``MoCo.forward`` after ``_dequeue_and_enqueue``: it clusters
    the entries ``np.roll(arange(K), K - ptr)[-n:]`` of the queue, the ``n`` newest keys, the
    step's own keys among them."""
    m = _halp(proto_keys=24, update_every=1)
    rng = np.random.default_rng(9)
    with torch.no_grad():
        m.queue.queue.copy_(torch.as_tensor(_unit(rng, 64, 16), dtype=torch.float32))
        m.queue.ptr.fill_(50)  # the 16 new keys wrap around the end of the queue
        m.keys_seen.fill_(64)
    seen = []
    real = halp_module.spherical_kmeans

    def spy(x, *args, **kwargs):
        seen.append(x.clone())
        return real(x, *args, **kwargs)

    monkeypatch.setattr(halp_module, "spherical_kmeans", spy)
    g = torch.Generator().manual_seed(10)
    views = [torch.rand(16, 1, 8, 8, generator=g) for _ in range(2)]
    m.eval()
    m(views, methods.Batch(views[0], torch.arange(16)))
    m.after_step(0, 10)
    assert len(seen) == 1 and bool(m.has_prototypes)
    ptr = int(m.queue.ptr)
    assert ptr == (50 + 16) % 64
    newest = np.roll(np.arange(64), 64 - ptr)[-24:]
    want = m.queue.queue[torch.as_tensor(newest)]
    # the same rows, in any order (k-means does not depend on it beyond its seeding)
    key = lambda t: sorted(map(tuple, t.numpy().round(6).tolist()))  # noqa: E731
    assert key(seen[0]) == key(want)
    keys = m.key(views[1])
    assert all(any(torch.allclose(k, r) for r in seen[0]) for k in keys)  # this step's keys
