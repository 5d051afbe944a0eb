"""TS2Vec's own training rule as the method's defaults (the authors' train.py and ts2vec.py)."""

from __future__ import annotations

import numpy as np
import torch

from selfsup import resolve
from selfsup.data import SeriesData
from selfsup.parts import with_defaults
from selfsup.train.optim import build_optimizer


def _cfg(n, c, t, *over):
    x = np.random.default_rng(0).standard_normal((n, c, t)).astype(np.float32)
    cfg = resolve.resolve_config(method="ts2vec", data="s.npz", overrides=list(over))
    return with_defaults(cfg, SeriesData(x=x, y=np.arange(n) % 2, name="s"))


def test_200_iterations_up_to_100000_values_then_600():
    small = _cfg(40, 1, 50)  # 2,000 values: 200 iterations of batch 8, 5 steps an epoch
    assert (small.train.batch_size, small.train.epochs) == (8, 40)
    big = _cfg(400, 3, 100)  # 120,000 values: 600 iterations, 50 steps an epoch
    assert (big.train.batch_size, big.train.epochs) == (8, 12)
    o = small.optim
    assert (o.name, o.lr, o.weight_decay, o.decay_all, o.schedule) == (
        "adamw",
        1e-3,
        0.01,
        True,
        "constant",
    )


def test_the_users_settings_win():
    cfg = _cfg(40, 1, 50, "train.epochs=3", "optim.schedule=cosine")
    assert (cfg.train.epochs, cfg.optim.schedule, cfg.train.batch_size) == (3, "cosine", 8)


def test_decay_all_decays_biases_and_norms_too():
    from selfsup.config import OptimConfig

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    some = build_optimizer(net, OptimConfig(weight_decay=0.01), 8)
    every = build_optimizer(net, OptimConfig(weight_decay=0.01, decay_all=True), 8)
    decayed = [sum(p.numel() for p in g["params"]) for g in some.param_groups if g["weight_decay"]]
    assert decayed == [12]  # the weight matrix only
    assert (
        sum(p.numel() for g in every.param_groups if g["weight_decay"] for p in g["params"]) == 24
    )
