"""Weighted k-nearest-neighbour classification (Wu et al. 2018, *Unsupervised Feature Learning via
Non-Parametric Instance Discrimination*), as used by lightly's and solo-learn's benchmarks.

Features are centred by the *bank's* mean and L2-normalised; each query takes its ``k`` most
cosine-similar bank samples, which vote for their class with weight ``exp(s / t)``. Predictions are
the classes with the largest summed votes.

Centring (``center=True``, the default) uses the bank only and no labels, so it cannot be tuned on
the query. It matters for encoders whose features are all positive (a ReLU before pooling): their
cosine similarities crowd near 1 (mean about 0.85 on digits), ``exp(s / t)`` then weighs a large
``k`` almost uniformly, and with ``k`` above a class's bank size (digits: about 135 a class,
k = 200) the vote is mostly other classes'. Centred, the same features score as the structure they
hold (digits, the default SimCLR run at k = 200: 0.958 uncentred, 0.978 centred; the random-init
encoder 0.869 and 0.969; ``benchmarks/knn_centring.py``). ``center=False`` is the
plain protocol of lightly and solo-learn (their CIFAR/ImageNet banks hold thousands a class).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _prepare(
    bank: torch.Tensor, query: torch.Tensor, center: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    bank, query = bank.float(), query.float()
    if center:
        mu = bank.mean(0, keepdim=True)
        bank, query = bank - mu, query - mu
    return F.normalize(bank, dim=1), F.normalize(query, dim=1)


@torch.no_grad()
def knn_predict(
    bank: torch.Tensor,
    bank_y: torch.Tensor,
    query: torch.Tensor,
    num_classes: int,
    k: int = 200,
    t: float = 0.1,
    chunk: int = 1024,
    center: bool = True,
) -> torch.Tensor:
    """Class scores (Q, num_classes) for each query."""
    bank, query = _prepare(bank, query, center)
    k = min(k, len(bank))
    out = []
    for i in range(0, len(query), chunk):
        sim = query[i : i + chunk] @ bank.t()
        w, idx = sim.topk(k, dim=1)
        w = ((w - w[:, :1]) / t).exp()  # minus the row maximum: same vote ratios, no overflow
        votes = torch.zeros(len(w), num_classes, dtype=w.dtype, device=w.device)
        votes.scatter_add_(1, bank_y[idx], w)
        out.append(votes)
    return torch.cat(out)


def knn_accuracy(
    bank: torch.Tensor,
    bank_y: torch.Tensor,
    query: torch.Tensor,
    query_y: torch.Tensor,
    k: int = 200,
    t: float = 0.1,
    topk: tuple[int, ...] = (1,),
    center: bool = True,
) -> dict[str, float]:
    """Top-k accuracies of weighted kNN, e.g. ``{"knn_top1": 0.93}``."""
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    scores = knn_predict(bank, bank_y.long(), query, num_classes, k, t, center=center)
    return _topk(scores, query_y.long(), topk, "knn")


def _topk(scores: torch.Tensor, y: torch.Tensor, topk, prefix: str) -> dict[str, float]:
    out = {}
    rank = scores.argsort(dim=1, descending=True)
    for kk in topk:
        kk_eff = min(kk, scores.shape[1])
        out[f"{prefix}_top{kk}"] = float((rank[:, :kk_eff] == y[:, None]).any(dim=1).float().mean())
    return out


def _neighbours(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int, exclude_self: bool):
    """Similarities and indices of the ``k`` nearest bank rows of each query row (both normalised);
    with ``exclude_self`` (query = bank) a row is never its own neighbour: leave-one-out."""
    sims, idxs = [], []
    for i in range(0, len(query), chunk):
        s = query[i : i + chunk] @ bank.t()
        if exclude_self:
            rows = torch.arange(len(s), device=s.device)
            s[rows, rows + i] = float("-inf")
        v, ix = s.topk(k, dim=1)
        sims.append(v)
        idxs.append(ix)
    return torch.cat(sims), torch.cat(idxs)


def _cell(
    sim: torch.Tensor, lab: torch.Tensor, y: torch.Tensor, k: int, t: float, num_classes: int
):
    votes = torch.zeros(len(sim), num_classes, dtype=sim.dtype, device=sim.device)
    # subtract the row maximum before exp: the same votes up to a positive factor, no overflow
    w = ((sim[:, :k] - sim[:, :1]) / t).exp()
    votes.scatter_add_(1, lab[:, :k], w)
    return _topk(votes, y, (1, 5), "knn")


@torch.no_grad()
def knn_sweep(
    bank: torch.Tensor,
    bank_y: torch.Tensor,
    query: torch.Tensor,
    query_y: torch.Tensor,
    ks: tuple[int, ...] | list[int] = (10, 20, 50, 100, 200),
    ts: tuple[float, ...] | list[float] = (0.02, 0.05, 0.07, 0.1, 0.2, 0.5),
    chunk: int = 1024,
    center: bool = True,
) -> dict:
    """Weighted kNN with ``k`` and temperature ``t`` chosen on the bank, scored once on the query.

    Every (k, t) cell of the grid is scored by leave-one-out on the bank (each bank sample
    classified by the other bank samples); the cell with the best bank top-1 (then top-5; ties:
    the first in grid order) is chosen, and the query set is scored once with it. The query never
    takes part in the choice, so the figure is not tuned on the data it reports. The neighbours are
    searched once per set (for the largest ``k``) and every cell reuses them.

    Returns
    -------
    dict with ``top1``/``top5`` (query accuracy of the chosen cell), ``k``, ``t`` of that cell,
    ``bank_top1`` (its leave-one-out accuracy on the bank), ``selected_by`` and ``grid``: a list of
    ``{"k", "t", "bank_top1", "bank_top5", "query_top1", "query_top5"}`` for every cell, for
    inspection only.
    """
    if not ks or not ts:
        raise ValueError("knn_sweep needs at least one k and one temperature")
    if len(bank) < 2:
        raise ValueError(
            "knn_sweep needs at least 2 bank samples (the cell is chosen by leave-one-out)"
        )
    bank_y, query_y = bank_y.long(), query_y.long()
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    bank, query = _prepare(bank, query, center)
    kmax = min(max(ks), len(bank) - 1)
    b_sim, b_idx = _neighbours(bank, bank, kmax, chunk, exclude_self=True)
    q_sim, q_idx = _neighbours(query, bank, kmax, chunk, exclude_self=False)
    b_lab, q_lab = bank_y[b_idx], bank_y[q_idx]
    grid = []
    for k in ks:
        kk = min(k, kmax)
        for t in ts:
            b = _cell(b_sim, b_lab, bank_y, kk, t, num_classes)
            q = _cell(q_sim, q_lab, query_y, kk, t, num_classes)
            grid.append(
                {
                    "k": int(k),
                    "t": float(t),
                    "bank_top1": b["knn_top1"],
                    "bank_top5": b["knn_top5"],
                    "query_top1": q["knn_top1"],
                    "query_top5": q["knn_top5"],
                }
            )
    best = max(grid, key=lambda g: (g["bank_top1"], g["bank_top5"]))  # first maximum in grid order
    return {
        "top1": best["query_top1"],
        "top5": best["query_top5"],
        "k": best["k"],
        "t": best["t"],
        "bank_top1": best["bank_top1"],
        "selected_by": "leave-one-out on the bank",
        "grid": grid,
    }
