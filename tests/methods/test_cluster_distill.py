"""cluster_distill at its defaults does not collapse to uniform codes (issue 22).

Two towers that start unrelated: each branch's first predictions of the other branch's codes are
no better than chance. At SwAV's student temperature (0.1) they are worse than uniform (the loss
starts about 1 / (2 D t^2) = 0.4 nats above log K for D = 128), and the quickest way down the loss
was to flatten every prediction, which flattened the codes too: on ``moving_digits:frames`` the
loss sat at log K and nothing was distilled (BENCHMARKS.md). The fixture is a small learnable pair
(two MLP towers over two noisy views of the same 64 samples), seeded, no modality plumbing.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import selfsup.methods as M
from selfsup.config import ModelConfig
from selfsup.models.heads import projection_head
from selfsup.models.two_tower import TwoTower

N, B, K, D = 64, 16, 24, 128


class _Tower(torch.nn.Sequential):
    def __init__(self, d_in: int):
        super().__init__(torch.nn.Linear(d_in, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32))
        self.out_dim = 32


def _method(params: dict):
    torch.manual_seed(0)
    enc = TwoTower(_Tower(10), _Tower(12), projection_head(32, 64, D), projection_head(32, 64, D))
    ctx = M.Context(
        model=ModelConfig(proj_hidden=64, proj_dim=D),
        n_samples=N,
        n_views=2,
        extra={"batch_size": B},
    )
    return M.build("cluster_distill", enc, {"n_prototypes": K, "queue_size": 0, **params}, ctx)


def _train(m, steps: int):
    """``steps`` AdamW steps on a paired fixture (4 classes under strong noise); the losses and
    the collapse monitor's signals after each step."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(N) % 4
    xa = 0.1 * torch.randn(4, 10, generator=g)[y] + torch.randn(N, 10, generator=g)
    xb = 0.1 * torch.randn(4, 12, generator=g)[y] + torch.randn(N, 12, generator=g)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-3)
    losses, signals = [], []
    for s in range(steps):
        idx = torch.randperm(N, generator=g)[:B]
        views = [
            xa[idx] + 0.1 * torch.randn(B, 10, generator=g),
            xb[idx] + 0.1 * torch.randn(B, 12, generator=g),
        ]
        loss, _ = m(views, M.Batch(views, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.after_step(s, steps)
        losses.append(float(loss.detach()))
        signals.append(m.collapse_signals())
    return losses, signals


def test_the_first_predictions_are_not_worse_than_uniform():
    """The cause of the collapse: at SwAV's temperature the unrelated student starts well above
    log K (flattening is the quickest descent); at the default it starts within 0.1 nats of it."""
    log_k = math.log(K)
    (old,), _ = _train(_method({"temperature": 0.1}), 1)
    (new,), _ = _train(_method({}), 1)
    assert old > log_k + 0.25  # the old default, for contrast
    assert new < log_k + 0.1, (new, log_k)


def test_a_few_steps_learn_without_uniform_codes():
    """40 steps at the defaults: the loss falls below log K and the codes (the targets) stay far
    from uniform per sample while the batch still spreads over the clusters (no dominant one)."""
    log_k = math.log(K)
    losses, signals = _train(_method({}), 40)
    assert all(np.isfinite(losses)), losses
    assert np.mean(losses[-5:]) < log_k - 0.45, (losses, log_k)  # 0.1: log K - 0.34
    last = signals[-1]
    assert last["teacher_entropy_max"] == log_k
    assert last["teacher_entropy"] < 0.6 * log_k, last  # 0.1: 0.74 log K; 0.39 now
    assert last["teacher_batch_entropy"] > 0.9 * log_k, last
