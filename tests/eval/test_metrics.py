"""Each evaluation metric and diagnostic on constructed inputs with known answers."""

import math

import numpy as np
import pytest
import torch

from selfsup.errors import ConfigError
from selfsup.eval import anomaly, cluster, knn, linear_sgd, protocols, retrieval
from selfsup.eval import diagnostics as dg


def circle(n):
    a = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    return torch.stack([a.cos(), a.sin()], 1)


def test_uniformity_of_points_evenly_on_a_circle_matches_closed_form():
    t = 2.0
    for n in (3, 8, 25):
        # pairs i<j at angle 2*pi*k/n: ||x_i - x_j||^2 = 2 - 2 cos(2*pi*k/n); each k occurs n times
        # / 2
        d2 = 2 - 2 * np.cos(2 * np.pi * np.arange(1, n) / n)
        expected = math.log(np.mean(np.exp(-t * d2)))
        assert dg.uniformity(circle(n), t) == pytest.approx(expected, abs=1e-9)
    # continuous limit: E exp(-2t(1 - cos)) = exp(-2t) I0(2t)
    assert dg.uniformity(circle(2000), t) == pytest.approx(
        -2 * t + math.log(np.i0(2 * t)), abs=2e-3
    )
    # the uniform circle is more uniform than points bunched in a quarter of it
    bunched = circle(100)[:25]
    assert dg.uniformity(circle(100)) < dg.uniformity(bunched)


def test_alignment_known_values():
    z = torch.randn(10, 5, dtype=torch.float64)
    assert dg.alignment(z, 3 * z) == pytest.approx(0.0, abs=1e-12)
    assert dg.alignment(z, -z) == pytest.approx(4.0)  # antipodal unit vectors: ||a - b||^2 = 4
    e = torch.eye(2, dtype=torch.float64)
    assert dg.alignment(e[:1], e[1:]) == pytest.approx(2.0)  # orthogonal


def test_effective_rank_of_rank_k_matrix():
    g = torch.Generator().manual_seed(0)
    q1, _ = torch.linalg.qr(torch.randn(50, 50, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    for k in (1, 3, 7, 16):
        z = q1[:, :k] @ q2[:k]  # k equal singular values
        assert dg.effective_rank(z) == pytest.approx(
            k, rel=1e-4
        )  # RankMe's eps=1e-7 adds ~2e-6 a zero
        assert dg.effective_rank(z, eps=0.0) == pytest.approx(k, rel=1e-9)
    z = torch.randn(50, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 16, generator=g, dtype=torch.float64
    )
    assert 1 < dg.effective_rank(z) <= 3 + 1e-4  # unequal singular values: at most the rank


def test_dim_std_spectrum_and_similarities():
    collapsed = torch.ones(20, 8, dtype=torch.float64)
    assert float(dg.dim_std(collapsed).max()) == pytest.approx(0.0, abs=1e-12)
    z = torch.randn(500, 4, dtype=torch.float64) @ torch.randn(4, 32, dtype=torch.float64)
    s = dg.spectrum(z)
    assert s[0] == pytest.approx(1.0) and float(s[4:].max()) < 1e-10  # rank 4 after centring
    pos, neg = dg.similarities(z[:10], z[:10])
    assert torch.allclose(pos, torch.ones(10, dtype=torch.float64))
    assert neg.shape == (90,)
    h = dg.histogram(neg, -1, 1, bins=10)
    assert sum(h["counts"]) == 90 and len(h["edges"]) == 11


def test_directpred_alignment():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(200, 6, generator=g, dtype=torch.float64)
    corr = f.t() @ f / 200
    s, u = torch.linalg.eigh(corr)
    w = u @ torch.diag(torch.sqrt(s / s.max())) @ u.t()  # DirectPred's predictor
    assert dg.directpred_alignment(w, corr) == pytest.approx(1.0, abs=1e-9)
    rnd = torch.randn(6, 6, generator=g, dtype=torch.float64)
    assert dg.directpred_alignment(rnd, corr) < 0.8


def test_nmi_ari_perfect_and_random():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 3000)
    perm = np.array([3, 0, 4, 1, 2])
    assert cluster.nmi(y, perm[y]) == pytest.approx(1.0)
    assert cluster.ari(y, perm[y]) == pytest.approx(1.0)
    rnd = rng.integers(0, 5, 3000)
    assert cluster.nmi(y, rnd) < 0.01
    assert abs(cluster.ari(y, rnd)) < 0.01
    centers = torch.eye(4, dtype=torch.float64) * 10
    labels = torch.arange(4).repeat_interleave(25)
    feats = centers[labels] + 0.1 * torch.randn(100, 4, dtype=torch.float64)
    r = cluster.cluster_scores(feats, labels)
    assert r["nmi"] == pytest.approx(1.0) and r["ari"] == pytest.approx(1.0)


def test_recall_at_k():
    z = torch.randn(30, 8)
    assert retrieval.paired_recall(z, z.clone()) == {
        "recall@1": 1.0,
        "recall@5": 1.0,
        "recall@10": 1.0,
    }
    r = retrieval.paired_recall(z, torch.randn(30, 8))
    assert r["recall@1"] <= r["recall@5"] <= r["recall@10"] <= 1
    # gallery row i matches query row (i+1) mod n: recall@1 is 0 unless queries are permuted back
    shifted = retrieval.paired_recall(z, z.roll(1, 0), ks=(1,))
    assert shifted["recall@1"] == 0.0
    y = torch.arange(30) % 3
    assert retrieval.label_recall(z, y, z, y, ks=(1,))["recall@1"] == 1.0
    with pytest.raises(ValueError):
        retrieval.paired_recall(z, z[:5])


def test_auroc_auprc():
    label = np.array([0, 0, 0, 1, 1])
    perfect = anomaly.anomaly_scores(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), label)
    assert perfect == {"auroc": 1.0, "auprc": 1.0}
    assert anomaly.anomaly_scores(-np.array([0.1, 0.2, 0.3, 0.8, 0.9]), label)["auroc"] == 0.0
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 4000)
    assert anomaly.anomaly_scores(rng.random(4000), a)["auroc"] == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError):
        anomaly.anomaly_scores([0.1, 0.2], [1, 1])
    centers = torch.eye(3) * 5
    yb, yq = torch.arange(3).repeat_interleave(10), torch.arange(3).repeat_interleave(5)
    bank, query = centers[yb] + 0.1 * torch.randn(30, 3), centers[yq] + 0.1 * torch.randn(15, 3)
    assert anomaly.one_class_auroc(bank, yb, query, yq)["auroc"] == pytest.approx(1.0)


def blobs(n_per=20, d=6, classes=4, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * 3
    y = torch.arange(classes).repeat_interleave(n_per)
    return centers[y] + noise * torch.randn(len(y), d, generator=g), y


def test_knn_sweep_consistent_with_knn_accuracy():
    xb, yb = blobs(seed=0, noise=2.0)
    xq, yq = blobs(n_per=10, seed=1, noise=2.0)
    r = knn.knn_sweep(xb, yb, xq, yq, ks=(1, 5, 20), ts=(0.05, 0.5))
    assert len(r["grid"]) == 6
    for cell in r["grid"]:
        ref = knn.knn_accuracy(xb, yb, xq, yq, cell["k"], cell["t"], topk=(1, 5))
        assert cell["query_top1"] == pytest.approx(ref["knn_top1"])
        assert cell["query_top5"] == pytest.approx(ref["knn_top5"])
        assert cell["query_top5"] >= cell["query_top1"]
    # the cell is chosen on the bank (leave-one-out), not on the query it scores
    assert r["bank_top1"] == max(c["bank_top1"] for c in r["grid"])


def test_sgd_linear_probe_separable():
    xb, yb = blobs()
    xq, yq = blobs(n_per=5)
    for norm in (True, False):
        r = linear_sgd.linear_probe_sgd(xb, yb, xq, yq, normalize=norm, epochs=30, batch_size=16)
        assert r["top1"] == 1.0 and r["top5"] == 1.0
    # normalisation makes the probe insensitive to the features' scale
    a = linear_sgd.linear_probe_sgd(xb, yb, xq, yq, epochs=5, batch_size=16)
    b = linear_sgd.linear_probe_sgd(xb * 1000, yb, xq * 1000, yq, epochs=5, batch_size=16)
    assert a == b


def test_protocol_registry(tiny_config):
    from selfsup.config import EvalConfig
    from selfsup.evaluation import evaluate_features

    xb, yb = blobs()
    xq, yq = blobs(n_per=5)
    ec = EvalConfig(knn_k=5, sgd_epochs=5)
    out = evaluate_features(xb, yb, xq, yq, ec, ["knn", "linear"])
    assert set(out) == {"knn_top1", "linear_top1"}  # summary.json keys stay as they were
    out = evaluate_features(
        xb,
        yb,
        xq,
        yq,
        ec,
        ["knn_sweep", "linear_sgd", "cluster", "retrieval", "anomaly", "fewshot"],
    )
    assert {
        "knn_sweep_top5",
        "linear_sgd_top1",
        "linear_sgd_raw_top1",
        "cluster_nmi",
        "retrieval_recall@1",
        "anomaly_auroc",
    } <= set(out)
    assert not any(
        k.startswith("fewshot") for k in out
    )  # needs an encoder: skipped on features alone
    with pytest.raises(ConfigError, match="unknown evaluation protocol 'nope'"):
        protocols.parse("knn,nope")
    with pytest.raises(ConfigError, match="needs the encoder"):
        protocols.run(["fewshot"], protocols.EvalInputs(xb, yb, xq, yq, ec))
