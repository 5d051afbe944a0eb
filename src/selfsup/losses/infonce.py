"""InfoNCE against a queue of negatives (MoCo) and MoCHi's hard negative mixing.

He, Fan, Wu, Xie, Girshick. *Momentum Contrast for Unsupervised Visual Representation Learning.*
CVPR 2020 (v2: Chen, Fan, Girshick, He 2020). For a query ``q``, its key ``k+`` and a queue of K
keys ``n``, all L2-normalised::

    L = -log( exp(q.k+ / t) / (exp(q.k+ / t) + sum_n exp(q.n / t)) )

averaged over the queries (t = 0.2 in MoCo v2).

Kalantidis, Sariyildiz, Pion, Weinzaepfel, Larlus. *Hard Negative Mixing for Contrastive
Learning.* NeurIPS 2020 (MoCHi). Per query, order the queue by ``q.n`` and keep the N hardest
``n~_1..N``; synthesise ``s`` negatives ``normalise(a n~_i + (1 - a) n~_j)`` with a ~ U(0, 1) and
``s'`` harder ones ``normalise(b q + (1 - b) n~_j)`` with b ~ U(0, 0.5), i, j drawn uniformly from
the N hardest. They are extra logits in the denominator, computed without gradient and never added
to the queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    temperature: float = 0.2,
    extra_negatives: Tensor | None = None,
) -> Tensor:
    """Mean InfoNCE loss of queries against their keys and a queue of negatives.

    Parameters
    ----------
    q, k : Tensor of shape (B, D)
        Queries and their positive keys (normalised here).
    queue : Tensor of shape (K, D)
        Negatives shared by every query (normalised here).
    temperature : float
        ``t`` > 0.
    extra_negatives : Tensor of shape (B, M, D), optional
        Per-query negatives (MoCHi's mixes), normalised here.

    Examples
    --------
    >>> info_nce(torch.randn(4, 8), torch.randn(4, 8), torch.randn(16, 8)).shape
    torch.Size([])
    """
    if q.ndim != 2 or q.shape != k.shape or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"info_nce expects q, k of shape (B, D) and queue (K, D), got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(queue.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    parts = [(q * k).sum(1, keepdim=True), q @ queue.t()]
    if extra_negatives is not None:
        parts.append(torch.einsum("bd,bmd->bm", q, F.normalize(extra_negatives, dim=2)))
    logits = torch.cat(parts, dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def mochi_negatives(
    q: Tensor,
    queue: Tensor,
    n_hard: int,
    n_mix: int,
    n_mix_query: int,
    generator: torch.Generator | None = None,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """MoCHi's synthetic hard negatives for each query, detached and L2-normalised.

    Parameters
    ----------
    q : Tensor (B, D)
        Queries (normalised here; no gradient flows back).
    queue : Tensor (K, D)
        The negatives to mix (normalised here).
    n_hard : int
        N, how many of the hardest negatives per query take part (capped at K).
    n_mix, n_mix_query : int
        s mixes of two hard negatives and s' mixes of the query with a hard negative.
    generator : torch.Generator, optional
        Source of the random draws (on ``q``'s device); default torch's global generator.
    return_parts : bool
        Also return the indices into ``queue`` and the coefficients (for tests and diagnostics).

    Returns
    -------
    Tensor (B, n_mix + n_mix_query, D), or ``(mixes, parts)`` with ``parts`` a dict of
    ``i, j`` (B, s) queue indices and ``alpha`` (B, s); ``jq`` (B, s') and ``beta`` (B, s').
    """
    with torch.no_grad():
        q = F.normalize(q.detach(), dim=1)
        queue = F.normalize(queue.detach(), dim=1)
        b, dev = q.shape[0], q.device
        n = min(int(n_hard), queue.shape[0])
        top = (q @ queue.t()).topk(n, dim=1).indices  # (B, N), hardest first

        def draw(m: int) -> Tensor:
            return torch.randint(0, n, (b, m), device=dev, generator=generator)

        i, j = top.gather(1, draw(n_mix)), top.gather(1, draw(n_mix))
        alpha = torch.rand(b, n_mix, device=dev, generator=generator)
        mix = alpha[..., None] * queue[i] + (1 - alpha[..., None]) * queue[j]
        jq = top.gather(1, draw(n_mix_query))
        beta = 0.5 * torch.rand(b, n_mix_query, device=dev, generator=generator)
        mixq = beta[..., None] * q[:, None, :] + (1 - beta[..., None]) * queue[jq]
        mixes = F.normalize(torch.cat([mix, mixq], dim=1), dim=2)
    if return_parts:
        return mixes, {"i": i, "j": j, "alpha": alpha, "jq": jq, "beta": beta}
    return mixes
