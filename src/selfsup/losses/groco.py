"""GroCo: learning by sorting, with group ordering constraints.

Shvetsova, Petersen, Kukleva, Schiele, Kuehne. *Learning by Sorting: Self-supervised Learning with
Group Ordering Constraints.* ICCV 2023.

For each anchor embedding (sample b, view v) of B samples with V views, L2-normalised:

* positives: its similarities to the other V - 1 views of the same sample;
* negatives: its k highest similarities to other samples' embeddings (all views), chosen on
  detached similarities (the gradient flows through the chosen similarities, not the choice).

The group ``x = [negatives (k) ; positives (V - 1)] / temperature`` is sorted ascending by a
differentiable sorting network (the ``diffsort`` package: odd-even network, Cauchy relaxation,
steepness 1, ART lambda 0.25), which returns a relaxed permutation ``P`` (``P[j, r]`` = how much of
element j lands at rank r). The correct order has every positive above every negative, so the
target membership of rank r is ``t_r = 1`` for the top V - 1 ranks, 0 below; the loss is the binary
cross-entropy between ``m_r = sum_{j positive} P[j, r]`` and ``t_r``, averaged over ranks and
anchors. The similarities are divided by ``temperature`` (default 1.0, i.e. raw cosine
similarities) before sorting; this knob is ours.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .distributed import gather, world


def _diffsort():
    try:
        import diffsort
    except ImportError:
        raise ConfigError("GroCo needs the 'diffsort' package (differentiable sorting networks); "
                          "install it with: pip install 'selfsup[sorting]'") from None
    return diffsort


@lru_cache(maxsize=32)
def _sorter(n: int, steepness: float, art_lambda: float, network: str, distribution: str, device: str):
    return _diffsort().DiffSortNet(network, n, device=device, steepness=steepness,
                                   art_lambda=art_lambda, distribution=distribution)


def relaxed_sort(x: Tensor, steepness: float = 1.0, art_lambda: float = 0.25, network: str = "odd_even",
                 distribution: str = "cauchy") -> tuple[Tensor, Tensor]:
    """Sort each row of ``x`` (A, n) ascending with a differentiable sorting network.
    Returns ``(sorted (A, n), P (A, n, n))`` with ``sorted = x @ P``."""
    if x.shape[1] < 2:
        return x, torch.ones(x.shape[0], 1, 1, dtype=x.dtype, device=x.device)
    sorter = _sorter(x.shape[1], float(steepness), float(art_lambda), network, distribution, str(x.device))
    return sorter(x)


def groco(z: Tensor, k: int = 10, temperature: float = 1.0, steepness: float = 1.0, art_lambda: float = 0.25,
          network: str = "odd_even", distribution: str = "cauchy") -> Tensor:
    """Mean GroCo loss of (B, V, D) embeddings (V >= 2 views of B samples).

    Examples
    --------
    >>> groco(torch.randn(8, 2, 16), k=4).shape  # doctest: +SKIP
    torch.Size([])
    """
    if z.ndim != 3 or z.shape[1] < 2 or z.shape[0] < 2:
        raise ConfigError(f"groco expects (B, V, D) embeddings with B >= 2 and V >= 2, got {tuple(z.shape)}")
    if k < 1 or not temperature > 0 or not steepness > 0:
        raise ConfigError(f"groco needs k >= 1, temperature > 0 and steepness > 0 (got {k}, "
                          f"{temperature}, {steepness})")
    rank, size = world()
    b, v, _ = z.shape
    z = F.normalize(z, dim=2)
    q = z.reshape(b * v, -1)                                 # anchor (i, view) at row i * V + view
    keys = gather(z).reshape(size * b * v, -1)
    sim = q @ keys.t() / temperature                         # (BV, RBV)
    own = (torch.arange(b, device=z.device) + rank * b).repeat_interleave(v)
    key_sample = torch.arange(size * b, device=z.device).repeat_interleave(v)
    same = key_sample[None, :] == own[:, None]
    self_col = own * v + torch.arange(v, device=z.device).repeat(b)
    pos_mask = same.clone()
    pos_mask[torch.arange(b * v), self_col] = False
    pos = sim[pos_mask].reshape(b * v, v - 1)
    kk = min(k, (size * b - 1) * v)
    neg_scores = sim.detach().masked_fill(same, float("-inf"))
    neg = sim.gather(1, neg_scores.topk(kk, dim=1).indices)
    group = torch.cat([neg, pos], 1)
    _, perm = relaxed_sort(group, steepness, art_lambda, network, distribution)
    member = perm[:, kk:, :].sum(1).clamp(1e-6, 1 - 1e-6)  # how positive each rank is
    target = torch.zeros_like(member)
    target[:, kk:] = 1.0
    return F.binary_cross_entropy(member, target)
