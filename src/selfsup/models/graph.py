"""Graph encoders in plain torch (``index_add_`` / ``scatter_reduce``; no compiled add-ons needed).

- :class:`GraphBatch`: what a graph run's training loop and views hold: the whole graph (node
  features ``x`` (N, F), ``edge_index`` (2, E)) and the node ids ``nodes`` of the batch. ``len(b)``
  and ``b[idx]`` select nodes (the graph stays whole: message passing is transductive).
- Layers: :class:`GCNLayer` (Kipf & Welling 2017: D^-1/2 (A + I) D^-1/2 X W), :class:`GATLayer`
  (Velickovic et al. 2018: multi-head attention, softmax over each node's in-edges and itself),
  :class:`GINLayer` (Xu et al. 2019: MLP((1 + eps) h_i + sum_j h_j)).
- Backbones by name (:data:`GRAPH_BACKBONES`), widths scaled by ``model.width``: ``gcn`` (256 ->
  128, GRACE's Cora encoder), ``gat`` (two layers of 4 heads x 64 = 256, PReLU; ``width 2``:
  GraphMAE's
  512), ``gin`` (two layers, 256), ``mlp`` (SDCN / SCGC's 500-500-2000-10 on node features alone).
- :class:`GraphEncoder`: the feature normalisation recorded in the meta (``row``: each node's
  features divided by their sum, as PyG's NormalizeFeatures / DGL's Cora; ``standard``: training
  statistics) and a backbone; ``encoder(batch)`` gives the (len(batch), D) features of the batch's
  nodes.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GraphBatch:
    """The whole graph and the node ids of a batch: ``len(b)``, ``b[idx]``, ``b.to(device)``."""

    __slots__ = ("x", "edge_index", "nodes")

    def __init__(self, x: Tensor, edge_index: Tensor, nodes: Tensor | None = None):
        self.x, self.edge_index = x, edge_index
        self.nodes = torch.arange(len(x), device=x.device) if nodes is None else nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, idx: Any) -> GraphBatch:
        return GraphBatch(self.x, self.edge_index, self.nodes[idx])

    def to(self, *args: Any, **kwargs: Any) -> GraphBatch:
        return GraphBatch(
            self.x.to(*args, **kwargs),
            self.edge_index.to(args[0] if args else kwargs.get("device")),
            self.nodes.to(args[0] if args else kwargs.get("device")),
        )

    def replace(self, x: Tensor | None = None, edge_index: Tensor | None = None) -> GraphBatch:
        return GraphBatch(
            self.x if x is None else x,
            self.edge_index if edge_index is None else edge_index,
            self.nodes,
        )

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return (
            f"GraphBatch(x={tuple(self.x.shape)}, edges={self.edge_index.shape[1]}, "
            f"nodes={len(self.nodes)})"
        )


def add_self_loops(edge_index: Tensor, n: int) -> Tensor:
    """``edge_index`` without its self-loops, plus one self-loop per node."""
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(n, device=edge_index.device).expand(2, n)
    return torch.cat([edge_index[:, keep], loops], dim=1)


def gcn_norm(edge_index: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``(edges with self-loops, weights 1/sqrt(d_src d_dst))`` of D^-1/2 (A + I) D^-1/2."""
    e = add_self_loops(edge_index, n)
    deg = torch.bincount(e[1], minlength=n).float()
    dinv = deg.clamp(min=1).rsqrt()
    return e, dinv[e[0]] * dinv[e[1]]


def propagate(h: Tensor, edge_index: Tensor, weight: Tensor | None = None) -> Tensor:
    """out[dst] = sum over edges (src -> dst) of weight * h[src]."""
    msg = h[edge_index[0]]
    if weight is not None:
        msg = msg * weight.view(-1, *([1] * (msg.dim() - 1)))
    return torch.zeros(h.shape, dtype=msg.dtype, device=h.device).index_add_(0, edge_index[1], msg)


def edge_softmax(scores: Tensor, dst: Tensor, n: int) -> Tensor:
    """Softmax of per-edge ``scores`` (E, H) over the edges sharing a destination node."""
    idx = dst.view(-1, 1).expand_as(scores)
    mx = torch.full((n, scores.shape[1]), float("-inf"), device=scores.device, dtype=scores.dtype)
    mx = mx.scatter_reduce(0, idx, scores, reduce="amax", include_self=True)
    ex = (scores - mx[dst]).exp()
    den = torch.zeros((n, scores.shape[1]), device=scores.device, dtype=scores.dtype).index_add_(
        0, dst, ex
    )
    return ex / den[dst].clamp(min=1e-16)


class GCNLayer(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.lin = nn.Linear(d_in, d_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(d_out))
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        e, w = gcn_norm(edge_index, len(h))
        return propagate(self.lin(h), e, w) + self.bias


# the CSR products below are exact; torch marks CSR as "beta" with a warning on every construction
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class EdgePlan:
    """A graph's self-looped edges into its output rows, in CSR order (sorted by output row, then
    source), with what the CSR products of :class:`_EdgeSpMM` need: ``src`` and ``tgt`` (node ids)
    and ``row`` (output row) per edge, the in-degree of each output row, the edges' order sorted by
    (source, row) for the transposed product and the source counts, and where each edge's
    attention-dropout draw lies (``draw`` into ``n_draws`` draws: the edges' order before sorting,
    so the masks are the ones the unsorted layer drew). Built once per graph for all rows
    (:func:`edge_plan` caches it); a subset of output rows is selected from that without sorting.
    ``unsort``: the output rows' order when the caller's ``dst`` was not ascending."""

    __slots__ = (
        "src", "tgt", "row", "n", "n_out", "counts", "tperm", "tcounts", "draw", "n_draws",
        "unsort", "_csr",
    )  # fmt: skip

    def __init__(self, **kw: Any) -> None:
        self.unsort: Tensor | None = None
        self._csr: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        for k, v in kw.items():
            setattr(self, k, v)

    def csr(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(crow, col, tcrow, tcol)``: the CSR pattern of the (n_out, n) attention matrix and of
        its transpose (cached)."""
        if self._csr is None:
            dev = self.src.device
            crow = torch.zeros(self.n_out + 1, dtype=torch.long, device=dev)
            crow[1:] = self.counts.cumsum(0)
            tcrow = torch.zeros(self.n + 1, dtype=torch.long, device=dev)
            tcrow[1:] = self.tcounts.cumsum(0)
            self._csr = (crow, self.src, tcrow, self.row.index_select(0, self.tperm))
        return self._csr


def plan_sources(plan: EdgePlan, rows: Tensor) -> tuple[EdgePlan, Tensor]:
    """The edges of ``plan`` out of the (distinct, ascending) nodes ``rows`` (the others' features
    are zero), their sources renumbered ``0 .. len(rows) - 1``: the sub-plan (CSR orders kept, no
    dropout draws) and the kept edges' positions in ``plan``."""
    pos = torch.full((plan.n,), -1, dtype=torch.long, device=rows.device)
    pos[rows] = torch.arange(len(rows), device=rows.device)
    ps = pos.index_select(0, plan.src)
    kept_mask = ps >= 0
    kept = kept_mask.nonzero().flatten()
    rank = kept_mask.cumsum(0) - 1
    src, row = ps.index_select(0, kept), plan.row.index_select(0, kept)
    sub = EdgePlan(
        src=src, tgt=plan.tgt.index_select(0, kept), row=row, n=len(rows), n_out=plan.n_out,
        counts=torch.bincount(row, minlength=plan.n_out),
        tperm=rank.index_select(0, plan.tperm[kept_mask.index_select(0, plan.tperm)]),
        tcounts=plan.tcounts.index_select(0, rows), draw=None, n_draws=0,
    )  # fmt: skip
    return sub, kept


#: full-graph plans by (id(edge_index), n): (edge_index, its version, plan); a few graphs at most
_PLANS: dict[tuple[int, int], tuple[Tensor, int, EdgePlan]] = {}


def _full_plan(edge_index: Tensor, n: int) -> EdgePlan:
    key = (id(edge_index), n)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is edge_index and hit[1] == edge_index._version:
        return hit[2]
    e = add_self_loops(edge_index, n)
    order = torch.argsort(e[1] * n + e[0])
    src, row = e[0].index_select(0, order), e[1].index_select(0, order)
    plan = EdgePlan(
        src=src, tgt=row, row=row, n=n, n_out=n,
        counts=torch.bincount(row, minlength=n),
        tperm=torch.argsort(src * n + row),
        tcounts=torch.bincount(src, minlength=n),
        draw=order, n_draws=len(order),
    )  # fmt: skip
    while len(_PLANS) >= 4:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[key] = (edge_index, edge_index._version, plan)
    return plan


def edge_plan(
    edge_index: Tensor, n: int, dst: Tensor | None = None, full_draws: bool = False
) -> EdgePlan:
    """The :class:`EdgePlan` of ``edge_index`` (plus one self-loop per node) into every node, or
    into the (distinct) nodes ``dst``, output row ``k`` for ``dst[k]``. The attention-dropout
    draws of a subset are one per selected edge (as a layer that selects its edges first), or
    with ``full_draws`` one per edge of the graph (as the whole layer, of which the rows are
    kept)."""
    full = _full_plan(edge_index, n)
    if dst is None:
        return full
    unsort = None
    if len(dst) > 1 and not bool((dst[1:] > dst[:-1]).all()):
        dst, order = dst.sort()
        unsort = torch.empty_like(order)
        unsort[order] = torch.arange(len(order), device=order.device)
    crow = full.csr()[0]
    start, cnt = crow.index_select(0, dst), full.counts.index_select(0, dst)
    total = int(cnt.sum())
    first = torch.zeros_like(cnt)
    first[1:] = cnt.cumsum(0)[:-1]
    idx = torch.arange(total, device=dst.device) + torch.repeat_interleave(
        start - first, cnt, output_size=total
    )  # positions in the full plan's edge list, ascending
    src = full.src.index_select(0, idx)
    row = torch.repeat_interleave(torch.arange(len(dst), device=dst.device), cnt, output_size=total)
    sel = torch.zeros(len(full.src), dtype=torch.bool, device=dst.device)
    sel[idx] = True
    rank = sel.cumsum(0) - 1
    tperm = rank.index_select(0, full.tperm[sel.index_select(0, full.tperm)])
    orig = full.draw.index_select(0, idx)
    if full_draws:
        draw, n_draws = orig, full.n_draws
    else:  # the selected edges' ranks in the unsorted order
        in_orig = torch.zeros(full.n_draws, dtype=torch.bool, device=dst.device)
        in_orig[orig] = True
        draw, n_draws = (in_orig.cumsum(0) - 1).index_select(0, orig), total
    return EdgePlan(
        src=src, tgt=full.tgt.index_select(0, idx), row=row, n=n, n_out=len(dst), counts=cnt,
        tperm=tperm, tcounts=torch.bincount(src, minlength=n), draw=draw, n_draws=n_draws,
        unsort=unsort,
    )  # fmt: skip


class _EdgeSpMM(torch.autograd.Function):
    """``out[i, h] = sum over edges (j -> i) of a[e, h] * feat[j, h]`` for the edges of an
    :class:`EdgePlan` (``a`` (E, H) in its CSR order), as one CSR matrix product per head
    (forward and the features' gradient) on the head's columns of the node-major features and
    output (strided: no head-major copies; one product per head on strided columns measured 4x
    faster on Cora than one block-diagonal product of the head-major copies); the attention
    gradient ``<g[i, h], feat[j, h]>`` sampled at the edges (``torch.sparse.sampled_addmm`` on the
    same pattern, its values in the plan's order). The same sums as gather-multiply-``index_add_``,
    without an (E, H, D) message tensor in memory."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, feat: Tensor, a: Tensor, plan: EdgePlan
    ) -> Tensor:
        n, heads, d = feat.shape
        crow, col, _, _ = plan.csr()
        at = a.t().contiguous()
        out = feat.new_empty((plan.n_out, heads, d))
        for h in range(heads):
            m = torch.sparse_csr_tensor(crow, col, at[h], (plan.n_out, n), check_invariants=False)
            _spmm(m, feat[:, h], out[:, h])
        ctx.save_for_backward(feat, at)
        ctx.plan = plan
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        feat, at = ctx.saved_tensors
        plan = ctx.plan
        (n, heads, d), n_out = feat.shape, plan.n_out
        crow, col, tcrow, tcol = plan.csr()
        g_feat = g_a = None
        if ctx.needs_input_grad[0]:
            g_feat = feat.new_empty((n, heads, d))
            tvals = at.index_select(1, plan.tperm)
            for h in range(heads):
                m = torch.sparse_csr_tensor(
                    tcrow, tcol, tvals[h], (n, n_out), check_invariants=False
                )
                _spmm(m, g[:, h], g_feat[:, h])
        if ctx.needs_input_grad[1]:  # the dot products at the (row, src) positions, in order
            m = torch.sparse_csr_tensor(
                crow, col, at.new_zeros(len(col)), (n_out, n), check_invariants=False
            )
            g_a = at.new_empty(at.shape)
            for h in range(heads):
                gh, fh = g[:, h], feat[:, h]
                if gh.device.type != "cpu":  # strided operands measured on CPU only
                    gh, fh = gh.contiguous(), fh.contiguous()
                g_a[h] = torch.sparse.sampled_addmm(m, gh, fh.t(), beta=0.0).values()
            g_a = g_a.t()
        return g_feat, g_a, None


def _spmm(m: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """``m @ b`` for a sparse CSR ``m`` and a dense ``b`` (row-major, its rows may be strided:
    a head's columns), through ``torch.addmm(..., out=)`` (into ``out``, which may be strided the
    same way): the same numbers, about 3x faster on CPU than ``m @ b`` (torch 2.13, measured on
    the attention matrices of Cora: ``m @ b`` spends most of its time filling and copying its
    result). Strided operands on CPU only (measured there); elsewhere contiguous copies."""
    cpu = b.device.type == "cpu"
    if not cpu or b.stride(-1) != 1 or b.stride(0) < b.shape[1]:
        b = b.contiguous()
    if out is None or not cpu:
        res = torch.empty((m.shape[0], b.shape[1]), dtype=b.dtype, device=b.device)
        res = torch.addmm(res, m, b, beta=0, out=res)
        return res if out is None else out.copy_(res)
    return torch.addmm(out, m, b, beta=0, out=out)


def edge_aggregate(
    feat: Tensor, a: Tensor, src: Tensor, row: Tensor, n_out: int, plan: EdgePlan | None = None
) -> Tensor:
    """``out[i, h] = sum over edges e (src[e] -> row[e]) of a[e, h] * feat[src[e], h]``: ``feat``
    (N, H, D), ``a`` (E, H), ``row`` in ``[0, n_out)``; returns (n_out, H, D). ``plan``: the
    edges' :class:`EdgePlan` (``src``, ``row`` and ``a`` in its order)."""
    if feat.is_sparse or feat.dtype not in (torch.float32, torch.float64):
        msg = feat[src] * a.unsqueeze(-1)
        out = feat.new_zeros((n_out, *feat.shape[1:]))
        return out.index_add_(0, row, msg)
    if plan is None:  # any edge order: sorted here
        n = len(feat)
        order = torch.argsort(row * n + src)
        s, r = src.index_select(0, order), row.index_select(0, order)
        plan = EdgePlan(
            src=s, tgt=r, row=r, n=n, n_out=n_out, counts=torch.bincount(r, minlength=n_out),
            tperm=torch.argsort(s * n_out + r), tcounts=torch.bincount(s, minlength=n),
            draw=order, n_draws=len(order),
        )  # fmt: skip
        a = a.index_select(0, order)
    return _EdgeSpMM.apply(feat, a, plan)  # type: ignore[no-any-return]


class RowPatch:
    """Node features ``base`` (N, F) whose (distinct) rows ``rows`` are replaced by ``values``
    (len(rows), F), or all by one row (1, F), kept apart: ``base`` is data (no gradient), only
    ``values`` may carry one (GraphMAE's [MASK] token). :class:`GATLayer` multiplies the base's
    other rows as a sparse matrix, the patched rows densely, and computes the input gradient of
    the patched rows only; every other layer gets :meth:`dense`, the plain (N, F) matrix. The same
    numbers either way.

    ``copy`` ``(dst, src)``: rows ``dst`` take ``base``'s rows ``src`` first (GraphMAE's random
    replacements); ``sparse`` ``(other, csr)``: the ids of the rows not in ``rows`` (ascending) and
    their features as a sparse CSR matrix, when the caller has them (then ``base`` is not copied
    for the first layer)."""

    __slots__ = ("base", "rows", "values", "copy", "sparse")

    def __init__(
        self,
        base: Tensor,
        rows: Tensor,
        values: Tensor,
        copy: tuple[Tensor, Tensor] | None = None,
        sparse: tuple[Tensor, Tensor] | None = None,
    ):
        self.base, self.rows, self.values = base, rows, values
        self.copy, self.sparse = copy, sparse

    @property
    def shape(self) -> torch.Size:
        return self.base.shape

    def dense(self) -> Tensor:
        out = self.base
        if self.copy is not None:
            out = out.index_put((self.copy[0],), out.index_select(0, self.copy[1]))
        return out.index_put((self.rows,), self.values.expand(len(self.rows), -1))


class SparseRows:
    """An (n, D) matrix that is zero but at the (distinct, ascending) rows ``rows``, ``values``
    (len(rows), D) (GraphMAE's re-masked codes: its decoder reads only the unmasked in-neighbours
    of masked nodes). :class:`GATLayer`'s aggregate-then-project path computes with those rows
    only (the dropout mask drawn whole, the zero rows' logits zero, their edges out of the
    aggregation); elsewhere :meth:`dense`."""

    __slots__ = ("values", "rows", "n")

    def __init__(self, values: Tensor, rows: Tensor, n: int):
        self.values, self.rows, self.n = values, rows, n

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.n, self.values.shape[1]))

    def dense(self) -> Tensor:
        out = self.values.new_zeros(self.shape)
        return out.index_copy(0, self.rows, self.values)


def csr_rows(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` (any order, repeats allowed) of a sparse CSR matrix ``x``, as a CSR matrix: work
    in proportion to their non-zeros (``index_select`` on a CSR tensor is not in torch's CPU
    kernels for every version)."""
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    start = crow.index_select(0, idx)
    counts = crow.index_select(0, idx + 1) - start
    new_crow = torch.zeros(len(idx) + 1, dtype=crow.dtype, device=crow.device)
    new_crow[1:] = counts.cumsum(0)
    total = int(new_crow[-1])
    at = torch.arange(total, device=crow.device) + torch.repeat_interleave(
        start - new_crow[:-1], counts, output_size=total
    )
    return torch.sparse_csr_tensor(
        new_crow,
        col.index_select(0, at),
        val.index_select(0, at),
        (len(idx), x.shape[1]),
        check_invariants=False,
    )


class _CsrLinear(torch.autograd.Function):
    """``x @ weight.t()`` for a constant sparse CSR ``x``; the gradient goes to ``weight`` only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        ctx.x = x
        return x @ weight.t()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[None, Tensor]:
        return None, (ctx.x.t() @ g).t()


class _TokenLinear(torch.autograd.Function):
    """``(keep * t) @ weight.t()`` for one row ``t`` (1, F) under a constant dropout mask ``keep``
    (R, F), as ``keep @ (weight * t).t()`` (the row scaled into the (O, F) weight, not into the
    (R, F) mask): both gradients from the one product ``P = g.t() @ keep``: ``dW = P * t``,
    ``dt = sum_o P[o] * W[o]`` (the input gradient of the R rows costs no second product)."""

    @staticmethod
    def forward(ctx: Any, keep: Tensor, t: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep, t, weight)
        return keep @ (weight * t).t()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[None, Tensor, Tensor]:
        keep, t, weight = ctx.saved_tensors
        p = (keep.t() @ g).t()  # (O, F); MKL is faster with the long side first (measured)
        return None, (p * weight).sum(0, keepdim=True), p * t


def keep_mask(
    shape: tuple[int, ...],
    p: float,
    like: Tensor,
    rows: Tensor | None = None,
    scaled: bool = True,
) -> Tensor:
    """Inverted-dropout multipliers of ``shape`` (``like``'s dtype and device): each entry
    independently ``1 / (1 - p)`` with probability ``1 - p`` (to within 2^-31), else 0.

    On CPU torch's ``bernoulli_`` draws one double per entry from its Mersenne Twister (on this
    AMD CPU there is no vectorised path: about 9 % of a GraphMAE step on Cora); here one 63-bit
    word gives two entries (its two 32-bit halves, 31 bits each), about 3x cheaper. Elsewhere, and
    for ``p`` outside (0, 1), what ``nn.Dropout`` would draw. ``rows``: the rows ``rows`` of the
    mask only, drawn as the whole mask (the same random stream). ``scaled=False``: the mask in
    0 and 1 (the caller scales elsewhere by ``1 / (1 - p)``; ``p`` in (0, 1))."""
    if not 0 < p < 1 or like.device.type != "cpu":
        k = F.dropout(torch.ones(shape, dtype=like.dtype, device=like.device), p)
        k = k if scaled or not 0 < p < 1 else (k != 0).to(like.dtype)
        return k if rows is None else k.index_select(0, rows)
    n = math.prod(shape)
    words = torch.empty((n + 1) // 2, dtype=torch.int64, device=like.device).random_()  # [0, 2^63)
    u = words.view(torch.int32)[:n].view(shape)  # two uniform 32-bit numbers a word
    if rows is not None:
        u, shape = u.index_select(0, rows), (len(rows), *shape[1:])
    # 31 bits each; the comparison written as floats (no boolean mask converted)
    keep = torch.lt(
        u.bitwise_and_(0x7FFFFFFF),
        int(round((1 - p) * 2**31)),
        out=torch.empty(u.shape, dtype=like.dtype, device=like.device),
    )
    return keep.mul_(1 / (1 - p)) if scaled else keep


def dropout(x: Tensor, drop: nn.Dropout) -> Tensor:
    """``drop(x)`` with its mask from :func:`keep_mask` (the same distribution, drawn faster)."""
    if not drop.training or drop.p == 0:
        return x
    if x.device.type != "cpu" or not 0 < drop.p < 1:
        return drop(x)  # type: ignore[no-any-return]
    return x * keep_mask(tuple(x.shape), drop.p, x)


#: below this fraction of non-zeros the first GAT layer multiplies the data rows as a sparse matrix
SPARSE_DENSITY = 0.1


def patched_linear(
    h: RowPatch, weight: Tensor, drop: nn.Dropout, keep: Tensor | None = None
) -> Tensor:
    """``F.linear(drop(h.dense()), weight)`` (no bias). When the base's data rows are sparse
    (under :data:`SPARSE_DENSITY` non-zeros; Cora's bag-of-words rows are about 1 % after the row
    normalisation) they are one CSR product and the dropout is drawn for their non-zeros only (a
    zero stays zero whatever its draw: the same distribution); otherwise a dense product. Given
    ``keep`` ((N, F) multipliers; tests), that exact mask instead of fresh draws."""
    n, p = h.base.shape[0], drop.p if drop.training else 0.0
    if h.sparse is not None:
        other, sp = h.sparse
        data = sp
    else:
        other = torch.ones(n, dtype=torch.bool, device=h.base.device)
        other[h.rows] = False
        other = other.nonzero().flatten()
        data = (h.base if h.copy is None else h.dense()).index_select(0, other)
    one_row = len(h.values) == 1 and len(h.rows) != 1
    token = h.values
    if keep is None and 0 < p:
        # one token row: its mask in 0 and 1, the scale 1 / (1 - p) on the row (one pass less)
        tok_keep = keep_mask((len(h.rows), h.base.shape[1]), p, h.base, scaled=not one_row)
        token = token * (1 / (1 - p)) if one_row else token
    elif keep is None:
        tok_keep = h.base.new_ones((len(h.rows), h.base.shape[1]))
    else:
        tok_keep = keep.index_select(0, h.rows)
    if one_row:  # one token row for all: one product less
        top = _TokenLinear.apply(tok_keep, token, weight)
    else:
        top = (h.values * tok_keep) @ weight.t()
    if h.sparse is not None or int(torch.count_nonzero(data)) <= SPARSE_DENSITY * data.numel():
        sp = data if data.layout == torch.sparse_csr else data.to_sparse_csr()
        vals = sp.values()
        if keep is not None:  # the given mask at the non-zeros' positions
            rows = torch.repeat_interleave(
                torch.arange(len(other), device=sp.device), sp.crow_indices().diff()
            )
            vals = vals * keep.index_select(0, other)[rows, sp.col_indices()]
        elif p > 0:
            vals = vals * keep_mask((len(vals),), p, vals)
        sp = torch.sparse_csr_tensor(
            sp.crow_indices(), sp.col_indices(), vals, sp.shape, check_invariants=False
        )
        rest = _CsrLinear.apply(sp, weight)
    else:
        k = keep.index_select(0, other) if keep is not None else None
        if k is None and p > 0:
            k = keep_mask(tuple(data.shape), p, data)
        rest = (data if k is None else data * k) @ weight.t()
    return _Interleave.apply(top, h.rows, rest, other)  # type: ignore[no-any-return]


class _Interleave(torch.autograd.Function):
    """Rows ``a`` at ``ia`` and rows ``b`` at ``ib`` (together every row once) of one matrix: one
    pass (``cat`` then reordering: two), the gradients two row selections."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, ia: Tensor, b: Tensor, ib: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(ia, ib)
        out = a.new_empty((len(ia) + len(ib), a.shape[1]))
        return out.index_copy_(0, ia, a).index_copy_(0, ib, b)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, Tensor, None]:
        ia, ib = ctx.saved_tensors
        return g.index_select(0, ia), None, g.index_select(0, ib), None


class _AttnLogits(torch.autograd.Function):
    """``el[n, h] = sum_d flat[n, h D + d] attn_l[0, h, d]`` and ``er`` with ``attn_r``: forward
    one product with the (H D, 2 H) block matrix of the attention vectors (no (N, H, D) products
    in memory); backward without the thin products MKL is slow at on this CPU (measured: an
    (N, 8) x (8, 512) product took 3x the element-wise form): the features' gradient element-wise,
    the vectors' as ``g^T flat`` (2 H, H D) and its diagonal blocks."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, flat: Tensor, attn_l: Tensor, attn_r: Tensor
    ) -> tuple[Tensor, Tensor]:
        _, H, D = attn_l.shape
        eye = torch.eye(H, dtype=flat.dtype, device=flat.device).view(1, H, 1, H)
        att = torch.cat([attn_l, attn_r]).view(2, H, D, 1) * eye  # [k, h, d, h']
        lr = flat @ att.permute(1, 2, 0, 3).reshape(H * D, 2 * H)
        ctx.save_for_backward(flat, attn_l, attn_r)
        return lr[:, :H].contiguous(), lr[:, H:].contiguous()

    @staticmethod
    def backward(ctx: Any, gl: Tensor, gr: Tensor) -> tuple[Tensor | None, ...]:
        flat, attn_l, attn_r = ctx.saved_tensors
        n, (_, H, D) = len(flat), attn_l.shape
        g_flat = g_l = g_r = None
        if ctx.needs_input_grad[0]:
            # one product and one fused multiply-add (half the time of two products and a sum)
            g_flat = torch.addcmul(gl.unsqueeze(-1) * attn_l, gr.unsqueeze(-1), attn_r)
            g_flat = g_flat.view(n, H * D)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            p = (torch.cat([gl, gr], 1).t() @ flat).view(2, H, H, D)  # [k, h', h, d]
            heads = torch.arange(H, device=flat.device)
            diag = p[:, heads, heads]  # (2, H, D)
            g_l, g_r = diag[0].unsqueeze(0), diag[1].unsqueeze(0)
        return g_flat, g_l, g_r


def dropped_input(h: Tensor | RowPatch | SparseRows, n: int, d_in: int, drop: nn.Dropout) -> Tensor:
    """A layer's input ``h`` after feature dropout: for :class:`SparseRows`, its non-zero rows only
    (the (n, d_in) mask drawn whole, then those rows kept, so the random stream is the dense
    one's); otherwise the dense matrix."""
    if isinstance(h, SparseRows):
        hd = h.values
        if drop.training and drop.p > 0:
            hd = hd * keep_mask((n, d_in), drop.p, hd, h.rows)
        return hd
    return dropout(h.dense() if isinstance(h, RowPatch) else h, drop)


class GATLayer(nn.Module):
    """``heads`` attention heads of ``d_out`` each, concatenated (or averaged with
    ``concat=False``).

    ``forward(h, edge_index, dst=None)``: every node's output, or with ``dst`` (node ids) only those
    nodes' rows (the softmax still runs over each one's full in-neighbourhood: the same numbers).
    When a head's output is wider than the input (GraphMAE's decoder: 512 -> 1,433), the layer
    aggregates the inputs and projects afterwards (A (h W) = (A h) W, the attention logits through
    ``W^T a``): the same function with fewer numbers on the edges; there ``project=False`` returns
    the aggregates (n_out, H, d_in) before the projection and the bias (``out = agg W_h^T + b``;
    GraphMAE's loss reads them without forming the 1,433-wide rows).

    Dropout (features and attention) draws its masks by :func:`keep_mask` (``nn.Dropout``'s
    distribution, fewer random words on CPU); with ``dst`` the attention draws are one per kept
    edge, or with ``full_draws=True`` those of the whole layer (its rows kept: the same stream).
    ``h`` may be a :class:`RowPatch` (the first layer's masked input) or a :class:`SparseRows`
    (only its non-zero rows computed). The edges come from :func:`edge_plan` (sorted once per
    graph)."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        heads: int = 1,
        feat_drop: float = 0.0,
        attn_drop: float = 0.0,
        negative_slope: float = 0.2,
        concat: bool = True,
    ):
        super().__init__()
        self.heads, self.d_out, self.concat = heads, d_out, concat
        self.fc = nn.Linear(d_in, heads * d_out, bias=False)
        self.attn_l = nn.Parameter(torch.empty(1, heads, d_out))
        self.attn_r = nn.Parameter(torch.empty(1, heads, d_out))
        self.bias = nn.Parameter(torch.zeros(heads * d_out if concat else d_out))
        self.feat_drop, self.attn_drop = nn.Dropout(feat_drop), nn.Dropout(attn_drop)
        self.negative_slope = negative_slope
        gain = nn.init.calculate_gain("relu")
        for p in (self.fc.weight, self.attn_l, self.attn_r):
            nn.init.xavier_normal_(p, gain=gain)

    def _logits(self, flat: Tensor) -> tuple[Tensor, Tensor]:
        """``(feat * attn_l).sum(-1)`` and the same with ``attn_r`` (each (N, H)) for the projected
        features ``flat`` (N, H D): :class:`_AttnLogits`."""
        el, er = _AttnLogits.apply(flat, self.attn_l, self.attn_r)
        return el, er

    def forward(
        self,
        h: Tensor | RowPatch | SparseRows,
        edge_index: Tensor,
        dst: Tensor | None = None,
        project: bool = True,
        full_draws: bool = False,
    ) -> Tensor:
        n, d_in = h.shape
        # the edges in CSR order (built once per graph; a subset selected from it): each edge's
        # attention-dropout draw where the unsorted layer drew it (``full_draws``: as for every
        # row of the layer, of which only ``dst``'s are returned)
        plan = edge_plan(edge_index, n, dst, full_draws)
        n_out = plan.n_out
        H, D = self.heads, self.d_out
        late = D > d_in  # project after aggregating (fewer numbers per edge)
        if not project and not late:
            raise ValueError("project=False needs a layer wider than its input (d_out > d_in)")
        if (
            isinstance(h, RowPatch)
            and not late
            and h.base.device.type == "cpu"  # measured on CPU only; elsewhere the plain path
            and h.base.dtype in (torch.float32, torch.float64)
        ):  # sparse data rows, dense patched rows
            flat = patched_linear(h, self.fc.weight, self.feat_drop)
            el, er = self._logits(flat)
            feat = flat.view(n, H, D)
        elif late:
            hd = dropped_input(h, n, d_in, self.feat_drop)
            w = self.fc.weight.view(H, D, d_in)
            wl = (w * self.attn_l.view(H, D, 1)).sum(1)  # (H, d_in): W^T a_l per head
            wr = (w * self.attn_r.view(H, D, 1)).sum(1)
            if H == 1:  # the same numbers without the thin products' backward
                el, er = _AttnLogits.apply(hd, wl.view(1, 1, d_in), wr.view(1, 1, d_in))
            else:
                el, er = hd @ wl.t(), hd @ wr.t()  # (N, H)
            feat = hd.unsqueeze(1).expand(len(hd), H, d_in)
        else:
            hd = dropped_input(h, n, d_in, self.feat_drop)
            flat = self.fc(hd)
            el, er = self._logits(flat)
            feat = flat.view(len(flat), H, D)
        if isinstance(h, SparseRows):  # a zero row's logits are zero
            el = el.new_zeros((n, H)).index_copy(0, h.rows, el)
            er = er.new_zeros((n, H)).index_copy(0, h.rows, er)
        score = F.leaky_relu(
            el.index_select(0, plan.src) + er.index_select(0, plan.tgt), self.negative_slope
        )
        a = edge_softmax(score, plan.row, n_out)  # (E, H)
        if self.attn_drop.training and self.attn_drop.p > 0:  # as dropout(a, self.attn_drop)
            a = a * keep_mask((plan.n_draws, H), self.attn_drop.p, a).index_select(0, plan.draw)
        unsort = plan.unsort
        if isinstance(h, SparseRows):  # the zero rows' edges add nothing
            plan, kept = plan_sources(plan, h.rows)
            a = a.index_select(0, kept)
        out = edge_aggregate(feat, a, plan.src, plan.row, n_out, plan)
        if unsort is not None:
            out = out.index_select(0, unsort)
        if late and not project:  # (n_out, H, d_in): the aggregates before W and the bias
            return out
        if late:
            out = torch.einsum("nhi,hoi->nho", out, w)
        out = out.flatten(1) if self.concat else out.mean(1)
        return out + self.bias


class GINLayer(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Linear(d_out, d_out))

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        keep = edge_index[0] != edge_index[1]
        return self.mlp((1 + self.eps) * h + propagate(h, edge_index[:, keep]))


class GNN(nn.Module):
    """A stack of graph layers with an activation after each (the last too: an encoder's output)."""

    def __init__(
        self,
        kind: str,
        d_in: int,
        dims: list[int],
        heads: int = 4,
        feat_drop: float = 0.0,
        attn_drop: float = 0.0,
        act: str = "relu",
    ):
        super().__init__()
        self.kind = kind
        layers: list[nn.Module] = []
        acts: list[nn.Module] = []
        d = d_in
        for d_out in dims:
            if kind == "gcn":
                layers.append(GCNLayer(d, d_out))
            elif kind == "gat":
                layers.append(GATLayer(d, d_out // heads, heads, feat_drop, attn_drop))
            elif kind == "gin":
                layers.append(GINLayer(d, d_out))
            else:
                layers.append(nn.Linear(d, d_out))
            acts.append(nn.PReLU() if act == "prelu" else nn.ReLU())
            d = d_out
        self.layers, self.acts = nn.ModuleList(layers), nn.ModuleList(acts)
        self.drop = (
            nn.Dropout(feat_drop) if kind in ("gcn", "gin") and feat_drop > 0 else nn.Identity()
        )
        self.out_dim: int = d

    def forward(
        self, h: Tensor | RowPatch, edge_index: Tensor, rows: Tensor | None = None
    ) -> Tensor:
        """Every node's output, or with ``rows`` (node ids) those rows only: a GAT stack computes
        in each layer only the rows the next reads (the last: ``rows``; an earlier one: the
        sources of the next one's rows), with the whole layers' dropout draws (the same numbers
        and random stream); the others select them."""
        if isinstance(h, RowPatch) and self.kind != "gat":  # only the GAT layer takes it apart
            h = h.dense()
        out: Any = h  # a RowPatch goes into the first GAT layer as it is
        if self.kind == "gat" and rows is not None:
            # each layer's rows: the last's given, an earlier one's the sources of the next's
            n = int(h.shape[0])
            need = [rows]
            for _ in self.layers[1:]:
                need.insert(0, torch.unique(edge_plan(edge_index, n, need[0]).src))
            for i, (layer, act) in enumerate(zip(self.layers, self.acts)):
                inp = out if i == 0 else SparseRows(out, need[i - 1], n)  # the rows read only
                out = act(layer(inp, edge_index, need[i], full_draws=True))
            return out  # type: ignore[no-any-return]
        for i, (layer, act) in enumerate(zip(self.layers, self.acts)):
            if self.kind == "mlp":
                out = layer(out)
                out = act(out) if i < len(self.layers) - 1 else out  # SDCN's z layer is linear
            else:
                out = act(layer(self.drop(out), edge_index))
        return out if rows is None else out.index_select(0, rows)  # type: ignore[no-any-return]


def _w(width: float, d: int) -> int:
    return max(4, int(round(d * width)))


GRAPH_BACKBONES = ("gcn", "gat", "gin", "mlp")


def build_graph_backbone(name: str, d_in: int, width: float = 1.0) -> GNN:
    """A backbone by name (see the module docstring)."""
    from ..errors import ConfigError

    if name == "gcn":
        return GNN("gcn", d_in, [_w(width, 256), _w(width, 128)])
    if name == "gat":
        d = 4 * max(1, _w(width, 256) // 4)
        return GNN("gat", d_in, [d, d], heads=4, feat_drop=0.2, attn_drop=0.1, act="prelu")
    if name == "gin":
        return GNN("gin", d_in, [_w(width, 256), _w(width, 256)])
    if name == "mlp":
        return GNN("mlp", d_in, [_w(width, 500), _w(width, 500), _w(width, 2000), 10])
    raise ConfigError(
        f"unknown graph backbone '{name}'; choose one of: auto, {', '.join(GRAPH_BACKBONES)}"
    )


class GraphEncoder(nn.Module):
    """Feature normalisation + backbone; ``forward(batch)`` -> (len(batch), out_dim)."""

    #: what methods may need of it (:class:`selfsup.methods.Needs`): views are graphs with edges
    #: (``methods.build`` refuses a mismatch)
    edges = True

    def __init__(
        self, backbone: nn.Module, norm: str, mean: Tensor, std: Tensor, n_classes: int = 0
    ):
        super().__init__()
        self.backbone, self.norm = backbone, norm
        self.in_dim: int = int(mean.shape[-1])
        #: classes of the training graph's labels (0: unknown); clustering methods default to it
        self.n_classes = n_classes
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.out_dim: int = int(backbone.out_dim)

    def normalise(self, x: Tensor) -> Tensor:
        x = x.float()
        if self.norm == "row":
            return x / x.sum(1, keepdim=True).clamp(min=1e-12)
        return (x - self.mean) / self.std

    def nodes_all(self, batch: GraphBatch) -> Tensor:
        """Features of every node of the graph (N, out_dim)."""
        return self.backbone(self.normalise(batch.x), batch.edge_index)

    def forward(self, batch: GraphBatch) -> Tensor:
        return self.nodes_all(batch)[batch.nodes]


def encode_all(encoder: Any, batch: GraphBatch) -> Tensor:
    """Every node's features under a graph encoder (methods that need the whole graph: GraphMAE)."""
    return encoder.nodes_all(batch)  # type: ignore[no-any-return]


def normalised_features(encoder: Any, batch: GraphBatch) -> Tensor:
    """The graph's node features as the encoder's backbone sees them (after its normalisation)."""
    return encoder.normalise(batch.x)  # type: ignore[no-any-return]


def encode_normalised(
    encoder: Any, h: Tensor | RowPatch, edge_index: Tensor, rows: Tensor | None = None
) -> Tensor:
    """The encoder's backbone on already-normalised node features (GraphMAE's masked input; a
    :class:`RowPatch` for a GAT backbone, the plain matrix for the others); with ``rows`` (node
    ids) those nodes' outputs only (a :class:`GNN` computes no others in its last layer)."""
    if isinstance(encoder.backbone, GNN):
        return encoder.backbone(h, edge_index, rows)  # type: ignore[no-any-return]
    if isinstance(h, RowPatch):
        h = h.dense()
    out = encoder.backbone(h, edge_index)
    return out if rows is None else out.index_select(0, rows)  # type: ignore[no-any-return]


def input_dim(encoder: Any) -> int:
    """How many features per node a graph encoder takes."""
    return int(encoder.in_dim)
