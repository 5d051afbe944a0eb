"""Anomaly detection scores: AUROC and AUPRC of a score where larger means more anomalous.

``one_class_auroc`` is the usual protocol on a labelled set: each class in turn is "normal", the
bank's samples of that class are the reference, a query's score is its mean cosine distance to its
``k`` nearest references, and the other classes are the anomalies; the AUROCs are averaged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def anomaly_scores(score, is_anomaly) -> dict[str, float]:
    """``{"auroc", "auprc"}`` of ``score`` (higher = more anomalous) against 0/1 ``is_anomaly``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = np.asarray(
        score.detach().cpu() if isinstance(score, torch.Tensor) else score, dtype=np.float64
    )
    a = np.asarray(
        is_anomaly.detach().cpu() if isinstance(is_anomaly, torch.Tensor) else is_anomaly
    )
    a = a.astype(bool)
    if a.all() or not a.any():
        raise ValueError("anomaly scores need both normal and anomalous samples")
    return {"auroc": float(roc_auc_score(a, s)), "auprc": float(average_precision_score(a, s))}


@torch.no_grad()
def knn_distance(reference: torch.Tensor, query: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Mean cosine distance of each query to its ``k`` nearest reference samples."""
    r = F.normalize(reference.float(), dim=1)
    q = F.normalize(query.float(), dim=1)
    sim = (q @ r.t()).topk(min(k, len(r)), dim=1).values
    return 1 - sim.mean(1)


@torch.no_grad()
def knn_distance_l2(reference: torch.Tensor, query: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Mean Euclidean distance of each query to its ``k`` nearest reference samples."""
    d = torch.cdist(query.float(), reference.float())
    return d.topk(min(k, len(reference)), dim=1, largest=False).values.mean(1)


def one_class_auroc(
    bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, k: int = 5
) -> dict[str, float]:
    """Mean AUROC/AUPRC over classes, each taken in turn as the normal class."""
    res = []
    for c in torch.unique(bank_y):
        ref = bank[bank_y == c]
        anomalous = query_y != c
        if len(ref) == 0 or bool(anomalous.all()) or not bool(anomalous.any()):
            continue
        res.append(anomaly_scores(knn_distance(ref, query, k), anomalous))
    if not res:
        raise ValueError("one-class evaluation needs at least two classes in the query set")
    return {m: float(np.mean([r[m] for r in res])) for m in ("auroc", "auprc")}


def classical_scores(
    bank: torch.Tensor, query: torch.Tensor, seed: int = 0
) -> dict[str, np.ndarray]:
    """Classical one-class detectors fitted on ``bank`` (normal rows only), scoring ``query``
    (higher = more anomalous): scikit-learn's IsolationForest (100 trees) and LocalOutlierFactor
    (novelty mode, 20 neighbours or fewer on a small bank), and the Euclidean distance to the
    bank's mean."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    b = np.asarray(bank.detach().cpu(), dtype=np.float64)
    q = np.asarray(query.detach().cpu(), dtype=np.float64)
    iso = IsolationForest(random_state=seed).fit(b)
    lof = LocalOutlierFactor(n_neighbors=max(1, min(20, len(b) - 1)), novelty=True).fit(b)
    return {
        "isolation_forest": -iso.score_samples(q),
        "lof": -lof.score_samples(q),
        "distance_to_mean": np.linalg.norm(q - b.mean(0, keepdims=True), axis=1),
    }


def one_class_eval(
    bank: torch.Tensor, query: torch.Tensor, is_anomaly, own_score=None, k: int = 5
) -> dict[str, float]:
    """The anomaly job's metrics for features of normal training samples (``bank``) and test
    samples (``query``): ``anomaly_knn_*`` from the mean cosine distance to the ``k`` nearest normal
    samples (as the ``anomaly`` protocol), ``anomaly_knn_l2_*`` from the mean Euclidean distance
    (which keeps how far a sample lies, lost by the cosine), ``anomaly_method_*`` from
    ``own_score(bank, query)`` when given (a method's own score), and
    ``anomaly_auroc``/``anomaly_auprc``: the method's score when it has one, else the kNN
    one."""
    out: dict[str, float] = {}
    knn = anomaly_scores(knn_distance(bank, query, k), is_anomaly)
    out["anomaly_knn_auroc"], out["anomaly_knn_auprc"] = knn["auroc"], knn["auprc"]
    l2 = anomaly_scores(knn_distance_l2(bank, query, k), is_anomaly)
    out["anomaly_knn_l2_auroc"], out["anomaly_knn_l2_auprc"] = l2["auroc"], l2["auprc"]
    main = knn
    if own_score is not None:
        main = anomaly_scores(own_score(bank, query), is_anomaly)
        out["anomaly_method_auroc"], out["anomaly_method_auprc"] = main["auroc"], main["auprc"]
    return {"anomaly_auroc": main["auroc"], "anomaly_auprc": main["auprc"], **out}
