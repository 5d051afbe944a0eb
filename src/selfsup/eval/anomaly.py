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

    s = np.asarray(score.detach().cpu() if isinstance(score, torch.Tensor) else score, dtype=np.float64)
    a = np.asarray(is_anomaly.detach().cpu() if isinstance(is_anomaly, torch.Tensor) else is_anomaly)
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


def one_class_auroc(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor,
                    query_y: torch.Tensor, k: int = 5) -> dict[str, float]:
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
