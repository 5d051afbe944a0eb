"""Cross-modal retrieval between the two towers of a paired encoder.

Every query sample is embedded by both towers into the shared space (``embed_a``, ``embed_b`` of
:class:`~selfsup.models.two_tower.TwoTower`). For a -> b, each ``a_i`` ranks all ``b_j`` of the
split by cosine similarity; the rank of its own ``b_i`` is ``1 + #{j : s_ij > s_ii}`` (a tie
counts in the query's favour). Then recall@k (fraction of ranks <= k, k = 1, 5, 10) and the
median rank; b -> a the same on the transposed similarities. Chance recall@1 is 1/N.

Metrics (``summary.json``'s ``eval``): ``xmodal_r1``, ``xmodal_r5``, ``xmodal_r10`` and
``xmodal_medr``: the mean of the two directions; ``xmodal_a2b_*`` and ``xmodal_b2a_*``: each one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KS = (1, 5, 10)


@torch.no_grad()
def match_ranks(q: Tensor, g: Tensor, chunk: int = 1024) -> Tensor:
    """Rank (1 = best) of gallery row ``i`` among all gallery rows for query row ``i``."""
    if len(q) != len(g):
        raise ValueError(
            f"cross-modal retrieval needs sets of equal size, got {len(q)} and {len(g)}"
        )
    q, g = F.normalize(q.double(), dim=1), F.normalize(g.double(), dim=1)
    out = []
    for i in range(0, len(q), chunk):
        s = q[i : i + chunk] @ g.t()
        own = s[torch.arange(len(s)), torch.arange(i, i + len(s))]
        out.append(1 + (s > own[:, None]).sum(1))
    return torch.cat(out)


def rank_metrics(ranks: Tensor, prefix: str) -> dict[str, float]:
    r = ranks.double()
    out = {f"{prefix}_r{k}": float((r <= k).double().mean()) for k in KS}
    out[f"{prefix}_medr"] = float(
        r.median()
    )  # torch's median of an even count: the lower middle value
    return out


def retrieval_metrics(za: Tensor, zb: Tensor) -> dict[str, float]:
    """``xmodal_*`` metrics of paired embeddings ``za`` (N, D) and ``zb`` (N, D)."""
    a2b = rank_metrics(match_ranks(za, zb), "xmodal_a2b")
    b2a = rank_metrics(match_ranks(zb, za), "xmodal_b2a")
    mean = {
        f"xmodal_{m}": (a2b[f"xmodal_a2b_{m}"] + b2a[f"xmodal_b2a_{m}"]) / 2
        for m in [f"r{k}" for k in KS] + ["medr"]
    }
    return {**mean, **a2b, **b2a}


@torch.no_grad()
def xmodal_eval(
    encoder: nn.Module,
    x,
    prepare: Callable,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Embed a :class:`PairTensor` ``x`` with both towers of ``encoder`` (in eval mode) and score
    retrieval both ways. ``prepare`` maps a raw pair batch to the towers' inputs."""
    was = encoder.training
    encoder.eval()
    za, zb = [], []
    try:
        for i in range(0, len(x), batch_size):
            p = prepare(x[i : i + batch_size].to(device))
            za.append(encoder.embed_a(p.a).float().cpu())
            zb.append(encoder.embed_b(p.b).float().cpu())
    finally:
        encoder.train(was)
    return retrieval_metrics(torch.cat(za), torch.cat(zb))
