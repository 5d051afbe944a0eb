"""List-wise Wasserstein loss for graded relevance.

Esfandiarpoor, Zerveas, Zhang, Mgonzo, Eickhoff, Bach. *Beyond Contrastive Learning: Synthetic Data
Enables List-wise Training with Multiple Levels of Relevance.* Findings of EMNLP 2025.

Instead of one positive against negatives, a query comes with a list of L documents with graded
relevance ``g_j`` (e.g. 3, 2, 1, 0). The retriever's scores give a distribution over the list,
``p = softmax(scores / t)``; the grades give the target ``q = g / sum(g)`` (uniform if all are 0).
The loss is the p-Wasserstein distance between ``p`` and ``q`` with ground cost ``|g_i - g_j|``:
the documents sit on a line at their grades, so moving probability between documents of the same
grade is free and moving it from a grade-0 document to a grade-3 one costs 3.

On a line the optimal transport has a closed form (no solver needed, and it is differentiable):
with the points sorted and the cumulative distributions ``P(u)``, ``Q(u)``, the quantile functions
``P^-1``, ``Q^-1`` are step functions and ``W_p^p = integral_0^1 |P^-1(u) - Q^-1(u)|^p du``; the
integral is a finite sum over the merged breakpoints of the two CDFs. For p = 1 this equals
``sum_r |P_r - Q_r| (x_{r+1} - x_r)``. The test checks it against ``ot.emd2`` (the ``pot`` package).
Returned: the mean over queries of ``W_p`` (``(W_p^p)^(1/p)``). The paper reports the 2-Wasserstein
distance; p = 2 is the default here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError


def wasserstein_1d(x: Tensor, p_w: Tensor, q_w: Tensor, p: float = 2.0) -> Tensor:
    """W_p between two weightings ``p_w``, ``q_w`` (A, L) of the points ``x`` (A, L) on a line."""
    order = x.argsort(1)
    xs = x.gather(1, order)
    cp = p_w.gather(1, order).cumsum(1)
    cq = q_w.gather(1, order).cumsum(1)
    cp = cp / cp[:, -1:]
    cq = cq / cq[:, -1:]
    u = torch.cat([cp, cq], 1).sort(1).values                       # merged breakpoints
    du = torch.diff(u, dim=1, prepend=torch.zeros_like(u[:, :1]))
    last = x.shape[1] - 1
    ip = torch.searchsorted(cp.detach().contiguous(), u.detach().contiguous(), right=False).clamp(max=last)
    iq = torch.searchsorted(cq.detach().contiguous(), u.detach().contiguous(), right=False).clamp(max=last)
    cost = (xs.gather(1, ip) - xs.gather(1, iq)).abs() ** p
    wp = (du * cost).sum(1)
    return torch.where(wp > 0, wp.clamp_min(1e-30) ** (1.0 / p), torch.zeros_like(wp))


def listwise_wasserstein(scores: Tensor, grades: Tensor, temperature: float = 1.0, p: float = 2.0) -> Tensor:
    """Mean over queries of the Wasserstein distance between ``softmax(scores / t)`` and the grades.

    Parameters
    ----------
    scores : (A, L) retriever scores of the L documents of each of A queries
    grades : (A, L) graded relevance, >= 0 (e.g. 0-3)
    temperature : t > 0; p : order of the Wasserstein distance (>= 1)

    Examples
    --------
    >>> listwise_wasserstein(torch.randn(2, 4), torch.tensor([[3, 2, 1, 0], [0, 1, 3, 2]])).shape
    torch.Size([])
    """
    if scores.ndim != 2 or scores.shape != grades.shape:
        raise ConfigError(f"listwise_wasserstein expects scores and grades of the same (A, L) shape, "
                          f"got {tuple(scores.shape)} and {tuple(grades.shape)}")
    if not temperature > 0 or not p >= 1:
        raise ConfigError(f"temperature must be > 0 and p >= 1, got {temperature} and {p}")
    g = grades.to(scores.dtype)
    if bool((g < 0).any()):
        raise ConfigError("grades must be >= 0 (e.g. 3 highly relevant ... 0 not relevant)")
    tot = g.sum(1, keepdim=True)
    target = torch.where(tot > 0, g / tot.clamp_min(1e-12), torch.full_like(g, 1.0 / g.shape[1]))
    pred = torch.softmax(scores / temperature, dim=1)
    return wasserstein_1d(g, pred, target, p).mean()
