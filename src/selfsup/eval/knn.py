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
        w = ((w - w[:, :1]) / t).exp()  # minus the row maximum: same vote ratios, no overflow
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


@torch.no_grad()
def knn_sweep(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor,
              ks: tuple[int, ...] | list[int] = (10, 20, 50, 100, 200),
              ts: tuple[float, ...] | list[float] = (0.02, 0.05, 0.07, 0.1, 0.2, 0.5),
              chunk: int = 1024) -> dict:
    """Weighted kNN over a grid of ``k`` and temperature ``t``, with top-1 and top-5 accuracy.

    The neighbours are searched once (for the largest ``k``) and every (k, t) cell reuses them, so
    the sweep costs about one kNN evaluation.

    Returns
    -------
    dict with ``top1``/``top5`` (the best cell, chosen by top-1 then top-5), ``k``, ``t`` of that
    cell and ``grid``: a list of ``{"k", "t", "top1", "top5"}`` for every cell.
    """
    if not ks or not ts:
        raise ValueError("knn_sweep needs at least one k and one temperature")
    bank_y, query_y = bank_y.long(), query_y.long()
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    bank = F.normalize(bank.float(), dim=1)
    query = F.normalize(query.float(), dim=1)
    kmax = min(max(ks), len(bank))
    sims, idxs = [], []
    for i in range(0, len(query), chunk):
        s, ix = (query[i:i + chunk] @ bank.t()).topk(kmax, dim=1)
        sims.append(s)
        idxs.append(ix)
    sim, lab = torch.cat(sims), bank_y[torch.cat(idxs)]
    grid = []
    for k in ks:
        kk = min(k, kmax)
        for t in ts:
            votes = torch.zeros(len(sim), num_classes, dtype=sim.dtype, device=sim.device)
            # subtract the row maximum before exp: the same votes up to a positive factor, no overflow
            w = ((sim[:, :kk] - sim[:, :1]) / t).exp()
            votes.scatter_add_(1, lab[:, :kk], w)
            acc = _topk(votes, query_y, (1, 5), "knn")
            grid.append({"k": int(k), "t": float(t), "top1": acc["knn_top1"], "top5": acc["knn_top5"]})
    best = max(grid, key=lambda g: (g["top1"], g["top5"]))
    return {"top1": best["top1"], "top5": best["top5"], "k": best["k"], "t": best["t"], "grid": grid}
