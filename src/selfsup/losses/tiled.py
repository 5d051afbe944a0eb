"""Row log-sum-exp of a similarity matrix, dense or tiled: the kernel of the InfoNCE family.

NT-Xent, DCL/DCLW, HCL, SupCon and the CLIP loss all reduce to per-anchor quantities of the form::

    lse_i = log sum_{j not excluded for i} exp(scale * q_i . k_j)

plus terms linear in O(N) similarities (the positives), which autograd handles cheaply. This
module computes ``lse`` two ways:

* **dense**: the (M, N) logit matrix at once; autograd keeps it (and its softmax) for backward;
  memory O(M N).
* **tiled**: blocks of ``tile`` rows at a time, with a custom backward that recomputes each block.
  With ``g_i = dL/dlse_i`` and ``p_ij = exp(scale q_i.k_j - lse_i)`` (zero where excluded)::

      dL/dq_i   = scale * g_i * sum_j p_ij k_j
      dL/dk_j   = scale * sum_i g_i p_ij q_i
      dL/dscale = sum_i g_i sum_j p_ij (q_i . k_j)

  which is exact (no approximation); memory O(tile x N + (M + N) d).

The forward pass of the tiled path also keeps ``A_i = sum_j p_ij k_j`` (M x D), which gives
``dL/dq`` and ``dL/dscale = sum_i g_i q_i . A_i`` for any upstream gradient, and accumulates the
gradient of k for the common case where every row's upstream gradient is the same number (a mean of
lse terms, as in NT-Xent, DCL, SupCon and CLIP), so backward only scales it: three matrix products
and one exp per logit in all. Any other upstream gradient (HCL) recomputes the blocks for ``dL/dk``.
``tiled=None`` picks the tiled path when M x N exceeds :data:`AUTO_ELEMENTS`.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

#: M x N above which ``tiled=None`` chooses the tiled path (2**24 logits = 64 MB in float32)
AUTO_ELEMENTS = 1 << 24
#: about this many logits per block (one block is ``tile`` rows by N columns, 256 to 1024 rows)
BLOCK_ELEMENTS = 1 << 25
#: force a number of rows per block everywhere (tests use a tile that does not divide N)
TILE_ROWS: int | None = None


def use_tiled(tiled: bool | None, m: int, n: int) -> bool:
    return m * n > AUTO_ELEMENTS if tiled is None else bool(tiled)


def _tile_rows(n: int, tile: int | None) -> int:
    tile = TILE_ROWS if tile is None else tile
    if tile is not None:
        return max(1, int(tile))
    return max(256, min(1024, BLOCK_ELEMENTS // max(n, 1)))


def _mask_(logits: Tensor, exclude: Tensor | None, start: int) -> Tensor:
    """Set ``logits[r, exclude[start + r, e]] = -inf`` for every entry >= 0, in place."""
    if exclude is not None:
        ex = exclude[start : start + logits.shape[0]]
        rows, cols = (ex >= 0).nonzero(as_tuple=True)
        logits[rows, ex[rows, cols]] = float("-inf")
    return logits


def row_lse_dense(
    q: Tensor, k: Tensor, scale: Tensor | float, exclude: Tensor | None = None
) -> Tensor:
    """``lse_i`` over the full (M, N) matrix, differentiable by autograd."""
    logits = (q @ k.t()) * scale
    if exclude is not None:
        mask = torch.zeros_like(logits, dtype=torch.bool)
        rows, cols = (exclude >= 0).nonzero(as_tuple=True)
        mask[rows, exclude[rows, cols]] = True
        logits = logits.masked_fill(mask, float("-inf"))
    return torch.logsumexp(logits, dim=1)


def _exp_range(dtype: torch.dtype) -> float:
    """Largest spread of logits below a row's shift for which exp() cannot underflow the row sum."""
    return 600.0 if dtype == torch.float64 else 60.0


class _RowLSETiled(torch.autograd.Function):
    """Forward: per block of rows, ``E = exp(scale q k^T - c)`` (exclusions zeroed), the row sums
    and ``lse``; with ``grad`` it also keeps ``A_i = sum_j p_ij k_j`` (M x D), which gives the
    gradients of q and of the scale for any upstream gradient, and the gradient of k for a uniform
    upstream gradient. Backward recomputes the blocks only for the gradient of k under a
    non-uniform upstream gradient. The shift ``c_i`` is the bound ``scale |q_i| max_j |k_j|`` when
    the logits' spread (at most ``2 c_i``) is safe for exp(), else the row maximum."""

    @staticmethod
    def forward(
        ctx: Any, q: Tensor, k: Tensor, scale: Tensor, exclude: Tensor | None, tile: int, grad: bool
    ) -> Tensor:
        s = float(scale)
        m = q.shape[0]
        kt = k.t().contiguous()
        bound = s * q.norm(dim=1) * k.norm(dim=1).max() if k.shape[0] else q.new_zeros(m)
        use_bound = bool((2 * bound.abs() <= _exp_range(q.dtype)).all())
        out = q.new_empty(m)
        a_all = torch.empty_like(q) if grad else None
        dk = torch.zeros_like(k) if grad else None
        tiny = torch.finfo(q.dtype).tiny
        for a in range(0, m, tile):
            qa = q[a : a + tile]
            if use_bound:
                shift = bound[a : a + tile]
                logits = torch.addmm(-shift[:, None], qa * s, kt)
                _mask_(logits, exclude, a)
            else:
                logits = _mask_(torch.mm(qa * s, kt), exclude, a)
                shift = logits.max(1).values.nan_to_num(neginf=0.0)
                logits.sub_(shift[:, None])
            e = logits.exp_()
            ssum = e.sum(1)
            out[a : a + tile] = ssum.log() + shift
            if a_all is not None and dk is not None:
                inv = 1.0 / ssum.clamp_min(tiny)
                a_all[a : a + tile] = (e @ k) * inv[:, None]
                dk.addmm_(e.t(), qa * inv[:, None])
        ctx.save_for_backward(q, k, out, exclude if exclude is not None else torch.empty(0), a_all)
        ctx.scale, ctx.tile, ctx.has_ex, ctx.dk = s, tile, exclude is not None, dk
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        q, k, lse_all, exclude, a_all = ctx.saved_tensors
        exclude = exclude if ctx.has_ex else None
        s, tile = ctx.scale, ctx.tile
        dq = a_all * (g * s)[:, None]
        dscale = (g * (q * a_all).sum(1)).sum()
        g0 = g.reshape(-1)[:1]
        if ctx.dk is not None and bool((g == g0).all()):
            dk = ctx.dk * (g0 * s)
            return dq, dk, dscale, None, None, None
        dk = torch.zeros_like(k)
        kt = k.t().contiguous()
        lse_all = lse_all.nan_to_num(neginf=0.0)
        for a in range(0, q.shape[0], tile):
            qa = q[a : a + tile]
            logits = torch.addmm(-lse_all[a : a + tile, None], qa * s, kt)
            p = _mask_(logits, exclude, a).exp_()
            dk.addmm_(p.t(), qa * g[a : a + tile, None], alpha=s)
        return dq, dk, dscale, None, None, None


def row_lse_tiled(
    q: Tensor,
    k: Tensor,
    scale: Tensor | float,
    exclude: Tensor | None = None,
    tile: int | None = None,
) -> Tensor:
    """``lse_i`` computed ``tile`` rows at a time with an exact custom backward."""
    scale_t = scale if isinstance(scale, Tensor) else torch.tensor(float(scale), dtype=q.dtype)
    needs = torch.is_grad_enabled() and (
        q.requires_grad or k.requires_grad or scale_t.requires_grad
    )
    out = _RowLSETiled.apply(  # type: ignore[no-untyped-call]
        q, k, scale_t, exclude, _tile_rows(k.shape[0], tile), needs
    )
    return cast(Tensor, out)


def row_lse(
    q: Tensor,
    k: Tensor,
    scale: Tensor | float,
    exclude: Tensor | None = None,
    tiled: bool | None = None,
    tile: int | None = None,
) -> Tensor:
    """``lse_i = log sum_{j not in exclude[i]} exp(scale * q_i . k_j)`` for every row ``i``.

    Parameters
    ----------
    q : (M, D) anchors; k : (N, D) keys; scale : float or 0-d tensor (may require grad)
    exclude : (M, E) long tensor of key indices left out of row i's sum; -1 entries are ignored
    tiled : True / False forces the path; None picks tiled when M x N > ``AUTO_ELEMENTS``
    tile : rows per block (default: about ``BLOCK_ELEMENTS / N``)
    """
    if use_tiled(tiled, q.shape[0], k.shape[0]):
        return row_lse_tiled(q, k, scale, exclude, tile)
    return row_lse_dense(q, k, scale, exclude)
