"""Graph-only evaluation: spectral clustering of the adjacency (a baseline that sees no features)."""

from __future__ import annotations

import warnings

import numpy as np

from .cluster import ari, nmi


def spectral_scores(
    edge_index: np.ndarray, n: int, labels: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """``{"spectral_nmi", "spectral_ari"}``: scikit-learn's spectral clustering of the symmetrised
    adjacency (as a precomputed affinity) into as many clusters as classes, scored on the labelled
    nodes."""
    from scipy.sparse import coo_matrix
    from sklearn.cluster import SpectralClustering

    a = coo_matrix(
        (np.ones(edge_index.shape[1]), (edge_index[0], edge_index[1])), shape=(n, n)
    ).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    keep = np.flatnonzero(labels >= 0)
    k = len(np.unique(labels[keep]))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # "Graph is not fully connected": a graph with several components
        c = SpectralClustering(
            k, affinity="precomputed", random_state=seed, assign_labels="kmeans"
        ).fit_predict(a)
    return {"spectral_nmi": nmi(labels[keep], c[keep]), "spectral_ari": ari(labels[keep], c[keep])}
