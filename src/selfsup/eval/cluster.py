"""Clustering of embeddings: k-means, scored against the labels by NMI and ARI.

NMI (normalised mutual information, arithmetic normalisation) and ARI (adjusted Rand index) are
both 1 for a clustering equal to the labels up to renaming, and about 0 for a random one.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def nmi(labels, clusters) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(_np(labels), _np(clusters)))


def ari(labels, clusters) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(_np(labels), _np(clusters)))


def kmeans(features, n_clusters: int, seed: int = 0, normalize: bool = True) -> np.ndarray:
    """Cluster assignments of k-means (k-means++ init, 10 restarts) on (L2-normalised) features."""
    from sklearn.cluster import KMeans

    x = _np(features).astype(np.float64)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    return km.fit_predict(x)


def cluster_scores(
    features, labels, n_clusters: int | None = None, seed: int = 0
) -> dict[str, float]:
    """``{"nmi", "ari"}`` of k-means with as many clusters as classes (by default)."""
    y = _np(labels)
    k = n_clusters or len(np.unique(y))
    c = kmeans(features, min(k, len(y)), seed)
    return {"nmi": nmi(y, c), "ari": ari(y, c)}
