"""GroCo: learning by sorting, with group ordering constraints.

Shvetsova, Petersen, Kukleva, Schiele, Kuehne. *Learning by Sorting: Self-supervised Learning with
Group Ordering Constraints.* ICCV 2023. Ported from the authors' code (ninatu/learning_by_sorting,
``learning_by_sorting/losses/groco.py``, class ``GroCo``).

B samples with V views, L2-normalised; the first ``n_global`` views are the global crops (all V by
default; with multi-crop the local crops come after them). Every view in turn is the anchor view,
and for each anchor embedding (sample b, view v):

* positives: its cosine similarities to the *global* views of the same sample other than itself
  (``n_global - 1`` for a global anchor, ``n_global`` for a local one);
* negatives: its ``k`` highest similarities to the *other samples of its own view* (view v of the
  B - 1 other samples, of every rank under torch.distributed);
* ``stop_grad`` (default, as the authors): the positives' and negatives' embeddings are detached, so
  the gradient reaches the anchor side only.

Both groups are pre-sorted ascending (negatives then positives) and sorted by a differentiable
sorting network (the ``diffsort`` package: odd-even network, Cauchy relaxation, steepness 1, ART
lambda 0.25), which returns a relaxed permutation ``P`` (``P[j, r]``: how much of element j lands at
rank r). For each *element* j, ``m_j = sum_{r in the top n_pos ranks} P[j, r]`` is the probability
that it is sorted among the positives' ranks; the loss is the mean of two binary cross-entropies,
``BCE(m, t)`` and ``BCE(1 - m', 1 - t)`` with ``m'_j = sum_{r < k} P[j, r]`` (clipped to [0, 1]),
``t_j = 1`` for the positives and 0 for the negatives, each averaged over the anchors' elements;
then averaged over the anchor views. ``temperature`` divides the similarities before sorting
(default 1.0: raw cosine similarities, as the authors; the knob is ours).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .distributed import gather, world


def _diffsort() -> Any:
    try:
        import diffsort
    except ImportError:
        raise ConfigError(
            "GroCo needs the 'diffsort' package (differentiable sorting networks); "
            "install it with: pip install 'selfsup[sorting]'"
        ) from None
    return diffsort


@lru_cache(maxsize=32)
def _sorter(
    n: int, steepness: float, art_lambda: float, network: str, distribution: str, device: str
) -> Any:
    return _diffsort().DiffSortNet(
        network,
        n,
        device=device,
        steepness=steepness,
        art_lambda=art_lambda,
        distribution=distribution,
    )


def relaxed_sort(
    x: Tensor,
    steepness: float = 1.0,
    art_lambda: float = 0.25,
    network: str = "odd_even",
    distribution: str = "cauchy",
) -> tuple[Tensor, Tensor]:
    """Sort each row of ``x`` (A, n) ascending with a differentiable sorting network.
    Returns ``(sorted (A, n), P (A, n, n))`` with ``sorted = x @ P``."""
    if x.shape[1] < 2:
        return x, torch.ones(x.shape[0], 1, 1, dtype=x.dtype, device=x.device)
    sorter = _sorter(
        x.shape[1], float(steepness), float(art_lambda), network, distribution, str(x.device)
    )
    out: tuple[Tensor, Tensor] = sorter(x)
    return out


def groco(
    z: Tensor,
    k: int = 10,
    temperature: float = 1.0,
    steepness: float = 1.0,
    art_lambda: float = 0.25,
    network: str = "odd_even",
    distribution: str = "cauchy",
    *,
    n_global: int | None = None,
    stop_grad: bool = True,
) -> Tensor:
    """Mean GroCo loss of (B, V, D) embeddings (V >= 2 views of B samples).

    Parameters
    ----------
    z : (B, V, D) embeddings, the ``n_global`` global views first
    k : negatives per anchor (capped at the other samples of the anchor's view)
    temperature, steepness, art_lambda, network, distribution : the sorting network's input scale
        and relaxation
    n_global : how many leading views are global crops (the only positives); default all V
    stop_grad : detach the positives and negatives (the authors' default)

    Examples
    --------
    >>> groco(torch.randn(8, 2, 16), k=4).shape  # doctest: +SKIP
    torch.Size([])
    """
    if z.ndim != 3 or z.shape[1] < 2 or z.shape[0] < 2:
        raise ConfigError(
            f"groco expects (B, V, D) embeddings with B >= 2 and V >= 2, got {tuple(z.shape)}"
        )
    if k < 1 or not temperature > 0 or not steepness > 0:
        raise ConfigError(
            f"groco needs k >= 1, temperature > 0 and steepness > 0 (got {k}, "
            f"{temperature}, {steepness})"
        )
    b, v, _ = z.shape
    g = v if n_global is None else int(n_global)
    if not 2 <= g <= v:
        raise ConfigError(
            f"groco needs 2 <= n_global <= V global views, got n_global={n_global} of V={v}"
        )
    rank, size = world()
    z = F.normalize(z, dim=2)
    kk = min(k, size * b - 1)
    own = torch.arange(b, device=z.device) + rank * b
    total = z.new_zeros(())
    for a in range(v):
        anchor = z[:, a]
        others = [j for j in range(g) if j != a]
        posv = z[:, others]
        negv = gather(anchor)
        if stop_grad:
            posv, negv = posv.detach(), negv.detach()
        pos = (anchor[:, None, :] * posv).sum(2).sort(1).values  # ascending
        sim = (anchor @ negv.t()).clone()
        sim[torch.arange(b, device=z.device), own] = float("-inf")
        neg = sim.topk(kk, dim=1).values.flip(1)  # ascending
        group = torch.cat([neg, pos], 1) / temperature
        _, perm = relaxed_sort(group, steepness, art_lambda, network, distribution)
        in_pos = perm[:, :, kk:].sum(2).clamp(0, 1)  # per element: mass on the positives' ranks
        in_neg = perm[:, :, :kk].sum(2).clamp(0, 1)
        target = torch.zeros_like(in_pos)
        target[:, kk:] = 1.0
        total = (
            total
            + (F.binary_cross_entropy(in_pos, target) + F.binary_cross_entropy(in_neg, 1 - target))
            / 2
        )
    return total / v
