"""SCGC against the authors' definitions: gayanku/SCGC at commit
e604e6a2295b3a9eaeec1c944987d01f96a1cd30 (read for facts: ``train.py``: ``get_A_r_flex``,
``get_feature_dis``, ``Ncontrast``, ``target_distribution``, ``train_scgc``, ``train_scgc_trim``;
``models.py``: ``SCGC.forward``, ``SCGC_TRIM.forward``; ``utils.py``: ``load_graph``,
``normalize``).
Each reference below is a float64 numpy transcription written here from that reading.

(Not Liu et al.'s *Simple Contrastive Graph Clustering*, also abbreviated SCGC: the project's
``scgc`` is Kulatilleke et al.'s *Self-Supervised Contrastive Graph Clustering*, whose code is
gayanku/SCGC, so that is the reference.)

One difference was found and is pinned here rather than hidden: the authors' ``load_graph`` builds
the adjacency with ``scipy.sparse.coo_matrix`` from the edge file, which *adds up* repeated edges
and keeps a self-loop of the file on top of the ``+ I``; ``influence_targets`` treats the graph as
simple (a repeated edge or a self-loop counts once, like every graph encoder of the project). On
graphs without repeated edges or self-loops (the authors' files, Cora, the built-in graphs) the
two are equal, which is what the tests compare.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.data import load_source
from selfsup.losses.scgc import (
    cluster_kl,
    iac_loss,
    influence_targets,
    soft_assign,
    target_distribution,
)
from selfsup.methods.base import Batch
from selfsup.models.graph import GraphBatch, normalised_features
from selfsup.parts import assemble
from selfsup.resolve import resolve_config

# --- utils.py (load_graph, normalize) and train.py (get_A_r_flex)


def authors_adjacency(edges: np.ndarray, n: int) -> np.ndarray:
    """``load_graph``: a COO matrix of ones at the file's (source, target) rows (repeats add up),
    made symmetric by keeping the larger of ``A_ij`` and ``A_ji``, plus the identity, then each row
    divided by its sum (a zero row stays zero)."""
    a = np.zeros((n, n))
    np.add.at(a, (edges[:, 0], edges[:, 1]), 1.0)
    larger_t = (a.T > a).astype(float)
    a = a + a.T * larger_t - a * larger_t
    a = a + np.eye(n)
    rowsum = a.sum(1)
    with np.errstate(divide="ignore"):
        inv = 1.0 / rowsum
    inv[np.isinf(inv)] = 0.0
    return inv[:, None] * a


def authors_a_r(adj: np.ndarray, r: int, cumulative: bool) -> np.ndarray:
    """``get_A_r_flex``: ``A^r``, or ``A + A^2 + ... + A^r`` with ``cumulative`` (the authors'
    ``--influence``)."""
    power, label = adj, adj
    for _ in range(r - 1):
        power = power @ adj
        label = label + power if cumulative else power
    return label


# --- train.py (get_feature_dis, Ncontrast: Graph-MLP's loss, as SCGC uses it)


def authors_feature_dis(x: np.ndarray) -> np.ndarray:
    """Cosine similarities ``x_i . x_j / (|x_i| |x_j|)`` with the diagonal set to 0."""
    norms = np.sqrt((x**2).sum(1)).reshape(-1, 1)
    return (1 - np.eye(len(x))) * (x @ x.T) / (norms @ norms.T)


def authors_ncontrast(x_dis: np.ndarray, adj_label: np.ndarray, tau: float) -> float:
    """``-mean_i log( sum_j adj_ij e^{tau d_ij} / sum_j e^{tau d_ij} + 1e-8 )``."""
    e = np.exp(tau * x_dis)
    return float(-np.log((e * adj_label).sum(1) / e.sum(1) + 1e-8).mean())


# --- models.py (SCGC.forward: the Student-t soft assignment) and train.py (target_distribution,
# the KL term as F.kl_div(q.log(), p, reduction='batchmean'))


def authors_q(z: np.ndarray, mu: np.ndarray, v: float = 1.0) -> np.ndarray:
    q = 1.0 / (1.0 + ((z[:, None, :] - mu[None, :, :]) ** 2).sum(2) / v)
    q = q ** ((v + 1.0) / 2.0)
    return q / q.sum(1, keepdims=True)


def authors_target(q: np.ndarray) -> np.ndarray:
    weight = q**2 / q.sum(0)
    return weight / weight.sum(1, keepdims=True)


def authors_kl(q: np.ndarray, p: np.ndarray) -> float:
    return float((p * (np.log(p) - np.log(q))).sum() / len(q))


def _random_simple_graph(rng: np.random.Generator, n: int, m: int, both: bool) -> np.ndarray:
    """``m`` distinct undirected edges without self-loops, stored once or in both directions."""
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (4 * m, 2)) if a != b}
    und = sorted({(min(a, b), max(a, b)) for a, b in pairs})[:m]
    e = np.array([(b, a) if rng.random() < 0.5 else (a, b) for a, b in und])
    return np.concatenate([e, e[:, ::-1]]) if both else e


@pytest.mark.parametrize("both_directions", [False, True])
def test_influence_targets_equal_the_authors_adjacency_powers(both_directions):
    rng = np.random.default_rng(0)
    n = 12
    edges = _random_simple_graph(rng, n, 15, both_directions)
    adj = authors_adjacency(edges, n)
    ei = torch.as_tensor(edges.T.copy())
    for r in (1, 2, 3):
        for cumulative in (False, True):
            got = influence_targets(ei, n, r, cumulative).double().numpy()
            np.testing.assert_allclose(got, authors_a_r(adj, r, cumulative), atol=1e-6, rtol=0)
    # an isolated node (no edges at all): its row of A~ is its self-loop alone
    lone = influence_targets(torch.as_tensor(edges.T.copy()), n + 1, 2).numpy()
    np.testing.assert_allclose(lone[n], np.eye(n + 1)[n], atol=1e-7)


def test_repeated_edges_and_self_loops_count_once_here_but_add_up_in_the_authors_graph():
    """The one difference found (see the module docstring): pinned so a change is deliberate."""
    n = 4
    simple = np.array([[0, 1], [1, 2], [2, 3]])
    multi = np.concatenate([simple, [[0, 1], [2, 2]]])  # a repeated edge and a self-loop
    ours_simple = influence_targets(torch.as_tensor(simple.T.copy()), n).double().numpy()
    ours_multi = influence_targets(torch.as_tensor(multi.T.copy()), n).double().numpy()
    np.testing.assert_allclose(ours_multi, ours_simple, atol=1e-7)
    np.testing.assert_allclose(ours_simple, authors_adjacency(simple, n), atol=1e-7)
    assert np.abs(authors_adjacency(multi, n) - ours_multi).max() > 0.1


def test_iac_equals_the_authors_ncontrast_on_random_embeddings():
    rng = np.random.default_rng(1)
    n = 10
    adj = authors_adjacency(_random_simple_graph(rng, n, 14, True), n)
    z = rng.standard_normal((n, 6))
    for r, cumulative in ((1, False), (2, False), (3, True)):
        w = authors_a_r(adj, r, cumulative)
        for tau in (0.25, 1.0, 2.0):
            ref = authors_ncontrast(authors_feature_dis(z), w, tau)
            got = float(iac_loss(torch.as_tensor(z), torch.as_tensor(w), tau))
            assert got == pytest.approx(ref, abs=1e-10), (r, cumulative, tau)
    # the scale of an embedding does not matter (cosine similarities)
    w = authors_a_r(adj, 2, False)
    scaled = z * rng.uniform(0.1, 10.0, (n, 1))
    assert float(iac_loss(torch.as_tensor(scaled), torch.as_tensor(w), 0.5)) == pytest.approx(
        authors_ncontrast(authors_feature_dis(z), w, 0.5), abs=1e-10
    )


def test_iac_special_cases_of_the_authors_loss():
    rng = np.random.default_rng(2)
    n = 9
    z = torch.as_tensor(rng.standard_normal((n, 4)))
    adj = authors_adjacency(_random_simple_graph(rng, n, 12, False), n)
    # tau = 0: every e^{tau s} is 1, so node i's term is -log(sum_j W_ij / N): log N for the
    # row-stochastic A~^r, log(N / r) for the cumulative A~ + ... + A~^r (the 1e-8 inside the
    # log, as in the authors' Ncontrast, kept exactly)
    assert float(iac_loss(z, torch.as_tensor(authors_a_r(adj, 2, False)), 0.0)) == pytest.approx(
        -np.log(1 / n + 1e-8), abs=1e-12
    )
    assert float(iac_loss(z, torch.as_tensor(authors_a_r(adj, 3, True)), 0.0)) == pytest.approx(
        -np.log(3 / n + 1e-8), abs=1e-12
    )
    # a graph without edges: A~ = I, and the self-similarity is zeroed (e^0 = 1) in the authors'
    # get_feature_dis, so node i's term is log sum_j e^{tau s_ij}
    eye = authors_adjacency(np.zeros((0, 2), dtype=int), n)
    np.testing.assert_allclose(eye, np.eye(n))
    tau = 0.7
    ref = float(np.log(np.exp(tau * authors_feature_dis(z.numpy())).sum(1)).mean())
    assert float(iac_loss(z, torch.as_tensor(eye), tau)) == pytest.approx(ref, abs=1e-7)
    assert authors_ncontrast(authors_feature_dis(z.numpy()), eye, tau) == pytest.approx(
        ref, abs=1e-7
    )


def test_cluster_head_equals_the_authors_soft_assignment_target_and_kl():
    rng = np.random.default_rng(3)
    z, mu = rng.standard_normal((11, 5)), rng.standard_normal((4, 5))
    for v in (1.0, 2.5):
        q = soft_assign(torch.as_tensor(z), torch.as_tensor(mu), v)
        np.testing.assert_allclose(q.numpy(), authors_q(z, mu, v), atol=1e-12, rtol=0)
    q = authors_q(z, mu)
    p = target_distribution(torch.as_tensor(q))
    np.testing.assert_allclose(p.numpy(), authors_target(q), atol=1e-12, rtol=0)
    got = float(cluster_kl(torch.as_tensor(q), p))
    assert got == pytest.approx(authors_kl(q, authors_target(q)), abs=1e-12)


@pytest.mark.parametrize(
    "variant,order,tau,alpha,beta",
    [("scgc", 2, 0.25, 1.0, 0.1), ("scgc_star", 3, 0.5, 2.0, 0.3)],
)
def test_an_scgc_step_is_the_authors_objective(variant, order, tau, alpha, beta):
    """``train_scgc`` (variant scgc: ``beta KL + alpha Ncontrast + MSE(x_bar, data)``) and
    ``train_scgc_trim`` (SCGC*: no reconstruction) with ``--influence`` for SCGC*, on the same
    embeddings, centres and decoder output. P is the target of the current Q (the authors
    recompute it every epoch, before the step, from the same weights). The reconstruction target
    is the encoder's (row-normalised) input: the documented deviation from the authors' raw
    features."""
    tr = load_source("karate").train
    cfg = resolve_config(
        method="scgc",
        data="karate",
        batch_size=34,
        overrides=[
            "eval.report=false",
            "eval.diagnostics=false",
            "train.progress=none",
            f"params.variant={variant}",
            f"params.order={order}",
            f"params.tau={tau}",
            f"params.alpha={alpha}",
            f"params.beta={beta}",
            "params.pretrain_epochs=0",
            "params.n_clusters=4",
        ],
    )
    parts = assemble(cfg, tr, torch.device("cpu"))
    m = parts.method
    torch.manual_seed(0)
    m.eval()
    x = parts.x[torch.arange(34)]
    views = parts.views(x)
    # spread the untrained embeddings and put the centres among them, so that Q is far from
    # uniform and the KL term weighs in the comparison (at initialisation it is about 1e-5)
    last = [mod for mod in m.encoder.modules() if isinstance(mod, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(30.0)
        m.centers.copy_(m.encoder(views[0]).float()[[0, 9, 20, 33]])
    loss, logs = m(views, Batch(x, torch.arange(34)))

    v = views[0]
    with torch.no_grad():
        z = m.encoder(v).float()
        x_bar = m.decoder(z).double().numpy() if m.decoder is not None else None
        data = normalised_features(m.encoder, v).double().numpy()
    assert isinstance(v, GraphBatch)
    edges = v.edge_index.t().numpy()
    w = authors_a_r(authors_adjacency(edges, v.num_nodes), order, variant == "scgc_star")
    zd, mu = z.double().numpy(), m.centers.detach().double().numpy()
    q = authors_q(zd, mu)
    kl = authors_kl(q, authors_target(q))
    nc = authors_ncontrast(authors_feature_dis(zd), w, tau)
    ref = beta * kl + alpha * nc
    if variant == "scgc":
        assert x_bar is not None
        ref += float(((x_bar - data) ** 2).mean())
    else:
        assert x_bar is None  # SCGC* trains without the decoder
    assert kl > 0.05  # the KL term is not negligible
    assert logs["iac"] == pytest.approx(nc, rel=1e-5)
    assert logs["kl"] == pytest.approx(kl, rel=1e-4)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-5)
