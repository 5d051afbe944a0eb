"""Retrieval: recall@k between two sets of embeddings.

Paired sets (image/text, two views, two modalities): row ``i`` of ``queries`` matches row ``i`` of
``gallery``; recall@k is the fraction of queries whose match is among their ``k`` most
cosine-similar gallery items. Labelled sets: a query is a hit when any of its ``k`` nearest
gallery items shares its label (the metric-learning Recall@k).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def _ranks(queries: torch.Tensor, gallery: torch.Tensor, kmax: int, chunk: int = 1024):
    q = F.normalize(queries.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    out = []
    for i in range(0, len(q), chunk):
        out.append((q[i : i + chunk] @ g.t()).topk(min(kmax, len(g)), dim=1).indices)
    return torch.cat(out)


def paired_recall(
    queries: torch.Tensor, gallery: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """``{"recall@1": ..., ...}`` for paired sets (query ``i`` matches gallery ``i``)."""
    if len(queries) != len(gallery):
        raise ValueError(
            f"paired retrieval needs sets of equal size, got {len(queries)} and {len(gallery)}"
        )
    top = _ranks(queries, gallery, max(ks))
    target = torch.arange(len(queries), device=top.device)[:, None]
    return {f"recall@{k}": float((top[:, :k] == target).any(1).float().mean()) for k in ks}


def label_recall(
    queries: torch.Tensor,
    query_y: torch.Tensor,
    gallery: torch.Tensor,
    gallery_y: torch.Tensor,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """``{"recall@1": ..., ...}``: a hit when one of the ``k`` nearest has the query's label."""
    top = _ranks(queries, gallery, max(ks))
    same = gallery_y.to(top.device)[top] == query_y.to(top.device)[:, None]
    return {f"recall@{k}": float(same[:, :k].any(1).float().mean()) for k in ks}
