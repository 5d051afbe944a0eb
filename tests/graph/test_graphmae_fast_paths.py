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
    add_self_loops,
    build_graph_backbone,
    csr_rows,
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
