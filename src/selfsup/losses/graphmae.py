"""GraphMAE's scaled cosine error (SCE) between original and reconstructed node features.

Hou, Liu, Cen, Dong, Yang, Wang, Tang. *GraphMAE: Self-Supervised Masked Graph Autoencoders.*
KDD 2022 (Eq. 4); authors' code: THUDM/GraphMAE, ``graphmae/models/loss_func.py`` (``sce_loss``).

For the masked nodes ``V~``, original features ``x_i`` and reconstructions ``z_i``, with the scaling
exponent ``gamma >= 1`` (``alpha_l`` in the code; 3 on Cora)::

    L = (1 / |V~|) sum_{i in V~} (1 - x_i . z_i / (||x_i|| ||z_i||)) ** gamma

``gamma = 1`` is the plain cosine error; a larger exponent down-weights the easy (already
well-reconstructed) nodes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def sce_loss(x: Tensor, z: Tensor, gamma: float = 3.0) -> Tensor:
    """Mean scaled cosine error of reconstructions ``z`` (M, F) against targets ``x`` (M, F).

    Examples
    --------
    >>> import torch
    >>> round(float(sce_loss(torch.ones(4, 3), torch.ones(4, 3))), 6)
    0.0
    """
    if x.shape != z.shape or x.ndim != 2:
        raise ValueError(
            f"sce_loss needs two (M, F) arrays of the same shape, got {tuple(x.shape)} and "
            f"{tuple(z.shape)}"
        )
    if not gamma >= 1:
        raise ValueError(f"the scaling exponent gamma must be >= 1, got {gamma}")
    # the dot product over the norms (as F.normalize, each norm at least 1e-12): two fewer
    # (M, F)-sized passes than normalising z first, forward and backward
    x = F.normalize(x, dim=-1)
    cos: Tensor = (x * z).sum(-1) / z.norm(dim=-1).clamp(min=1e-12)
    return (1 - cos).pow(gamma).mean()


class _SquaredRowNorms(torch.autograd.Function):
    """``||a_i W^T||^2`` for each row ``a_i`` of ``a`` (M, d), ``W`` (F, d), through the Gram
    matrix ``G = W^T W`` (d, d): ``(a G * a).sum(1)``. Backward without a product of width F:
    ``da = 2 g_i (a G)_i``, ``dW = 2 W (a^T diag(g) a)``."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, w: Tensor) -> Tensor:
        ag = a @ (w.t() @ w)
        ctx.save_for_backward(a, w, ag)
        return (ag * a).sum(1)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, w, ag = ctx.saved_tensors
        g2 = 2 * g.unsqueeze(1)
        da = g2 * ag if ctx.needs_input_grad[0] else None
        dw = w @ ((a * g2).t() @ a) if ctx.needs_input_grad[1] else None
        return da, dw


def sce_loss_linear(
    x: Tensor, a: Tensor, weight: Tensor, bias: Tensor | None, gamma: float = 3.0
) -> Tensor:
    """``sce_loss(x, a @ weight.t() + bias, gamma)`` without forming the (M, F) reconstructions.

    The loss reads only each row's dot product with ``x_i`` and its norm; for
    ``z_i = W a_i + b`` those are ``a_i . (W^T x_i) + b . x_i`` and
    ``||z_i||^2 = a_i^T (W^T W) a_i + 2 a_i . (W^T b) + ||b||^2``, products of width d (``a``
    (M, d), ``weight`` (F, d)) instead of F. GraphMAE's decoder on Cora (d 512, F 1,433) costs
    half its multiply-adds this way. ``x`` (M, F) may be a sparse CSR tensor (Cora's rows are
    about 1 % non-zero); it carries no gradient.

    Examples
    --------
    >>> import torch
    >>> x, a, w, b = torch.rand(5, 7), torch.randn(5, 3), torch.randn(7, 3), torch.randn(7)
    >>> bool(torch.isclose(sce_loss_linear(x, a, w, b), sce_loss(x, a @ w.t() + b), atol=1e-5))
    True
    """
    if not gamma >= 1:
        raise ValueError(f"the scaling exponent gamma must be >= 1, got {gamma}")
    if x.layout == torch.sparse_csr:
        xn = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device).index_add_(
            0,
            torch.repeat_interleave(
                torch.arange(x.shape[0], device=x.device), x.crow_indices().diff()
            ),
            x.values().square(),
        )
        xw = _csr_times(x, weight)  # (M, d), the gradient to weight through x^T
    else:
        xn = x.square().sum(1)
        xw = x @ weight
    dot = (a * xw).sum(1)
    sq: Tensor = _SquaredRowNorms.apply(a, weight)  # type: ignore[no-untyped-call]
    if bias is not None:
        dot = dot + (x @ bias.unsqueeze(1))[:, 0]  # (a CSR x takes no 1-D right operand)
        sq = sq + 2 * (a @ (bias @ weight)) + bias.square().sum()
    # as F.normalize(x) . z / ||z||.clamp(1e-12): each norm at least 1e-12
    cos = dot / (xn.clamp(min=1e-24).sqrt() * sq.clamp(min=1e-24).sqrt())
    return (1 - cos).pow(gamma).mean()


class _CsrTimes(torch.autograd.Function):
    """``x @ w`` for a constant sparse CSR ``x``; the gradient goes to ``w`` only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor) -> Tensor:
        ctx.x = x
        return x @ w

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[None, Tensor]:
        return None, ctx.x.t() @ g


def _csr_times(x: Tensor, w: Tensor) -> Tensor:
    out: Tensor = _CsrTimes.apply(x, w)  # type: ignore[no-untyped-call]
    return out
