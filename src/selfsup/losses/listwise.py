"""List-wise Wasserstein loss for graded relevance (the authors' WS2Loss), and a per-query variant.

Esfandiarpoor, Zerveas, Zhang, Mgonzo, Eickhoff, Bach. *Beyond Contrastive Learning: Synthetic Data
Enables List-wise Training with Multiple Levels of Relevance.* Findings of EMNLP 2025. Ported from
the authors' code (BatsResearch/sycl, ``train.py``, class ``WS2Loss``).

:func:`listwise_wasserstein` (the paper's loss). A batch of Q queries is scored against all C
in-batch passages (``logits`` (Q, C); each query's own L passages plus the other queries' ones).
The relevance labels (Q, L) of each query's own passages are placed block-diagonally, 0 elsewhere,
giving a (Q, C) label matrix. Rows become distributions ``X = softmax(logits / T)`` and
``Y = softmax(labels)`` (so the other queries' passages get ``exp(0)`` mass in the target, as in
the authors' code). The Q rows of X and of Y are treated as samples of two C-dimensional Gaussians,
and the loss is their squared 2-Wasserstein (Frechet) distance::

    W^2 = ||mu_X - mu_Y||^2 + Tr(S_X) + Tr(S_Y) - 2 Tr((S_X S_Y)^(1/2))

with means and unbiased covariances over the Q rows. ``Tr((S_X S_Y)^(1/2))`` is computed as the
authors do (from arXiv 2009.14075): with ``C_X = E_X / sqrt(Q - 1)`` (centred rows, (C, Q)) and
``M = (C_X^T C_Y)(C_Y^T C_X)`` (Q x Q), it is ``sum_i sqrt(|lambda_i(M) + 1e-15|)``. Computed in
float64; one scalar per batch (no mean over queries). The temperature default 1.0 is an assumption:
the authors' README commands leave ``--temperature`` to their trainer's default.

:func:`listwise_wasserstein_1d` is a different, per-query objective kept under its own name: the
p-Wasserstein distance between ``softmax(scores / t)`` over a query's L documents and the grades
normalised to a distribution, with ground cost ``|g_i - g_j|`` (documents sit on a line at their
grades). On a line the optimal transport has a closed form: with cumulative distributions ``P``,
``Q`` the quantile functions are step functions and ``W_p^p = integral_0^1 |P^-1(u) - Q^-1(u)|^p
du``, a finite sum over the merged breakpoints (checked against ``ot.emd2`` of the ``pot``
package). Returned: the mean over queries of ``W_p``.
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
    u = torch.cat([cp, cq], 1).sort(1).values  # merged breakpoints
    du = torch.diff(u, dim=1, prepend=torch.zeros_like(u[:, :1]))
    last = x.shape[1] - 1
    ip = torch.searchsorted(cp.detach().contiguous(), u.detach().contiguous(), right=False).clamp(
        max=last
    )
    iq = torch.searchsorted(cq.detach().contiguous(), u.detach().contiguous(), right=False).clamp(
        max=last
    )
    cost = (xs.gather(1, ip) - xs.gather(1, iq)).abs() ** p
    wp = (du * cost).sum(1)
    return torch.where(wp > 0, wp.clamp_min(1e-30) ** (1.0 / p), torch.zeros_like(wp))


def listwise_wasserstein_1d(
    scores: Tensor, grades: Tensor, temperature: float = 1.0, p: float = 2.0
) -> Tensor:
    """Mean over queries of the Wasserstein distance between ``softmax(scores / t)`` and the grades.

    Parameters
    ----------
    scores : (A, L) retriever scores of the L documents of each of A queries
    grades : (A, L) graded relevance, >= 0 (e.g. 0-3)
    temperature : t > 0; p : order of the Wasserstein distance (>= 1)

    Examples
    --------
    >>> listwise_wasserstein_1d(torch.randn(2, 4), torch.tensor([[3, 2, 1, 0], [0, 1, 3, 2]])).shape
    torch.Size([])
    """
    if scores.ndim != 2 or scores.shape != grades.shape:
        raise ConfigError(
            f"listwise_wasserstein_1d expects scores and grades of the same (A, L) shape, "
            f"got {tuple(scores.shape)} and {tuple(grades.shape)}"
        )
    if not temperature > 0 or not p >= 1:
        raise ConfigError(f"temperature must be > 0 and p >= 1, got {temperature} and {p}")
    g = grades.to(scores.dtype)
    if bool((g < 0).any()):
        raise ConfigError("grades must be >= 0 (e.g. 3 highly relevant ... 0 not relevant)")
    tot = g.sum(1, keepdim=True)
    target = torch.where(tot > 0, g / tot.clamp_min(1e-12), torch.full_like(g, 1.0 / g.shape[1]))
    pred = torch.softmax(scores / temperature, dim=1)
    return wasserstein_1d(g, pred, target, p).mean()


def frechet_distance(x: Tensor, y: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance between Gaussians fitted to the rows of ``x`` and ``y`` (Q,
    C), float64, with the authors' trace-of-square-root computation (see the module docstring)."""
    x, y = x.double().t(), y.double().t()  # (C, Q): columns are the samples
    q = x.shape[1]
    fact = 1.0 if q < 2 else 1.0 / (q - 1)
    ex, ey = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    cx, cy = ex * fact**0.5, ey * fact**0.5
    a = cx.t() @ cy  # (Q, Q)
    m = a @ a.t()
    lam = torch.linalg.eigvalsh((m + m.t()) / 2)  # M is symmetric PSD: real eigenvalues
    sq_tr = (lam + 1e-15).abs().sqrt().sum()
    trace = (ex * ex).sum() * fact + (ey * ey).sum() * fact - 2.0 * sq_tr
    mean = (x.mean(1) - y.mean(1)).pow(2).sum()
    out: Tensor = trace + mean
    return out


def listwise_wasserstein(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """The authors' list-wise 2-Wasserstein loss (``WS2Loss``): Frechet distance between the batch's
    ``softmax(logits / T)`` rows and ``softmax(labels)`` rows.

    Parameters
    ----------
    logits : (Q, C) scores of every query against all C in-batch passages
    labels : (Q, C) relevance, or (Q, L) with C = Q L: each query's own L passages, placed
        block-diagonally (0 for the other queries' passages)
    temperature : T > 0

    Returns
    -------
    A float64 scalar (as the authors' loss).

    Examples
    --------
    >>> listwise_wasserstein(torch.randn(2, 8), torch.tensor([[3., 2, 1, 0], [0, 1, 3, 2]])).shape
    torch.Size([])
    """
    if logits.ndim != 2 or labels.ndim != 2 or labels.shape[0] != logits.shape[0]:
        raise ConfigError(
            f"listwise_wasserstein expects logits (Q, C) and labels (Q, C) or (Q, L) with "
            f"C = Q L, got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if labels.shape[1] != logits.shape[1]:
        if labels.shape[0] * labels.shape[1] != logits.shape[1]:
            raise ConfigError(
                f"labels (Q, L) = {tuple(labels.shape)} need Q L = {logits.shape[1]} passages"
            )
        labels = torch.block_diag(*labels.double().unbind(0))
    pred = torch.softmax(logits / temperature, dim=1)
    target = torch.softmax(labels.double(), dim=1)
    return frechet_distance(pred, target)
