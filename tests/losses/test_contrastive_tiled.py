"""The tiled path equals the dense one (loss and gradients, float32, 1e-5), odd N, ragged tiles."""

import pytest
import torch

import selfsup.losses.tiled as tiled_losses
from selfsup.losses import clip_loss, dcl, dclw, hcl, nt_xent, supcon

B = 37  # odd; 2B = 74 rows, tile 8 does not divide it


def _losses():
    y = torch.arange(B) % 6 - 1  # some unlabelled (-1)
    return {
        "nt_xent": lambda a, b, s, tiled: nt_xent(a, b, 0.2, tiled=tiled),
        "dcl": lambda a, b, s, tiled: dcl(a, b, 0.1, tiled=tiled),
        "dclw": lambda a, b, s, tiled: dclw(a, b, 0.1, 0.5, tiled=tiled),
        "hcl": lambda a, b, s, tiled: hcl(a, b, 0.5, 0.1, 1.0, tiled=tiled),
        "supcon": lambda a, b, s, tiled: supcon(torch.stack([a, b, a * b], 1), y, 0.1, tiled=tiled),
        "clip": lambda a, b, s, tiled: clip_loss(a, b, s, tiled=tiled),
        "clip_large": lambda a, b, s, tiled: clip_loss(
            a, b, s + 3.0, tiled=tiled
        ),  # scale above 100
    }


@pytest.mark.parametrize("name", list(_losses()))
def test_tiled_equals_dense(name, monkeypatch):
    monkeypatch.setattr(tiled_losses, "TILE_ROWS", 8)
    f = _losses()[name]
    g = torch.Generator().manual_seed(0)
    a = torch.randn(B, 16, generator=g).requires_grad_(True)
    b = torch.randn(B, 16, generator=g).requires_grad_(True)
    s = torch.tensor(2.659, requires_grad=True)
    out = []
    for tiled in (False, True):
        loss = f(a, b, s, tiled)
        grads = torch.autograd.grad(loss, (a, b, s), allow_unused=True)
        out.append((loss.detach(), grads))
    (l0, g0), (l1, g1) = out
    torch.testing.assert_close(l1, l0, atol=1e-5, rtol=1e-5)
    for x, y in zip(g1, g0):
        if y is not None:
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


def test_row_lse_nonuniform_upstream_gradient_and_auto_choice(monkeypatch):
    # a weighted sum of lse terms exercises the recomputing backward
    monkeypatch.setattr(tiled_losses, "TILE_ROWS", 5)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(23, 6, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(19, 6, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    ex = torch.randint(-1, 19, (23, 2), generator=g)
    w = torch.rand(23, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda q, k, s: (tiled_losses.row_lse(q, k, s, ex, tiled=True) * w).sum(), (q, k, s)
    )
    d = tiled_losses.row_lse(q, k, s, ex, tiled=False)
    torch.testing.assert_close(tiled_losses.row_lse(q, k, s, ex, tiled=True), d)
    assert (
        tiled_losses.use_tiled(None, 10, 10) is False
        and tiled_losses.use_tiled(None, 1 << 13, 1 << 13) is True
    )
    assert (
        tiled_losses.use_tiled(True, 2, 2) is True
        and tiled_losses.use_tiled(False, 1 << 20, 1 << 20) is False
    )
