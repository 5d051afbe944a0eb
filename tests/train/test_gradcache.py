"""Gradient caching equals the full-batch gradient (InfoNCE family and CLIP), and refuses what it
cannot do."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from torch import nn

from selfsup.errors import ConfigError
from selfsup.losses import nt_xent
from selfsup.losses.clip import ClipLoss
from selfsup.train import gradcache


def _grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in module.named_parameters() if p.grad is not None}


def _tower(d_in: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, 32), nn.GELU(), nn.Linear(32, 16))


def _assert_same(full: dict, cached: dict, atol: float = 1e-5):
    assert full.keys() == cached.keys() and full
    for k in full:
        torch.testing.assert_close(cached[k], full[k], atol=atol, rtol=1e-5, msg=k)


@pytest.mark.parametrize("chunk", [1, 4, 6])
def test_nt_xent_cached_equals_full_batch(chunk):
    f = _tower(10, 0)
    x1, x2 = torch.randn(12, 10), torch.randn(12, 10)
    loss = nt_xent(f(x1), f(x2), 0.3)
    loss.backward()
    full = _grads(f)
    f.zero_grad()
    cached_loss = gradcache.cached_backward(
        lambda xs: [f(xs[0]), f(xs[1])], [x1, x2], lambda zs: nt_xent(zs[0], zs[1], 0.3), chunk
    )
    assert float(cached_loss) == pytest.approx(float(loss.detach()), abs=1e-6)
    _assert_same(full, _grads(f))


def test_clip_two_towers_cached_equals_full_batch():
    f, g, clip = _tower(10, 1), _tower(7, 2), ClipLoss()
    a, b = torch.randn(16, 10), torch.randn(16, 7)
    clip(f(a), g(b)).backward()
    full = {
        **{f"f.{k}": v for k, v in _grads(f).items()},
        **{f"g.{k}": v for k, v in _grads(g).items()},
        "scale": clip.logit_scale.grad.clone(),
    }
    for m in (f, g, clip):
        m.zero_grad()
    gradcache.cached_backward(
        lambda xs: [f(xs[0]), g(xs[1])], [a, b], lambda zs: clip(zs[0], zs[1]), 4
    )
    cached = {
        **{f"f.{k}": v for k, v in _grads(f).items()},
        **{f"g.{k}": v for k, v in _grads(g).items()},
        "scale": clip.logit_scale.grad.clone(),
    }
    _assert_same(full, cached)


def _simclr(name: str = "simclr"):
    from selfsup import methods
    from selfsup.config import ModelConfig
    from selfsup.models import build_backbone
    from selfsup.models.encoder import Encoder

    torch.manual_seed(0)
    enc = Encoder(build_backbone("convnet_small", 1, 8), [0.5], [0.25])
    mc = ModelConfig(proj_hidden=32, proj_dim=16)
    return methods.build(name, enc, {}, methods.Context(model=mc, n_samples=64))


@pytest.mark.parametrize("name", ["simclr", "dcl"])
def test_method_step_equals_full_batch(name):
    """A whole method (encoder, head, the loss of every view pair); BatchNorm uses running
    statistics (eval mode) so that the network treats samples independently, the case where caching
    is
    exact."""
    method = _simclr(name).eval()
    views = [torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8)]
    batch = None
    loss, _ = method(views, batch)
    loss.backward()
    full = _grads(method)
    method.zero_grad()
    cached, _ = gradcache.method_step(method, method, views, batch, 4, nullcontext, nullcontext)
    assert float(cached) == pytest.approx(float(loss.detach()), abs=1e-6)
    _assert_same(full, _grads(method))
    assert "project" not in method.__dict__ and "forward" not in method.__dict__  # patches undone


def test_batchnorm_running_stats_updated_once_per_chunk():
    method = _simclr().train()
    bn = next(m for m in method.modules() if isinstance(m, nn.BatchNorm2d))
    views = [torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8)]
    gradcache.method_step(method, method, views, None, 8, nullcontext, nullcontext)
    assert int(bn.num_batches_tracked) == 2  # the two chunks of the first pass, not the second pass
    assert bn.momentum == 0.1


def test_refusals():
    from selfsup.methods import REGISTRY

    with pytest.raises(ConfigError, match="byol"):
        gradcache.check(REGISTRY["byol"], 4, 16)
    with pytest.raises(ConfigError, match="larger than"):
        gradcache.check(REGISTRY["simclr"], 32, 16)
    with pytest.raises(ConfigError, match="does not divide"):
        gradcache.check(REGISTRY["simclr"], 5, 16)
    gradcache.check(REGISTRY["simclr"], 4, 16)
