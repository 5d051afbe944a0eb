"""GraphMAE's step on Cora, made cheaper (issue 24), computes the same function as the plain
formulas: the masked input's sparse first layer with dropout on the non-zeros only, the loss read
from the decoder's aggregates (no 1,433-wide reconstructions), the dropout masks drawn from 31-bit
halves of random words. Each check compares against a slow reference in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.losses.graphmae import sce_loss, sce_loss_linear
from selfsup.methods.base import Context
from selfsup.methods.graphmae import GraphMAE, GraphMAEParams
from selfsup.models.graph import (
    GATLayer,
    GraphBatch,
    GraphEncoder,
    RowPatch,
    SparseRows,
    add_self_loops,
    build_graph_backbone,
    csr_rows,
    edge_plan,
    keep_mask,
    patched_linear,
)


def _graph(n: int, m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (2, m), generator=g)
    return torch.cat([e, e.flip(0)], 1)


def _reference_gat(layer: GATLayer, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Project every node, score every edge, softmax over each node's in-edges by a loop."""
    n = len(h)
    e = add_self_loops(edge_index, n)
    feat = layer.fc(h).view(n, layer.heads, layer.d_out)
    el, er = (feat * layer.attn_l).sum(-1), (feat * layer.attn_r).sum(-1)
    score = F.leaky_relu(el[e[0]] + er[e[1]], layer.negative_slope)
    out = []
    for i in range(n):
        into = torch.nonzero(e[1] == i).flatten()
        a = torch.softmax(score[into], dim=0)
        out.append((a.unsqueeze(-1) * feat[e[0, into]]).sum(0))
    o = torch.stack(out)
    return (o.flatten(1) if layer.concat else o.mean(1)) + layer.bias


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_keep_mask_has_dropouts_distribution(p):
    torch.manual_seed(0)
    k = keep_mask((400, 501), p, torch.empty(0))  # odd count: the last word is half used
    assert k.dtype == torch.float32 and k.shape == (400, 501)
    kept = k > 0
    assert torch.all(k[kept] == 1 / (1 - p)) and torch.all(k[~kept] == 0)
    n = k.numel()
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(float(kept.float().mean()) - (1 - p)) < 5 * sd
    flat = kept.flatten().float()
    # the two halves of a word, and neighbouring words, are independent draws
    for lag in (1, 2, 3):
        c = float(((flat[:-lag] - flat.mean()) * (flat[lag:] - flat.mean())).mean())
        assert abs(c) / (p * (1 - p)) < 5 / n**0.5
    assert torch.equal(keep_mask((3, 4), 0.0, torch.empty(0)), torch.ones(3, 4))


@pytest.mark.parametrize("density", [0.05, 0.6])  # the sparse and the dense data-row path
@pytest.mark.parametrize("one_row", [True, False])
def test_patched_linear_with_a_given_mask_is_the_dense_formula(density, one_row):
    torch.manual_seed(1)
    n, f, o = 40, 30, 8
    base = torch.rand(n, f, dtype=torch.float64) * (torch.rand(n, f) < density)
    rows = torch.tensor([3, 17, 0, 25, 9])
    base[rows] = 0
    token = torch.randn(1 if one_row else len(rows), f, dtype=torch.float64, requires_grad=True)
    w = torch.randn(o, f, dtype=torch.float64, requires_grad=True)
    drop = nn.Dropout(0.3)
    keep = (torch.rand(n, f) > 0.3).double() / 0.7
    h = RowPatch(base, rows, token)
    got = patched_linear(h, w, drop, keep=keep)
    ref = (h.dense() * keep) @ w.t()
    assert torch.allclose(got, ref, atol=1e-12)
    gw = torch.randn(n, o, dtype=torch.float64)
    g1 = torch.autograd.grad((got * gw).sum(), [token, w])
    g2 = torch.autograd.grad((ref * gw).sum(), [token, w])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-12)


def test_patched_linear_drops_only_the_data_rows_non_zeros():
    """Fresh draws: every data row's output is a sum over its own non-zeros, each kept or not."""
    torch.manual_seed(2)
    base = torch.zeros(6, 5, dtype=torch.float64)
    base[1, 2], base[4, 0] = 2.0, 3.0
    w = torch.randn(3, 5, dtype=torch.float64)
    h = RowPatch(base, torch.tensor([0]), torch.zeros(1, 5, dtype=torch.float64))
    seen = set()
    for _ in range(40):
        out = patched_linear(h, w, nn.Dropout(0.5))
        for r, c, v in ((1, 2, 2.0), (4, 0, 3.0)):
            k = float((out[r] / (v * w[:, c])).mean())  # 0 or 1 / (1 - p)
            assert min(abs(k), abs(k - 2.0)) < 1e-12
            seen.add(round(k))
        assert torch.all(out[[2, 3, 5]] == 0)
    assert seen == {0, 2}


@pytest.mark.parametrize("sparse", [False, True])
def test_sce_loss_linear_is_sce_of_the_projection_with_its_gradients(sparse):
    torch.manual_seed(3)
    m, f, d = 9, 20, 6
    x = torch.rand(m, f, dtype=torch.float64) * (torch.rand(m, f) < 0.3)
    x[4] = 0  # a node without features: cosine 0 both ways
    a = torch.randn(m, d, dtype=torch.float64, requires_grad=True)
    w = torch.randn(f, d, dtype=torch.float64, requires_grad=True)
    b = torch.randn(f, dtype=torch.float64, requires_grad=True)
    for gamma in (1.0, 3.0):
        got = sce_loss_linear(x.to_sparse_csr() if sparse else x, a, w, b, gamma)
        ref = sce_loss(x, a @ w.t() + b, gamma)
        assert abs(float(got.detach()) - float(ref.detach())) < 1e-12
        g1 = torch.autograd.grad(got, [a, w, b])
        g2 = torch.autograd.grad(ref, [a, w, b])
        for u, v in zip(g1, g2):
            assert torch.allclose(u, v, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a_, w_, b_: sce_loss_linear(x, a_, w_, b_), (a, w, b))


def _reference_graphmae_loss(m: GraphMAE, x: torch.Tensor, e: torch.Tensor, seed: int):
    """The old formula: the same random masking, the dense masked matrix through the encoder, the
    re-masked codes through the per-edge decoder to full-width reconstructions, then SCE."""
    torch.manual_seed(seed)
    p, n = m.params, len(x)
    perm = torch.randperm(n)
    masked = perm[: int(p.mask_rate * n)]
    n_noise = int(p.replace_rate * len(masked))
    order = torch.randperm(len(masked))
    token, noise = masked[order[: len(masked) - n_noise]], masked[order[len(masked) - n_noise :]]
    src = torch.randint(0, n, (n_noise,))
    xn = m.encoder.normalise(x)
    is_tok = torch.zeros(n, 1, dtype=x.dtype)
    is_tok[token] = 1
    h = xn.clone()
    h[noise] = xn[src]
    h = h * (1 - is_tok) + is_tok * m.mask_token
    z = h
    for layer, act in zip(m.encoder.backbone.layers, m.encoder.backbone.acts):
        z = act(_reference_gat(layer, z, e))
    keep = torch.ones(n, 1, dtype=x.dtype)
    keep[masked] = 0
    rep = m.encoder_to_decoder(z) * keep
    recon = _reference_gat(m.decoder, rep, e)
    return sce_loss(xn[masked], recon[masked], p.gamma)


@pytest.mark.parametrize("noise", [0.0, 0.25])
@pytest.mark.parametrize("sparse", [True, False])
def test_graphmae_step_equals_the_old_formula_in_float64(noise, sparse):
    """Dropout off (its masks are checked above): the method's loss and every parameter's gradient
    equal the dense per-edge computation, on sparse features (the CSR paths) and dense ones."""
    torch.manual_seed(4)
    n, f = 30, 40
    if sparse:
        x = (torch.rand(n, f) < 0.06).double()  # bag of words
        x[0] = 0
        x[1, :3] = 1
    else:
        x = torch.rand(n, f, dtype=torch.float64) + 0.1
    e = _graph(n, 45, 5)
    enc = GraphEncoder(build_graph_backbone("gat", f, 0.05), "row", torch.zeros(f), torch.ones(f))
    enc.normalise = lambda t: t / t.sum(1, keepdim=True).clamp(min=1e-12)  # type: ignore[method-assign]
    m = GraphMAE(enc, GraphMAEParams(replace_rate=noise, l2=0.0), Context()).double().eval()
    assert m.decoder.d_out > m.decoder.fc.in_features  # the aggregate-then-project decoder
    with torch.no_grad():
        m.mask_token.normal_()
        m.decoder.bias.normal_()
    params = [q for q in m.parameters() if q.requires_grad]
    torch.manual_seed(7)
    got, _ = m([GraphBatch(x, e)], None)
    assert (m._feature_cache[2] is not None) == sparse  # the path under test
    ref = _reference_graphmae_loss(m, x, e, 7)  # (the L2 penalty is the same term both ways)
    assert abs(float(got.detach()) - float(ref.detach())) < 1e-12
    g1 = torch.autograd.grad(got, params)
    g2 = torch.autograd.grad(ref, params)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-12)


def test_csr_rows_selects_rows_with_repeats():
    torch.manual_seed(8)
    x = torch.rand(7, 5, dtype=torch.float64) * (torch.rand(7, 5) < 0.4)
    x[2] = 0
    idx = torch.tensor([4, 2, 4, 0, 6, 1])
    got = csr_rows(x.to_sparse_csr(), idx)
    assert got.layout == torch.sparse_csr and torch.equal(got.to_dense(), x[idx])
    assert csr_rows(x.to_sparse_csr(), idx[:0]).shape == (0, 5)


def _dropout_reference_gat(layer: GATLayer, h: torch.Tensor, e: torch.Tensor, dst) -> torch.Tensor:
    """The layer as it was before its edge plans, with dropout: the feature mask drawn over every
    input row, then the edges into ``dst`` selected in their given order (self-loops appended),
    their attention-dropout mask drawn in that order, each node's softmax by a loop."""
    n = len(h)
    hd = h * keep_mask(tuple(h.shape), layer.feat_drop.p, h)
    e = add_self_loops(e, n)
    e = e[:, torch.isin(e[1], dst)]
    feat = layer.fc(hd).view(n, layer.heads, layer.d_out)
    el, er = (feat * layer.attn_l).sum(-1), (feat * layer.attn_r).sum(-1)
    score = F.leaky_relu(el[e[0]] + er[e[1]], layer.negative_slope)
    a = torch.empty_like(score)
    for i in dst.tolist():
        into = torch.nonzero(e[1] == i).flatten()
        a[into] = torch.softmax(score[into], dim=0)
    a = a * keep_mask(tuple(a.shape), layer.attn_drop.p, a)
    out = torch.stack(
        [(a[e[1] == i].unsqueeze(-1) * feat[e[0, e[1] == i]]).sum(0) for i in dst.tolist()]
    )
    return out.flatten(1) + layer.bias


def _assert_same_values_and_gradients(got, ref, params) -> None:
    """``got`` equals ``ref`` in float64, and so do their gradients with respect to ``params``
    under one random upstream gradient."""
    assert torch.allclose(got, ref, atol=1e-12)
    gw = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad((got * gw).sum(), params), torch.autograd.grad((ref * gw).sum(), params)
    ):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("dst", [None, [7, 2, 11, 0, 5], [0, 3, 4, 9]])
def test_gat_layer_with_dropout_draws_the_masks_it_drew_before_its_edge_plans(dst):
    """The edges in CSR order (planned once per graph, subsets selected from the plan, per-head
    products on strided columns): the same output and gradients, and each edge keeps the dropout
    draw it had in the given edge order (float64, dropout on)."""
    torch.manual_seed(9)
    n = 12
    layer = GATLayer(5, 3, heads=2, feat_drop=0.3, attn_drop=0.4).double().train()
    with torch.no_grad():
        layer.bias.normal_()
    e = _graph(n, 20, 10)
    h = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    d = None if dst is None else torch.tensor(dst)
    torch.manual_seed(11)
    got = layer(h, e, d)
    torch.manual_seed(11)
    ref = _dropout_reference_gat(layer, h, e, torch.arange(n) if d is None else d)
    _assert_same_values_and_gradients(got, ref, [h, *layer.parameters()])


def test_gnn_rows_are_the_whole_stacks_rows_with_the_same_draws():
    """``GNN(h, e, rows)`` (GraphMAE: only the rows its decoder reads) computes only those rows in
    its last GAT layer, with that layer's dropout draws for the whole graph: the same rows and
    gradients as the whole output, and the random stream left where the whole stack leaves it."""
    torch.manual_seed(12)
    n, f = 16, 9
    gnn = build_graph_backbone("gat", f, 0.05).double().train()
    e = _graph(n, 30, 13)
    h = torch.randn(n, f, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([9, 1, 4, 15, 0])
    torch.manual_seed(14)
    got = gnn(h, e, rows)
    after = torch.rand(3)
    torch.manual_seed(14)
    ref = gnn(h, e)[rows]
    assert torch.equal(torch.rand(3), after)
    _assert_same_values_and_gradients(got, ref, [h, *gnn.parameters()])


def test_edge_plan_subset_is_the_full_plans_edges_into_the_rows():
    n = 15
    e = torch.unique(_graph(n, 25, 16), dim=1)  # no repeated edges: a CSR pattern by torch's rules
    full = edge_plan(e, n)
    assert edge_plan(e, n) is full  # planned once per graph
    dst = torch.tensor([3, 14, 0, 8])
    sub = edge_plan(e, n, dst)
    want = sorted((int(s), int(t)) for s, t in zip(full.src, full.tgt) if int(t) in dst.tolist())
    assert sorted(zip(sub.src.tolist(), sub.tgt.tolist())) == want
    assert torch.equal(dst.sort().values[sub.row], sub.tgt)
    crow, col, tcrow, tcol = sub.csr()
    ones = torch.ones(len(col), dtype=torch.float64)
    m = torch.sparse_csr_tensor(crow, col, ones, (len(dst), n), check_invariants=True).to_dense()
    mt = torch.sparse_csr_tensor(tcrow, tcol, ones, (n, len(dst)), check_invariants=True)
    assert torch.equal(m.t(), mt.to_dense())
    assert sub.unsort is not None and torch.equal(dst.sort().values[sub.unsort], dst)


def test_keep_mask_rows_are_the_whole_masks_rows_from_the_same_stream():
    for p in (0.2, 0.0):
        torch.manual_seed(17)
        whole = keep_mask((9, 7), p, torch.empty(0))  # odd size: the last word half used
        after = torch.rand(2)
        torch.manual_seed(17)
        rows = torch.tensor([0, 4, 8])
        assert torch.equal(keep_mask((9, 7), p, torch.empty(0), rows), whole[rows])
        assert torch.equal(torch.rand(2), after)


@pytest.mark.parametrize("heads,d_out", [(1, 9), (2, 9), (2, 3)])
def test_gat_layer_on_sparse_rows_is_the_dense_zero_padded_input(heads, d_out):
    """GraphMAE's re-masked codes as :class:`SparseRows` (zero but at the rows the decoder reads):
    the aggregate-then-project layer computes with those rows only (mask drawn whole, zero rows'
    logits zero, their edges left out of the aggregation): the same output, gradients and random
    stream as on the zero-padded matrix (float64, dropout on); so does a layer that projects
    first (GraphMAE's encoder: the rows its next layer reads)."""
    torch.manual_seed(18)
    n, d = 14, 4
    layer = GATLayer(d, d_out, heads=heads, feat_drop=0.3, attn_drop=0.2).double().train()
    e = _graph(n, 25, 19)
    rows = torch.tensor([1, 2, 6, 7, 11])
    vals = torch.randn(len(rows), d, dtype=torch.float64, requires_grad=True)
    dst = torch.tensor([13, 0, 5, 9, 3])
    sparse = SparseRows(vals, rows, n)
    dense = sparse.dense()
    assert torch.equal(dense[rows], vals) and int(torch.count_nonzero(dense.sum(1))) == len(rows)
    for project in (True, False) if d_out > d else (True,):
        torch.manual_seed(20)
        got = layer(sparse, e, dst, project=project)
        after = torch.rand(2)
        torch.manual_seed(20)
        ref = layer(sparse.dense(), e, dst, project=project)
        assert torch.equal(torch.rand(2), after)
        assert torch.allclose(got, ref, atol=1e-12)
        gw = torch.randn_like(ref)
        params = [vals, *layer.parameters()]
        g1 = torch.autograd.grad((got * gw).sum(), params, allow_unused=True)
        g2 = torch.autograd.grad((ref * gw).sum(), params, allow_unused=True)
        for a, b in zip(g1, g2):
            assert (a is None and b is None) or torch.allclose(a, b, atol=1e-12)


def test_keep_mask_unscaled_and_the_token_rows_scaled_on_the_row():
    """The one-token rows' mask in 0 and 1 with ``1 / (1 - p)`` on the token row (one pass less
    over the (R, F) mask): the same output and gradients as the scaled mask (float64, fresh
    draws from the same stream)."""
    torch.manual_seed(21)
    p = 0.3
    whole = keep_mask((5, 7), p, torch.empty(0, dtype=torch.float64))
    torch.manual_seed(21)
    unscaled = keep_mask((5, 7), p, torch.empty(0, dtype=torch.float64), scaled=False)
    assert set(unscaled.unique().tolist()) <= {0.0, 1.0} and torch.equal(unscaled / (1 - p), whole)
    n, f, o = 20, 12, 6
    base = torch.rand(n, f, dtype=torch.float64) + 0.1  # dense data rows
    rows = torch.tensor([2, 5, 11, 17])
    base[rows] = 0
    token = torch.randn(1, f, dtype=torch.float64, requires_grad=True)
    w = torch.randn(o, f, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(22)
    got = patched_linear(RowPatch(base, rows, token), w, nn.Dropout(p))
    torch.manual_seed(22)
    tk = keep_mask((len(rows), f), p, base)
    other = torch.tensor([i for i in range(n) if i not in rows.tolist()])
    dk = keep_mask((len(other), f), p, base)
    keep = torch.empty(n, f, dtype=torch.float64)
    keep[rows], keep[other] = tk, dk
    ref = (RowPatch(base, rows, token).dense() * keep) @ w.t()
    assert torch.allclose(got, ref, atol=1e-12)
    gw = torch.randn_like(ref)
    g1 = torch.autograd.grad((got * gw).sum(), [token, w])
    g2 = torch.autograd.grad((ref * gw).sum(), [token, w])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-12)
