"""Weighted k-nearest-neighbour classification (Wu et al. 2018, *Unsupervised Feature Learning via
Non-Parametric Instance Discrimination*), as used by lightly's and solo-learn's benchmarks.

Features are L2-normalised; each query takes its ``k`` most cosine-similar bank samples, which vote
for their class with weight ``exp(s / t)``. Predictions are the classes with the largest summed votes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, num_classes: int,
                k: int = 200, t: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Class scores (Q, num_classes) for each query."""
    bank = F.normalize(bank.float(), dim=1)
    query = F.normalize(query.float(), dim=1)
    k = min(k, len(bank))
    out = []
    for i in range(0, len(query), chunk):
        sim = query[i:i + chunk] @ bank.t()
        w, idx = sim.topk(k, dim=1)
        w = (w / t).exp()
        votes = torch.zeros(len(w), num_classes, dtype=w.dtype, device=w.device)
        votes.scatter_add_(1, bank_y[idx], w)
        out.append(votes)
    return torch.cat(out)


def knn_accuracy(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor,
                 k: int = 200, t: float = 0.1, topk: tuple[int, ...] = (1,)) -> dict[str, float]:
    """Top-k accuracies of weighted kNN, e.g. ``{"knn_top1": 0.93}``."""
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    scores = knn_predict(bank, bank_y.long(), query, num_classes, k, t)
    return _topk(scores, query_y.long(), topk, "knn")


def _topk(scores: torch.Tensor, y: torch.Tensor, topk, prefix: str) -> dict[str, float]:
    out = {}
    rank = scores.argsort(dim=1, descending=True)
    for kk in topk:
        kk_eff = min(kk, scores.shape[1])
        out[f"{prefix}_top{kk}"] = float((rank[:, :kk_eff] == y[:, None]).any(dim=1).float().mean())
    return out
