"""HaLP: hallucinated latent positives with a closed-form hardness.

Shah, Roy, Shah, Mishra, Jacobs, Cherian, Chellappa, *HaLP: Hallucinating Latent Positives for
Skeleton-based Self-Supervised Learning of Actions*, CVPR 2023. Authors' code (read to check every
formula below): ``anshulbshah/HaLP``, ``moco/generator.py`` (``generate_positives_using_mixup``,
``pos_generator``) and ``moco/builder_single_modality_halp.py`` (the loss and the "good positive"
filter).

Given a unit anchor ``k`` (a key), unit prototypes ``P`` (spherical k-means centres of recent keys),
``p0`` the prototype closest to ``k`` and ``p`` a prototype drawn among the ``n_closest`` next ones
(the closest ``skip_closest`` are skipped), a positive is a point on the great circle from ``k`` to
``p`` (spherical interpolation, angle ``w = acos(k . p)``)::

    g(t) = sin((1 - t) w) / sin w * k + sin(t w) / sin w * p

``t_max`` is where ``g`` becomes as similar to ``p`` as to ``p0`` (``g . (p0 - p) = 0``), in closed
form::

    K = (1 - p . p0) / (k . (p0 - p)),    t_max = atan(sin w / (K + cos w)) / w

and ``t = (1 - lam) t_max`` with ``lam ~ U(0, hardness)``: ``hardness`` (the paper's lambda, 0.8)
sets how far below the hardest admissible positive ``t_max`` a draw may fall (``t`` in
``[(1 - hardness) t_max, t_max]``). Positives whose nearest prototype is not ``k``'s are dropped
("good positives"); the extra loss on the kept ones is, as in the authors' code,
``-mean_good (q . g / T)`` (``g`` normalised, ``q`` the query), added with weight ``mu`` to MoCo's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-8


def slerp(k: Tensor, p: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between unit vectors ``k`` and ``p`` (..., D) at fractions ``t``
    (...)."""
    cos = (k * p).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7)
    w = torch.acos(cos)
    a = torch.sin((1 - t) * w) / (torch.sin(w) + EPS)
    b = torch.sin(t * w) / (torch.sin(w) + EPS)
    return a.unsqueeze(-1) * k + b.unsqueeze(-1) * p


def max_hardness(k: Tensor, p: Tensor, p0: Tensor) -> Tensor:
    """``t_max``: the fraction of the arc from ``k`` to ``p`` at which the point is equally similar
    to ``p`` and to ``p0`` (closed form of HaLP's generator)."""
    kk = (1 - (p * p0).sum(-1)) / ((k * (p0 - p)).sum(-1) + EPS)
    w = torch.acos((k * p).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))
    return torch.atan(torch.sin(w) / (kk + torch.cos(w) + EPS)) / (w + EPS)


def halp_positives(
    anchor: Tensor,
    prototypes: Tensor,
    n_positives: int,
    hardness: float = 0.8,
    n_closest: int = 20,
    skip_closest: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Synthetic positives around each unit ``anchor`` (B, D), from unit ``prototypes`` (M, D).

    Returns ``positives`` (B, n, D) unit vectors, ``t`` and ``t_max`` (B, n), ``target`` (B, n) the
    index of the prototype each moves towards, and ``good`` (B, n) bool: the positive's nearest
    prototype is still the anchor's.
    """
    if not 0 <= hardness <= 1:
        raise ValueError(f"hardness must be in [0, 1], got {hardness}")
    b, m = len(anchor), len(prototypes)
    if m < skip_closest + 1:
        raise ValueError(f"HaLP needs more than {skip_closest} prototypes, got {m}")
    sim = anchor @ prototypes.t()
    order = sim.argsort(dim=1, descending=True)  # most similar first
    p0_idx = order[:, 0]
    cand = order[:, skip_closest : skip_closest + n_closest]  # (B, c)
    pick = torch.randint(cand.shape[1], (b, n_positives), generator=generator, device=anchor.device)
    target = cand.gather(1, pick)
    k = anchor.unsqueeze(1).expand(-1, n_positives, -1)
    p = prototypes[target]
    p0 = prototypes[p0_idx].unsqueeze(1).expand_as(p)
    t_max = max_hardness(k, p, p0)
    lam = torch.rand(b, n_positives, generator=generator, device=anchor.device) * hardness
    t = (1 - lam) * t_max
    g = F.normalize(slerp(k, p, t), dim=-1)
    good = (g @ prototypes.t()).argmax(-1) == p0_idx.unsqueeze(1)
    return {"positives": g, "t": t, "t_max": t_max, "target": target, "good": good}


def halp_loss(q: Tensor, positives: Tensor, good: Tensor, temperature: float) -> Tensor:
    """``-sum_{good} (q_i . g_ij / T) / (number of good + 1e-8)`` (authors' ``loss_pn``)."""
    sim = torch.einsum("bd,bnd->bn", q, positives) / temperature
    return -(sim * good).sum() / (good.sum() + EPS)


def spherical_kmeans(
    x: Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None
) -> Tensor:
    """``k`` unit centres of unit rows ``x`` (N, D) by cosine k-means (k-means++ seeding)."""
    x = F.normalize(x.float(), dim=1)
    n = len(x)
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [x[first]]
    for _ in range(1, k):
        d = 1 - (x @ torch.stack(centres).t()).max(dim=1).values
        w = d.clamp_min(0) ** 2
        idx = (
            int(torch.multinomial(w + 1e-12, 1, generator=generator))
            if float(w.sum()) > 0
            else len(centres)
        )
        centres.append(x[idx % n])
    c = torch.stack(centres)
    for _ in range(iters):
        assign = (x @ c.t()).argmax(1)
        s = torch.zeros_like(c).index_add_(0, assign, x)
        empty = s.norm(dim=1) < 1e-12
        c = torch.where(empty.unsqueeze(1), c, F.normalize(s, dim=1))
    return c
