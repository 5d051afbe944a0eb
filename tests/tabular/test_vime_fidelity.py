"""VIME as the authors' code trains it: one corrupted copy per row, [0, 1] targets, RMSprop."""

from __future__ import annotations

import torch

from selfsup import methods, resolve
from selfsup.data import load_source
from selfsup.parts import assemble, with_defaults


def _parts(tmp_path, *over):
    cfg = resolve.resolve_config(
        method="vime", data="wine", out=str(tmp_path / "r"), overrides=list(over)
    )
    splits = load_source("wine")
    cfg = with_defaults(cfg, splits.train)
    return cfg, assemble(cfg, splits.train, torch.device("cpu"))


def test_the_authors_optimiser_and_budget_are_the_defaults(tmp_path):
    cfg, _ = _parts(tmp_path)
    assert (cfg.optim.name, cfg.optim.lr, cfg.train.epochs, cfg.train.batch_size) == (
        "rmsprop",
        1e-3,
        10,
        128,
    )
    cfg, _ = _parts(tmp_path, "optim.name=adamw", "train.epochs=3")
    assert (cfg.optim.name, cfg.train.epochs) == ("adamw", 3)  # the user's choice wins


def test_one_fixed_corruption_per_row_and_minmax_targets(tmp_path):
    _, p = _parts(tmp_path)
    m = p.method
    torch.manual_seed(0)
    m.prepare(p.x, p.views)
    first = m.corrupted.clone()
    assert first.shape == (len(p.x), p.x.shape[1])
    changed = (first != p.x.float()).float().mean()
    assert 0.15 < float(changed) < 0.35  # p_m = 0.3, fewer where the drawn value equals the cell
    idx = torch.arange(8)
    batch = methods.Batch(x=p.x[idx], index=idx)
    views = p.views(p.x[idx])
    loss, _ = m(views, batch)
    assert torch.isfinite(loss)
    assert torch.equal(m.corrupted, first)  # the same copy every step
    t = m._target(p.x)
    assert float(t.min()) >= 0 and float(t.max()) <= 1 and float(t.max()) == 1.0


def test_fresh_corruption_and_standard_targets_remain_options(tmp_path):
    _, p = _parts(tmp_path, "params.fixed_corruption=false", "params.scaling=standard")
    m = p.method
    m.prepare(p.x, p.views)
    assert len(m.corrupted) == 0
    idx = torch.arange(8)
    loss, _ = m(p.views(p.x[idx]), methods.Batch(x=p.x[idx], index=idx))
    assert torch.isfinite(loss)


def test_rmsprop_is_kerass_and_its_rate_is_not_scaled_by_the_batch():
    from selfsup.config import OptimConfig
    from selfsup.train.optim import build_optimizer, resolved_lr

    opt = build_optimizer(torch.nn.Linear(3, 2), OptimConfig(name="rmsprop"), 512)
    assert isinstance(opt, torch.optim.RMSprop)
    g = opt.param_groups[0]
    assert (g["lr"], g["alpha"], g["eps"]) == (1e-3, 0.9, 1e-7)
    assert resolved_lr(OptimConfig(name="rmsprop"), 512) == 1e-3
